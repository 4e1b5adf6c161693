using System.Text.Json.Nodes;
using Serverless.Core.Api;

namespace Serverless.Core.Tests.TaskDefinitions;

/// <summary>RegisterTaskDefinition requests as a handler receives them: parsed and through the model validator.</summary>
internal static class TaskDefinitionRequests
{
    /// <summary>A request from JSON, validated against the model as the API front end does.</summary>
    public static JsonObject Register(string json)
        => RequestValidator.Validate(ServiceModel.Ecs, ServiceModel.Ecs.InputOf("RegisterTaskDefinition")!, JsonNode.Parse(json)!.AsObject());

    /// <summary>The smallest valid definition: one container with a hard memory limit.</summary>
    public static JsonObject Minimal(string family = "web", string image = "local/busybox:latest")
        => Register($$"""{"family":"{{family}}","containerDefinitions":[{"name":"app","image":"{{image}}","memory":128}]}""");

    /// <summary>A multi-container definition using most of what ECS offers (ports, env, secrets, health, volumes, logs…).</summary>
    public const string Realistic = """
        {
          "family": "shop",
          "taskRoleArn": "arn:aws:iam::000000000000:role/shop-task",
          "executionRoleArn": "arn:aws:iam::000000000000:role/ecsTaskExecutionRole",
          "networkMode": "bridge",
          "cpu": "1 vCPU",
          "memory": "2 GB",
          "containerDefinitions": [
            {
              "name": "web",
              "image": "local/busybox:latest",
              "cpu": 512,
              "memory": 512,
              "memoryReservation": 256,
              "essential": true,
              "entryPoint": ["sh", "-c"],
              "command": ["httpd -f -p 8080"],
              "workingDirectory": "/srv",
              "user": "nobody",
              "portMappings": [
                { "containerPort": 8080, "hostPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http" },
                { "containerPort": 9090 }
              ],
              "environment": [ { "name": "MODE", "value": "production" }, { "name": "GREETING", "value": "hello" } ],
              "secrets": [
                { "name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-password" },
                { "name": "API_KEY", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/api-key" }
              ],
              "healthCheck": {
                "command": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8080/ || exit 1"],
                "interval": 10, "timeout": 3, "retries": 2, "startPeriod": 5
              },
              "dependsOn": [ { "containerName": "migrate", "condition": "SUCCESS" }, { "containerName": "cache", "condition": "START" } ],
              "mountPoints": [ { "sourceVolume": "data", "containerPath": "/data", "readOnly": false } ],
              "ulimits": [ { "name": "nofile", "softLimit": 1024, "hardLimit": 4096 } ],
              "linuxParameters": {
                "capabilities": { "add": ["NET_ADMIN"], "drop": ["MKNOD"] },
                "initProcessEnabled": true,
                "sharedMemorySize": 64,
                "tmpfs": [ { "containerPath": "/tmp", "size": 32, "mountOptions": ["noexec"] } ]
              },
              "dockerLabels": { "team": "platform", "tier": "web" },
              "logConfiguration": { "logDriver": "json-file", "options": { "max-size": "10m", "max-file": "3" } },
              "systemControls": [ { "namespace": "net.core.somaxconn", "value": "1024" } ],
              "extraHosts": [ { "hostname": "db.internal", "ipAddress": "10.0.0.5" } ],
              "stopTimeout": 10,
              "startTimeout": 60,
              "readonlyRootFilesystem": false
            },
            {
              "name": "migrate",
              "image": "local/busybox:latest",
              "memory": 64,
              "essential": false,
              "command": ["sh", "-c", "echo migrated > /data/ready"],
              "mountPoints": [ { "sourceVolume": "data", "containerPath": "/data" } ]
            },
            {
              "name": "cache",
              "image": "local/busybox:latest",
              "memoryReservation": 64,
              "essential": false,
              "command": ["sleep", "3600"],
              "volumesFrom": [ { "sourceContainer": "web", "readOnly": true } ],
              "portMappings": [ { "containerPort": 6379, "protocol": "udp" } ]
            }
          ],
          "volumes": [
            { "name": "data", "dockerVolumeConfiguration": { "scope": "task", "driver": "local", "labels": { "app": "shop" } } },
            { "name": "host-logs", "host": { "sourcePath": "/var/log" } },
            { "name": "scratch" }
          ],
          "placementConstraints": [ { "type": "memberOf", "expression": "attribute:ecs.os-type == linux" } ],
          "pidMode": "task",
          "ipcMode": "none",
          "runtimePlatform": { "cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX" },
          "tags": [ { "key": "env", "value": "test" }, { "key": "team", "value": "platform" } ]
        }
        """;

    /// <summary>A copy of <paramref name="request"/> changed by <paramref name="change"/>.</summary>
    public static JsonObject With(this JsonObject request, Action<JsonObject> change)
    {
        var copy = (JsonObject)request.DeepClone();
        change(copy);
        return copy;
    }

    /// <summary>The <paramref name="index"/>th container definition of a request.</summary>
    public static JsonObject Container(this JsonObject request, int index = 0) => (JsonObject)request["containerDefinitions"]![index]!;
}
