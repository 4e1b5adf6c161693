using System.Globalization;
using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Tags;

namespace Serverless.Core.Tasks;

/// <summary>A task in the shape of the ECS model's <c>Task</c>.</summary>
public sealed class TaskJson(Arns arns)
{
    public JsonObject ToJson(TaskRecord task, bool includeTags)
    {
        var taskArn = arns.Task(task.Cluster, task.Id);
        var json = new JsonObject
        {
            ["attachments"] = task.Attachment is { } attachment ? new JsonArray(attachment.ToJson()) : new JsonArray(),
            ["attributes"] = new JsonArray { new JsonObject { ["name"] = "ecs.cpu-architecture", ["value"] = "x86_64" } },
            ["clusterArn"] = arns.Cluster(task.Cluster),
            ["containerInstanceArn"] = arns.ContainerInstance(task.Cluster, task.ContainerInstanceId),
            ["containers"] = task.Containers.Select(c => (JsonNode?)Container(task, taskArn, c)).ToJsonArray(),
            ["cpu"] = task.Cpu.ToString(CultureInfo.InvariantCulture),
            ["createdAt"] = AwsJson.Timestamp(task.CreatedAt),
            ["desiredStatus"] = task.DesiredStatus,
            ["enableExecuteCommand"] = false,
            ["group"] = task.Group,
            ["healthStatus"] = task.HealthStatus ?? HealthStatus.Unknown,
            ["lastStatus"] = task.IsDeactivating ? EcsTaskStatus.Deactivating : task.LastStatus,
            ["launchType"] = task.LaunchType,
            ["memory"] = task.Memory.ToString(CultureInfo.InvariantCulture),
            ["overrides"] = Overrides(task),
            ["tags"] = includeTags ? Tag.ToJson(task.Tags) : new JsonArray(),
            ["taskArn"] = taskArn,
            ["taskDefinitionArn"] = task.TaskDefinitionArn,
            ["version"] = task.Version,
        };
        // Fargate hides its hosts: its tasks name no container instance.
        // A task waiting for capacity has none yet.
        if (task.LaunchType == "FARGATE" || task.ContainerInstanceId.Length == 0) json.Remove("containerInstanceArn");
        Optional(json, "startedBy", task.StartedBy);
        Optional(json, "platformVersion", task.PlatformVersion);
        Optional(json, "platformFamily", task.PlatformVersion is null ? null : "Linux");
        Optional(json, "capacityProviderName", task.CapacityProviderName);
        Optional(json, "stopCode", task.StopCode);
        Optional(json, "stoppedReason", task.StoppedReason);
        Time(json, "pullStartedAt", task.PullStartedAt);
        Time(json, "pullStoppedAt", task.PullStoppedAt);
        Time(json, "startedAt", task.StartedAt);
        Time(json, "stoppingAt", task.StoppingAt);
        Time(json, "stoppedAt", task.StoppedAt);
        Time(json, "executionStoppedAt", task.ExecutionStoppedAt);
        return json;
    }

    private JsonObject Container(TaskRecord task, string taskArn, TaskContainer container)
    {
        var json = new JsonObject
        {
            ["containerArn"] = arns.Container(task.Cluster, task.Id, container.Id),
            ["taskArn"] = taskArn,
            ["name"] = container.Name,
            ["image"] = container.Image,
            ["lastStatus"] = container.LastStatus,
            ["networkBindings"] = container.NetworkBindings.Select(b => (JsonNode?)new JsonObject
            {
                ["bindIP"] = b.BindIP,
                ["containerPort"] = b.ContainerPort,
                ["hostPort"] = b.HostPort,
                ["protocol"] = b.Protocol,
            }).ToJsonArray(),
            ["networkInterfaces"] = task.Attachment?.ContainerInterfaces() ?? new JsonArray(),
            ["healthStatus"] = container.HealthStatus ?? HealthStatus.Unknown,
            ["cpu"] = container.Cpu.ToString(CultureInfo.InvariantCulture),
        };
        Optional(json, "runtimeId", container.RuntimeId);
        Optional(json, "imageDigest", container.ImageDigest);
        Optional(json, "reason", container.Reason);
        if (container.ExitCode is { } exitCode) json["exitCode"] = exitCode;
        if (container.Memory is { } memory) json["memory"] = memory.ToString(CultureInfo.InvariantCulture);
        if (container.MemoryReservation is { } reservation) json["memoryReservation"] = reservation.ToString(CultureInfo.InvariantCulture);
        return json;
    }

    private static JsonObject Overrides(TaskRecord task)
    {
        var overrides = task.Overrides?.DeepClone().AsObject() ?? [];
        overrides["containerOverrides"] ??= task.Containers.Select(c => (JsonNode?)new JsonObject { ["name"] = c.Name }).ToJsonArray();
        overrides["inferenceAcceleratorOverrides"] ??= new JsonArray();
        return overrides;
    }

    private static void Optional(JsonObject json, string name, string? value)
    {
        if (value is not null) json[name] = value;
    }

    private static void Time(JsonObject json, string name, DateTimeOffset? value)
    {
        if (value is { } time) json[name] = AwsJson.Timestamp(time);
    }
}
