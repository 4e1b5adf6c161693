namespace Serverless.Worker.Docker;

/// <summary>
/// The labels on every container (and task volume) a worker creates. The <c>com.amazonaws.ecs.*</c>
/// ones are the ECS agent's, so tools that read them keep working; <see cref="InstanceId"/> scopes
/// everything a worker does on a shared engine to its own containers.
/// </summary>
public static class DockerLabels
{
    public const string Cluster = "com.amazonaws.ecs.cluster";
    public const string TaskArn = "com.amazonaws.ecs.task-arn";
    public const string ContainerName = "com.amazonaws.ecs.container-name";
    public const string TaskDefinitionFamily = "com.amazonaws.ecs.task-definition-family";
    public const string TaskDefinitionVersion = "com.amazonaws.ecs.task-definition-version";

    /// <summary>The container instance that owns the container: the worker's filter on list and events.</summary>
    public const string InstanceId = "ecs-worker.instance-id";

    /// <summary>The task's <c>startedBy</c> and <c>group</c>, when it has them.</summary>
    public const string StartedBy = "ecs-worker.started-by";
    public const string Group = "ecs-worker.group";

    /// <summary>A label's value, or null.</summary>
    public static string? Get(IDictionary<string, string>? labels, string name)
        => labels is not null && labels.TryGetValue(name, out var value) ? value : null;

    /// <summary>The Docker filter that selects one instance's containers or volumes.</summary>
    public static IDictionary<string, IDictionary<string, bool>> InstanceFilter(string instanceId)
        => new Dictionary<string, IDictionary<string, bool>>
        {
            ["label"] = new Dictionary<string, bool> { [$"{InstanceId}={instanceId}"] = true },
        };
}
