using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.ContainerInstances;

/// <summary>
/// What one task holds on a container instance. Reservations live on the instance's own row,
/// keyed by task id, so reserving and releasing are idempotent and a conditional write on that
/// row is what keeps two control planes from overcommitting one host.
/// </summary>
public sealed record Reservation(string TaskId, int Cpu, int Memory, IReadOnlyList<int> TcpPorts, IReadOnlyList<int> UdpPorts)
{
    /// <summary>The task's <c>group</c> (<c>service:web</c>, <c>family:web</c>...), which <c>task:group</c> in the cluster query language reads.</summary>
    public string? Group { get; init; }

    /// <summary>When the reservation was made: one whose task row never appeared is released after a grace period.</summary>
    public DateTimeOffset? ReservedAt { get; init; }
}

/// <summary>An ECS attribute (<c>name</c>, optional <c>value</c>) on a container instance.</summary>
public sealed record InstanceAttribute(string Name, string? Value);

/// <summary>
/// A container instance row. Partition key is the cluster (a cluster's instances are read
/// together for placement; each instance writes only its own row), row key the instance id.
/// </summary>
public sealed record ContainerInstanceRecord
{
    public const string Active = "ACTIVE";
    public const string Draining = "DRAINING";
    public const string Inactive = "INACTIVE";

    /// <summary>Ports ECS reserves on every instance (ssh, Docker, the agent).</summary>
    public static readonly IReadOnlyList<int> EcsReservedPorts = [22, 2375, 2376, 51678, 51679];

    public required string Cluster { get; init; }

    /// <summary>32 hex digits, the last part of the ARN.</summary>
    public required string Id { get; init; }

    /// <summary>The host's own identifier (ECS: the EC2 instance id; here the worker's host name or configured id).</summary>
    public required string Ec2InstanceId { get; init; }

    public string Status { get; init; } = Active;
    public string? StatusReason { get; init; }

    public required int RegisteredCpu { get; init; }
    public required int RegisteredMemory { get; init; }

    /// <summary>Host ports unavailable to tasks from the start (PORTS / PORTS_UDP in registeredResources).</summary>
    public IReadOnlyList<int> RegisteredTcpPorts { get; init; } = EcsReservedPorts;
    public IReadOnlyList<int> RegisteredUdpPorts { get; init; } = [];

    public IReadOnlyList<Reservation> Reservations { get; init; } = [];
    public IReadOnlyList<InstanceAttribute> Attributes { get; init; } = [];
    public IReadOnlyList<Tag> Tags { get; init; } = [];

    /// <summary>
    /// Task counts as the worker last reported them. What the API shows is <see cref="CountedRunningTasks"/>
    /// and <see cref="CountedPendingTasks"/>, which start from the control plane's own state.
    /// </summary>
    public int RunningTasksCount { get; init; }
    public int PendingTasksCount { get; init; }

    /// <summary>
    /// ECS's <c>runningTasksCount</c>: of the tasks placed here and not yet released (the
    /// reservations, the control plane's own record), as many as the worker last reported running.
    /// </summary>
    public int CountedRunningTasks => RunningOf(Reservations.Count, RunningTasksCount);

    /// <summary>ECS's <c>pendingTasksCount</c>: the placed tasks not counted running, so a task counts from the moment it is placed.</summary>
    public int CountedPendingTasks => Reservations.Count - CountedRunningTasks;

    /// <summary>How many of <paramref name="placed"/> tasks count as running when the worker last reported <paramref name="reported"/>.</summary>
    internal static int RunningOf(int placed, int reported) => Math.Clamp(reported, 0, placed);

    public DateTimeOffset RegisteredAt { get; init; }
    public DateTimeOffset LastHeartbeat { get; init; }

    /// <summary>ECS's <c>version</c>: increases with every change of the instance's record.</summary>
    public long Version { get; init; } = 1;

    public string? AgentVersion { get; init; }
    public string? AgentHash { get; init; }
    public string? DockerVersion { get; init; }

    /// <summary>
    /// The worker process that holds this instance (a token it draws at start and writes when it
    /// registers); null once it stopped cleanly. A second worker with the same instance id is
    /// refused while the holder is alive, and a worker that finds another owner here stops.
    /// </summary>
    public string? Owner { get; init; }

    /// <summary>Changes with every registration and heartbeat: how others see that the worker is alive without reading its clock.</summary>
    public string? Beat { get; init; }

    /// <summary>Where the worker listens for command-queue wakes (<c>address:port</c>, see <see cref="Storage.QueueWake"/>); not part of the API.</summary>
    public string? WakeEndpoint { get; init; }

    /// <summary>
    /// The host's private address, where a load balancer reaches the host ports of its tasks (an <c>instance</c>
    /// target): what ALB resolves an EC2 instance target to, the instance's primary private IPv4, and what the ECS
    /// agent gives containers as <c>HostPrivateIPv4Address</c>. Reported by the worker; not part of the API (ECS's
    /// containerInstance has no such member). Null for a row written before workers reported it.
    /// </summary>
    public string? HostAddress { get; init; }

    /// <summary>
    /// The capacity provider whose pool the instance's worker belongs to (ECS's
    /// <c>capacityProviderName</c>); <c>FARGATE</c> for the hidden hosts Fargate tasks run on.
    /// </summary>
    public string? CapacityProviderName { get; init; }

    /// <summary>A host of the Fargate pool: never shown as a container instance, never given an EC2 task.</summary>
    public bool IsFargateHost => CapacityProviderName == Capacity.CapacityProviderNames.Fargate;

    public ETag ETag { get; init; }

    public int RemainingCpu => RegisteredCpu - Reservations.Sum(r => r.Cpu);
    public int RemainingMemory => RegisteredMemory - Reservations.Sum(r => r.Memory);

    public IEnumerable<int> UsedTcpPorts => RegisteredTcpPorts.Concat(Reservations.SelectMany(r => r.TcpPorts));
    public IEnumerable<int> UsedUdpPorts => RegisteredUdpPorts.Concat(Reservations.SelectMany(r => r.UdpPorts));

    /// <summary>ECS's <c>agentConnected</c>: a heartbeat within <paramref name="timeout"/>.</summary>
    public bool IsAgentConnected(DateTimeOffset now, TimeSpan timeout) => now - LastHeartbeat <= timeout;

    public string? Attribute(string name) => Attributes.FirstOrDefault(a => a.Name == name)?.Value;

    /// <summary>ACTIVE and DRAINING instances count as registered (DescribeClusters' registeredContainerInstancesCount).</summary>
    public bool IsRegistered => Status is Active or Draining;

    public bool HoldsReservationFor(string taskId) => Reservations.Any(r => r.TaskId == taskId);

    /// <summary>
    /// This instance registered again by its host (the worker restarted) as <paramref name="wanted"/>:
    /// resources, agent and Docker versions and the attributes the agent reports (every <c>ecs.*</c>
    /// one, and any it sends) are replaced; custom attributes added since with PutAttributes, the
    /// reservations, the registration time and the tags (unless <paramref name="wanted"/> carries
    /// tags) are kept; it becomes ACTIVE again (DRAINING stays DRAINING) with a fresh heartbeat at
    /// <paramref name="now"/> and <paramref name="beat"/>, and its version goes up by one.
    /// </summary>
    public ContainerInstanceRecord RegisteredAgain(ContainerInstanceRecord wanted, DateTimeOffset now, string beat)
    {
        var reported = wanted.Attributes.Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        // What the agent reported before and no longer does is gone (a worker restarted with
        // Worker__AllowPrivileged off must lose privileged-container); custom attributes stay.
        var kept = Attributes.Where(a => !IsAgentOwned(a.Name) && !reported.Contains(a.Name));
        return this with
        {
            Ec2InstanceId = wanted.Ec2InstanceId,
            // A restarted agent does not undo draining: ECS keeps a DRAINING instance DRAINING.
            Status = Status == Draining ? Draining : Active,
            StatusReason = Status == Draining ? StatusReason : null,
            RegisteredCpu = wanted.RegisteredCpu,
            RegisteredMemory = wanted.RegisteredMemory,
            RegisteredTcpPorts = wanted.RegisteredTcpPorts,
            RegisteredUdpPorts = wanted.RegisteredUdpPorts,
            Attributes = [.. wanted.Attributes, .. kept],
            Tags = wanted.Tags.Count > 0 ? wanted.Tags : Tags,
            AgentVersion = wanted.AgentVersion,
            AgentHash = wanted.AgentHash,
            DockerVersion = wanted.DockerVersion,
            WakeEndpoint = wanted.WakeEndpoint ?? WakeEndpoint,
            HostAddress = wanted.HostAddress ?? HostAddress,
            CapacityProviderName = wanted.CapacityProviderName,
            Owner = wanted.Owner,
            Beat = beat,
            LastHeartbeat = now,
            Version = Version + 1,
        };
    }

    /// <summary>Attributes only an agent reports: ECS's <c>ecs.*</c> and legacy <c>com.amazonaws.ecs.*</c>, and the worker's <c>ecs-worker.*</c>.</summary>
    private static bool IsAgentOwned(string name)
        => name.StartsWith("ecs.", StringComparison.Ordinal)
           || name.StartsWith("com.amazonaws.ecs.", StringComparison.Ordinal)
           || name.StartsWith("ecs-worker.", StringComparison.Ordinal);

    /// <summary>Storage JSON for the list-valued columns: compact, camelCase, nulls left out.</summary>
    private static readonly JsonSerializerOptions StorageJson = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Prefix of the <see cref="LargeJson"/> columns holding <see cref="Reservations"/>.</summary>
    internal const string ReservationsColumn = "Reservations";

    /// <summary>The number of <see cref="Reservations"/>, written with them.</summary>
    internal const string PlacedTasksColumn = "PlacedTasks";

    /// <summary>
    /// The row. <see cref="Reservations"/> may grow with the tasks on the host, so it is split
    /// across columns by <see cref="LargeJson"/>; the other lists are small (attributes are capped
    /// by ECS's limits) and take one column each. Throws <see cref="ClientException"/> when the
    /// row would exceed what one entity holds.
    /// </summary>
    internal TableEntity ToEntity()
    {
        var entity = new TableEntity(Cluster, Id)
        {
            ["Ec2InstanceId"] = Ec2InstanceId,
            ["Status"] = Status,
            ["StatusReason"] = StatusReason,
            ["RegisteredCpu"] = RegisteredCpu,
            ["RegisteredMemory"] = RegisteredMemory,
            ["RegisteredTcpPorts"] = JsonSerializer.Serialize(RegisteredTcpPorts, StorageJson),
            ["RegisteredUdpPorts"] = JsonSerializer.Serialize(RegisteredUdpPorts, StorageJson),
            ["Attributes"] = JsonSerializer.Serialize(Attributes, StorageJson),
            ["Tags"] = Tag.Serialize(Tags),
            ["RunningTasksCount"] = RunningTasksCount,
            ["PendingTasksCount"] = PendingTasksCount,
            ["RegisteredAt"] = RegisteredAt,
            ["LastHeartbeat"] = LastHeartbeat,
            ["Version"] = Version,
            ["AgentVersion"] = AgentVersion,
            ["AgentHash"] = AgentHash,
            ["DockerVersion"] = DockerVersion,
            ["WakeEndpoint"] = WakeEndpoint,
            ["HostAddress"] = HostAddress,
            ["CapacityProviderName"] = CapacityProviderName,
            ["Owner"] = Owner,
            ["Beat"] = Beat,
        };
        foreach (var column in new[] { "RegisteredTcpPorts", "RegisteredUdpPorts", "Attributes" })
        {
            if (entity.GetString(column)!.Length > LargeJson.ChunkChars)
                throw new ClientException($"The container instance's {column} exceed what can be stored.");
        }
        var reservations = JsonSerializer.Serialize(Reservations, StorageJson);
        if (!LargeJson.Fits(reservations))
            throw new ClientException("The container instance holds more task reservations than can be stored.");
        LargeJson.Write(entity, reservations, ReservationsColumn);
        // How many tasks are placed here, so DescribeClusters counts them without reading the reservations.
        entity[PlacedTasksColumn] = Reservations.Count;
        return entity;
    }

    internal static ContainerInstanceRecord FromEntity(TableEntity entity) => new()
    {
        Cluster = entity.PartitionKey,
        Id = entity.RowKey,
        Ec2InstanceId = entity.GetString("Ec2InstanceId") ?? entity.RowKey,
        Status = entity.GetString("Status") ?? Active,
        StatusReason = entity.GetString("StatusReason"),
        RegisteredCpu = entity.GetInt32("RegisteredCpu") ?? 0,
        RegisteredMemory = entity.GetInt32("RegisteredMemory") ?? 0,
        RegisteredTcpPorts = Deserialize<List<int>>(entity.GetString("RegisteredTcpPorts")) ?? [.. EcsReservedPorts],
        RegisteredUdpPorts = Deserialize<List<int>>(entity.GetString("RegisteredUdpPorts")) ?? [],
        Reservations = Deserialize<List<Reservation>>(LargeJson.Read(entity, ReservationsColumn)) ?? [],
        Attributes = Deserialize<List<InstanceAttribute>>(entity.GetString("Attributes")) ?? [],
        Tags = Tag.Deserialize(entity.GetString("Tags")),
        RunningTasksCount = entity.GetInt32("RunningTasksCount") ?? 0,
        PendingTasksCount = entity.GetInt32("PendingTasksCount") ?? 0,
        RegisteredAt = entity.GetDateTimeOffset("RegisteredAt") ?? default,
        LastHeartbeat = entity.GetDateTimeOffset("LastHeartbeat") ?? default,
        Version = entity.GetInt64("Version") ?? 1,
        AgentVersion = entity.GetString("AgentVersion"),
        AgentHash = entity.GetString("AgentHash"),
        DockerVersion = entity.GetString("DockerVersion"),
        WakeEndpoint = entity.GetString("WakeEndpoint"),
        HostAddress = entity.GetString("HostAddress"),
        CapacityProviderName = entity.GetString("CapacityProviderName"),
        Owner = entity.GetString("Owner") is { Length: > 0 } owner ? owner : null,
        Beat = entity.GetString("Beat"),
        ETag = entity.ETag,
    };

    private static T? Deserialize<T>(string? json) where T : class
        => string.IsNullOrEmpty(json) ? null : JsonSerializer.Deserialize<T>(json, StorageJson);
}
