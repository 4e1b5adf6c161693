using Docker.DotNet.Models;

namespace Serverless.Worker.Docker;

/// <summary>The task a plan is made for: who runs it and where its labels point.</summary>
/// <param name="SubnetId">An <c>awsvpc</c> task's subnet (its attachment's <c>subnetId</c>): the Docker network it joins.</param>
public sealed record TaskContext(string Cluster, string TaskArn, string InstanceId, string? StartedBy = null, string? Group = null, string? SubnetId = null);

/// <summary>Defaults the task definition may leave out, and what the worker permits, from <see cref="WorkerOptions"/>.</summary>
public sealed record PlanDefaults(TimeSpan StopTimeout, TimeSpan StartTimeout)
{
    /// <summary>The image of an <c>awsvpc</c> task's pause container (<see cref="WorkerOptions.PauseImage"/>).</summary>
    public string PauseImage { get; init; } = "local/busybox:latest";

    /// <summary>What the task may do to the host; nothing by default.</summary>
    public TaskPermissions Permissions { get; init; } = TaskPermissions.None;

    /// <summary>
    /// Whether the engine limits a container's writable layer (<see cref="EngineStorage.SizesWritableLayers"/>):
    /// then a task's <c>ephemeralStorage</c> becomes each of its containers' <c>StorageOpt size</c>; else it is not passed.
    /// </summary>
    public bool SizeWritableLayers { get; init; }

    /// <summary>The ECS agent's defaults: 30 s to stop, 3 minutes to wait for dependencies.</summary>
    public static readonly PlanDefaults Agent = new(TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(3));
}

/// <summary>
/// How one task maps onto Docker: its containers' create parameters and the volumes to provide.
/// When <see cref="Refusal"/> is set the task cannot run on this worker at all, and it says why in
/// ECS's words (it becomes the task's <c>stoppedReason</c> with stop code TaskFailedToStart).
/// </summary>
public sealed record TaskPlan(
    string Family,
    int Revision,
    string NetworkMode,
    IReadOnlyList<ContainerPlan> Containers,
    IReadOnlyList<VolumePlan> Volumes,
    string? Refusal = null,
    TaskNetworkPlan? Network = null)
{
    public ContainerPlan? Container(string name) => Containers.FirstOrDefault(c => c.Name == name);

    /// <summary>The containers' <c>secrets</c> and log <c>secretOptions</c>, resolved at start (<see cref="Secrets.TaskSecretsReceiver"/>).</summary>
    public IReadOnlyList<Serverless.Core.Secrets.ContainerSecret> Secrets { get; init; } = [];

    /// <summary>The task-level <c>cpu</c> and <c>memory</c>, overrides applied (the task metadata's <c>Limits</c>).</summary>
    public TaskLimits Limits { get; init; } = new(null, null);

    public static TaskPlan Refused(string family, int revision, string reason) => new(family, revision, "bridge", [], [], reason);
}

/// <summary>A task's <c>cpu</c> (units) and <c>memory</c> (MiB) as the definition spells them, when it sets them.</summary>
public sealed record TaskLimits(string? Cpu, string? Memory);

/// <summary>One container definition, translated.</summary>
/// <param name="Name">The container definition's name.</param>
/// <param name="DockerName">The Docker container name, <c>ecs-&lt;family&gt;-&lt;revision&gt;-&lt;name&gt;-&lt;random&gt;</c>.</param>
/// <param name="DependsOn">The <c>dependsOn</c> conditions, plus START on every <c>links</c> target.</param>
/// <param name="CreateAfter">Containers that must exist before this one is created (its <c>volumesFrom</c> sources).</param>
/// <param name="PortMappings">The definition's port mappings, for reporting bindings in host mode.</param>
public sealed record ContainerPlan(
    string Name,
    string DockerName,
    string Image,
    bool Essential,
    TimeSpan StopTimeout,
    TimeSpan StartTimeout,
    bool HasHealthCheck,
    IReadOnlyList<ContainerDependency> DependsOn,
    IReadOnlyList<string> CreateAfter,
    IReadOnlyList<PortMappingPlan> PortMappings,
    CreateContainerParameters Parameters,
    bool Internal = false);

/// <summary>
/// The Docker network an <c>awsvpc</c> task's pause container joins: one bridge network per subnet
/// on each worker, made on its first use and shared by every task of that subnet there (each with
/// its own pause container, so its own namespace, address and MAC; they reach each other, as tasks
/// in one subnet do). Its name is fixed by the subnet and the worker, so a restarted worker finds
/// it again; it is labelled with the worker's instance id and the subnet, and carries no task ARN:
/// no task's stop removes it. The worker removes it once no task of its own has used it for
/// <see cref="WorkerOptions.AwsVpcNetworkIdleSeconds"/>, and at its start when no adopted task is on it.
/// </summary>
public sealed record TaskNetworkPlan(string Name, string SubnetId, IDictionary<string, string> Labels)
{
    /// <summary>The label carrying the subnet id on a subnet network.</summary>
    public const string SubnetLabel = "ecs-worker.awsvpc-subnet";

    /// <summary>The subnet of a task whose start names none (a command from a control plane that did not send it).</summary>
    public const string DefaultSubnet = "default";

    /// <summary>
    /// The network's name for a subnet on one worker: <c>ecs-awsvpc-&lt;subnet&gt;-&lt;instance&gt;</c>,
    /// the subnet id kept as it is when Docker allows it in a name, else made safe with a hash of the original.
    /// </summary>
    public static string NameFor(string subnetId, string instanceId)
    {
        var safe = new string(subnetId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-').ToArray());
        if (safe != subnetId || safe.Length > 64)
            safe = $"{safe[..Math.Min(safe.Length, 40)]}-{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(subnetId)).AsSpan(0, 6))}";
        return $"ecs-awsvpc-{safe}-{instanceId[..Math.Min(instanceId.Length, 12)]}";
    }

    /// <summary>Whether a Docker network's name is one of a subnet's (of any worker).</summary>
    public static bool IsSubnetNetwork(string name) => name.StartsWith("ecs-awsvpc-", StringComparison.Ordinal);

    /// <summary>The plan of a subnet's network on the worker <paramref name="instanceId"/>.</summary>
    public static TaskNetworkPlan For(string? subnetId, string instanceId)
    {
        var subnet = subnetId is { Length: > 0 } given ? given : DefaultSubnet;
        return new TaskNetworkPlan(NameFor(subnet, instanceId), subnet,
            new Dictionary<string, string> { [DockerLabels.InstanceId] = instanceId, [SubnetLabel] = subnet });
    }
}

/// <summary>A <c>dependsOn</c> entry: wait until <see cref="ContainerName"/> meets <see cref="Condition"/>.</summary>
public sealed record ContainerDependency(string ContainerName, string Condition);

/// <summary>A port mapping: host port 0 means Docker picks one.</summary>
public sealed record PortMappingPlan(int ContainerPort, int HostPort, string Protocol);

/// <summary>
/// A Docker volume the task needs. Task-scoped volumes are created for the task and removed with
/// it; shared ones are found by name, created only when <see cref="Autoprovision"/> allows, and kept.
/// </summary>
public sealed record VolumePlan(
    string Name,
    string DockerName,
    bool TaskScoped,
    bool Autoprovision,
    string Driver,
    IDictionary<string, string> DriverOpts,
    IDictionary<string, string> Labels);
