using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.Capacity;

/// <summary>A Fargate task definition from a real account, run unchanged with the AWS CLI; capacity providers and ECS's errors.</summary>
[Collection("control plane 4")]
public sealed class FargateTests(ControlPlaneFixture plane) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => plane.StopWorkersAsync();

    // Two containers in one awsvpc namespace: the client reaches the web server on localhost and exits 0.
    private const string TaskDefinition = """
        {"family": "fargate-pair", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
         "containerDefinitions": [
          {"name": "web", "image": "local/busybox:latest", "essential": true, "stopTimeout": 2,
           "entryPoint": ["sh", "-c"], "command": ["echo hello from fargate > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
           "portMappings": [{"containerPort": 8080, "protocol": "tcp"}]},
          {"name": "client", "image": "local/busybox:latest", "essential": false,
           "entryPoint": ["sh", "-c"], "command": ["for i in $(seq 100); do wget -q -O- http://localhost:8080/ | grep -q 'hello from fargate' && exit 0; sleep 0.1; done; exit 1"]}]}
        """;

    private const string Network = "awsvpcConfiguration={subnets=[subnet-0a1b2c3d],securityGroups=[sg-0a1b2c3d],assignPublicIp=ENABLED}";

    [Fact]
    public async Task A_Fargate_task_of_two_containers_runs_on_hidden_capacity_and_reports_its_address()
    {
        var cluster = $"fargate-{Guid.NewGuid():N}"[..30];
        (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json.ToString();
        var fargateHost = plane.CreateWorker(cluster, Guid.NewGuid().ToString("N"), settings: new Dictionary<string, string> { ["Worker__CapacityProvider"] = "FARGATE" });
        await fargateHost.StartAsync();
        var file = Path.Combine(Path.GetTempPath(), $"{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, TaskDefinition);
        var definition = (await plane.EcsAsync("register-task-definition", "--cli-input-json", $"file://{file}")).Json["taskDefinition"]!;
        File.Delete(file);
        Assert.Contains("FARGATE", definition["compatibilities"]!.AsArray().Select(c => c!.GetValue<string>()));
        var bridge = (await plane.EcsAsync("register-task-definition", "--family", "fargate-bridge", "--container-definitions",
            """[{"name":"app","image":"local/busybox:latest","memory":32}]""")).Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();

        // ECS's errors for what Fargate refuses; nothing is left behind by them.
        await RefusedAsync("Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            "run-task", "--cluster", cluster, "--launch-type", "FARGATE", "--task-definition", "fargate-pair");
        await RefusedAsync("subnets can not be empty.",
            "run-task", "--cluster", cluster, "--launch-type", "FARGATE", "--task-definition", "fargate-pair", "--network-configuration", "awsvpcConfiguration={subnets=[]}");
        await RefusedAsync("Task definition does not support launch_type FARGATE.",
            "run-task", "--cluster", cluster, "--launch-type", "FARGATE", "--task-definition", bridge);
        await RefusedAsync("No Fargate configuration exists for given values.",
            "register-task-definition", "--family", "bad-size", "--requires-compatibilities", "FARGATE", "--network-mode", "awsvpc",
            "--cpu", "256", "--memory", "4096", "--container-definitions", """[{"name":"app","image":"local/busybox:latest"}]""");
        await RefusedAsync("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster.",
            "run-task", "--cluster", cluster, "--task-definition", "fargate-pair", "--capacity-provider-strategy", "capacityProvider=FARGATE,weight=1",
            "--network-configuration", Network);
        Assert.Empty((await plane.EcsAsync("list-tasks", "--cluster", cluster, "--desired-status", "STOPPED")).Json["taskArns"]!.AsArray());

        // Fargate hides its hosts.
        await WaitForLogAsync(fargateHost, "Registered ");
        Assert.Empty((await plane.EcsAsync("list-container-instances", "--cluster", cluster)).Json["containerInstanceArns"]!.AsArray());

        var run = (await plane.EcsAsync("run-task", "--cluster", cluster, "--launch-type", "FARGATE", "--task-definition", "fargate-pair",
            "--platform-version", "LATEST", "--network-configuration", Network)).Json;
        Assert.Empty(run["failures"]!.AsArray());
        var taskArn = run["tasks"]![0]!["taskArn"]!.GetValue<string>();
        Assert.Equal("PROVISIONING", run["tasks"]![0]!["lastStatus"]!.GetValue<string>());
        Assert.Equal(0, (await plane.WaitAsync("tasks-running", cluster, [taskArn])).ExitCode);

        var task = await ClientDoneAsync(cluster, taskArn);
        Assert.Equal("FARGATE", task["launchType"]!.GetValue<string>());
        Assert.Equal("1.4.0", task["platformVersion"]!.GetValue<string>());
        Assert.Null(task["containerInstanceArn"]);
        var attachment = task["attachments"]![0]!;
        Assert.Equal(("ElasticNetworkInterface", "ATTACHED"), (attachment["type"]!.GetValue<string>(), attachment["status"]!.GetValue<string>()));
        var details = attachment["details"]!.AsArray().ToDictionary(d => d!["name"]!.GetValue<string>(), d => d!["value"]!.GetValue<string>());
        Assert.Equal("subnet-0a1b2c3d", details["subnetId"]);
        Assert.StartsWith("eni-", details["networkInterfaceId"]);
        Assert.Matches(@"^\d+\.\d+\.\d+\.\d+$", details["privateIPv4Address"]);
        Assert.Matches("^([0-9a-f]{2}:){5}[0-9a-f]{2}$", details["macAddress"]);
        foreach (var container in task["containers"]!.AsArray())
            Assert.Equal(details["privateIPv4Address"], container!["networkInterfaces"]![0]!["privateIpv4Address"]!.GetValue<string>());
        Assert.Equal(0, task["containers"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == "client")!["exitCode"]!.GetValue<int>());

        (await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", taskArn)).Json.ToString();
        Assert.Equal(0, (await plane.WaitAsync("tasks-stopped", cluster, [taskArn])).ExitCode);
        var stopped = (await plane.DescribeTasksAsync(cluster, [taskArn]))[0];
        Assert.Equal("DELETED", stopped["attachments"]![0]!["status"]!.GetValue<string>());
        await WaitForNoNetworkAsync(taskArn, fargateHost);
    }

    [Fact]
    public async Task Capacity_providers_are_created_associated_and_refused_as_ECS_refuses_them()
    {
        var cluster = $"providers-{Guid.NewGuid():N}"[..30];
        var name = $"pool-{Guid.NewGuid():N}"[..20];
        (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json.ToString();
        var created = (await plane.EcsAsync("create-capacity-provider", "--name", name, "--auto-scaling-group-provider",
            "autoScalingGroupArn=arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/workers,managedScaling={status=ENABLED,targetCapacity=100,minimumScalingStepSize=1,maximumScalingStepSize=2},managedTerminationProtection=ENABLED")).Json["capacityProvider"]!;
        Assert.Equal("ACTIVE", created["status"]!.GetValue<string>());
        Assert.Equal(300, created["autoScalingGroupProvider"]!["managedScaling"]!["instanceWarmupPeriod"]!.GetValue<int>());
        await RefusedAsync(CapacityProviderActionsText.AlreadyExists, "create-capacity-provider", "--name", name, "--auto-scaling-group-provider", "autoScalingGroupArn=arn:x");
        await RefusedAsync("managed scaling must also be enabled", "create-capacity-provider", "--name", name + "-b",
            "--auto-scaling-group-provider", "autoScalingGroupArn=arn:x,managedTerminationProtection=ENABLED");

        var put = (await plane.EcsAsync("put-cluster-capacity-providers", "--cluster", cluster, "--capacity-providers", name, "FARGATE",
            "--default-capacity-provider-strategy", $"capacityProvider={name},weight=1,base=1")).Json["cluster"]!;
        Assert.Equal([name, "FARGATE"], put["capacityProviders"]!.AsArray().Select(p => p!.GetValue<string>()));
        await RefusedAsync("Only one capacity provider in a capacity provider strategy can have a base value specified.",
            "put-cluster-capacity-providers", "--cluster", cluster, "--capacity-providers", name, "FARGATE",
            "--default-capacity-provider-strategy", $"capacityProvider={name},weight=1,base=1", "capacityProvider=FARGATE,weight=1,base=1");
        await RefusedAsync("is in use and cannot be deleted", "delete-capacity-provider", "--capacity-provider", name);

        var described = (await plane.EcsAsync("describe-capacity-providers", "--capacity-providers", name, "FARGATE", "missing")).Json;
        Assert.Equal([name, "FARGATE"], described["capacityProviders"]!.AsArray().Select(p => p!["name"]!.GetValue<string>()));
        Assert.Equal("MISSING", described["failures"]![0]!["reason"]!.GetValue<string>());
        var cp = (await plane.EcsAsync("describe-clusters", "--clusters", cluster)).Json["clusters"]![0]!;
        Assert.Equal(name, cp["defaultCapacityProviderStrategy"]![0]!["capacityProvider"]!.GetValue<string>());

        (await plane.EcsAsync("put-cluster-capacity-providers", "--cluster", cluster, "--capacity-providers", "[]", "--default-capacity-provider-strategy", "[]")).Json.ToString();
        var deleted = (await plane.EcsAsync("delete-capacity-provider", "--capacity-provider", name)).Json["capacityProvider"]!;
        Assert.Equal("INACTIVE", deleted["status"]!.GetValue<string>());
    }

    private async Task RefusedAsync(string message, params string[] args)
    {
        var result = await plane.EcsAsync(args);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(message, result.Stderr);
    }

    private static async Task WaitForLogAsync(WorkerProcess worker, string text)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!worker.Log.Contains(text, StringComparison.Ordinal))
        {
            if (worker.HasExited || DateTime.UtcNow > deadline) throw new TimeoutException($"The worker did not log {text}:\n{worker.Log}");
            await Task.Delay(200);
        }
    }

    private async Task<JsonNode> ClientDoneAsync(string cluster, string taskArn)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var task = (await plane.DescribeTasksAsync(cluster, [taskArn]))[0];
            if (task["containers"]!.AsArray().Any(c => c!["name"]!.GetValue<string>() == "client" && c["exitCode"] is not null)) return task;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The client container did not finish: {task}");
            await Task.Delay(300);
        }
    }

    private static async Task WaitForNoNetworkAsync(string taskArn, WorkerProcess worker)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await Docker.RunAsync("network", "ls", "-q", "--filter", $"label=com.amazonaws.ecs.task-arn={taskArn}")).Stdout.Length > 0)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The network of {taskArn} was not removed:\n{worker.Log}");
            await Task.Delay(200);
        }
    }

    private static class CapacityProviderActionsText
    {
        public const string AlreadyExists = "The specified capacity provider already exists.";
    }
}
