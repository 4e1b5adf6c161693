using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Capacity;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.Tasks;

/// <summary>One container of a task, as DescribeTasks shows it.</summary>
public sealed record TaskContainer
{
    public required string Name { get; init; }
    /// <summary>The id in the container's ARN.</summary>
    public required string Id { get; init; }
    public required string Image { get; init; }
    public string LastStatus { get; init; } = EcsTaskStatus.Pending;
    public string? RuntimeId { get; init; }
    public int? ExitCode { get; init; }
    public string? Reason { get; init; }
    public string? HealthStatus { get; init; }
    public string? ImageDigest { get; init; }
    public IReadOnlyList<NetworkBinding> NetworkBindings { get; init; } = [];
    public int Cpu { get; init; }
    public int? Memory { get; init; }
    public int? MemoryReservation { get; init; }
}

/// <summary>
/// A task row. The task id's first 8 hex digits are a hash of the task's <see cref="Group"/>
/// (<c>service:web</c>, <c>family:api</c>, or a custom group), and the partition key is
/// <c>cluster|those 8 digits</c>: a service's tasks are one small partition that its reconcile
/// reads alone, whatever else runs in the cluster, and any task ARN still names its partition.
/// </summary>
public sealed record TaskRecord
{
    public required string Cluster { get; init; }
    public required string Id { get; init; }
    public required string Group { get; init; }
    public required string TaskDefinitionArn { get; init; }
    public required string Family { get; init; }
    public required string ContainerInstanceId { get; init; }
    /// <summary>Where the instance's worker took command-queue wakes when the task was placed (<see cref="Storage.QueueWake"/>).</summary>
    public string? WakeEndpoint { get; init; }
    public string LastStatus { get; init; } = EcsTaskStatus.Provisioning;
    public string DesiredStatus { get; init; } = EcsTaskStatus.Running;
    public string LaunchType { get; init; } = "EC2";
    public string? StartedBy { get; init; }
    /// <summary>
    /// The <c>clientToken</c> of the RunTask that placed it: a retry that takes over the token from an
    /// attempt that died before recording its answer finds what that attempt placed (never shown).
    /// </summary>
    public string? ClientToken { get; init; }
    /// <summary>Reserved cpu units and MiB, as ECS reports them (strings on the wire).</summary>
    public int Cpu { get; init; }
    public int Memory { get; init; }
    public IReadOnlyList<TaskContainer> Containers { get; init; } = [];
    /// <summary>An <c>awsvpc</c> task's network interface; null in other network modes.</summary>
    public NetworkAttachment? Attachment { get; init; }
    /// <summary>FARGATE: the platform version the task runs on (<c>LATEST</c> resolved).</summary>
    public string? PlatformVersion { get; init; }
    /// <summary>The capacity provider that placed the task, when one did.</summary>
    public string? CapacityProviderName { get; init; }
    public JsonObject? Overrides { get; init; }
    public IReadOnlyList<Tag> Tags { get; init; } = [];
    public string? HealthStatus { get; init; }
    public string? StopCode { get; init; }
    public string? StoppedReason { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? PullStartedAt { get; init; }
    public DateTimeOffset? PullStoppedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? StoppingAt { get; init; }
    public DateTimeOffset? StoppedAt { get; init; }
    public DateTimeOffset? ExecutionStoppedAt { get; init; }
    /// <summary>
    /// When Stop was last sent (or attempted) to the task's worker: a task desired STOPPED that has
    /// not stopped gets it again once <see cref="TaskDeadlines.StopResendAfter"/> has passed, so a
    /// lost Stop is only ever late (stop delivery is level-triggered).
    /// </summary>
    public DateTimeOffset? StopSentAt { get; init; }
    /// <summary>
    /// A Stop held back while the task's load balancer targets drain (ECS's DEACTIVATING): the first
    /// Stop is sent at this time, not when the task was asked to stop. Null when nothing drains.
    /// </summary>
    public DateTimeOffset? DrainingUntil { get; init; }
    /// <summary>When the last applied worker report was observed, to order health reports.</summary>
    public DateTimeOffset? ObservedAt { get; init; }
    /// <summary>ECS's <c>version</c>: increases with every change.</summary>
    public long Version { get; init; } = 1;
    /// <summary>Task scale-in protection (UpdateTaskProtection) until this time; null when not protected.</summary>
    public DateTimeOffset? ProtectedUntil { get; init; }
    public ETag ETag { get; init; }

    /// <summary>ECS's DEACTIVATING: told to stop, running, its Stop held back while its load balancer targets drain.</summary>
    public bool IsDeactivating => DesiredStatus == EcsTaskStatus.Stopped && LastStatus == EcsTaskStatus.Running && DrainingUntil is not null && StopSentAt is null;

    /// <summary>The service that runs the task (its group <c>service:NAME</c>); null for a standalone task.</summary>
    public string? ServiceName => Group.StartsWith(ServiceGroupPrefix, StringComparison.Ordinal) ? Group[ServiceGroupPrefix.Length..] : null;
    public const string ServiceGroupPrefix = "service:";

    /// <summary>Protected from scale-in and deployments at <paramref name="now"/>.</summary>
    public bool IsProtectedAt(DateTimeOffset now) => ProtectedUntil is { } until && until > now;

    public string PartitionKey => TaskIds.PartitionKey(Cluster, Id);

    public bool IsStopped => LastStatus == EcsTaskStatus.Stopped;

    /// <summary>
    /// A task of a capacity provider that found no room: PROVISIONING with no container instance
    /// yet, until the capacity loop places it (<see cref="Capacity.WaitingTasks"/>) or its wait ends.
    /// </summary>
    public bool IsWaitingForCapacity => ContainerInstanceId.Length == 0 && !IsStopped;

    /// <summary>When the task got its container instance (its start deadline counts from here); null: at creation.</summary>
    public DateTimeOffset? PlacedAt { get; init; }

    /// <summary>
    /// The one way to ask a task to stop: desired STOPPED, stopping since now (or since it was
    /// first asked), the Stop sent now. The first stop code and reason stand, as on ECS (a
    /// StopTask's reason is not overwritten by the scheduler's). Null when it was already asked,
    /// so an update writes nothing. The caller sends the Stop command after the write.
    /// </summary>
    /// With <paramref name="drainingUntil"/>, the Stop is held back until then (the task's targets drain
    /// first) and the caller sends nothing: it falls due as a resend does (<see cref="TaskDeadlines.NextStopAt"/>).
    public TaskRecord? RequestStop(string stopCode, string reason, DateTimeOffset now, DateTimeOffset? drainingUntil = null)
        => DesiredStatus == EcsTaskStatus.Stopped ? null : this with
        {
            DesiredStatus = EcsTaskStatus.Stopped,
            StoppingAt = StoppingAt ?? now,
            StopSentAt = drainingUntil is null ? now : null,
            DrainingUntil = drainingUntil,
            StopCode = StopCode ?? stopCode,
            StoppedReason = StoppedReason ?? reason,
        };

    /// <summary>
    /// The task recorded STOPPED by the control plane's own decision, for when no worker will report
    /// it (its instance is lost or deregistered, its start deadline passed, its Start could not be
    /// sent): it and its containers STOPPED, with the first stop code and reason kept. Null when it
    /// is already STOPPED. The caller sends Stop in case a worker runs it after all, and frees its reservation.
    /// </summary>
    public TaskRecord? RecordStopped(string stopCode, string reason, DateTimeOffset now)
        => IsStopped ? null : this with
        {
            LastStatus = EcsTaskStatus.Stopped,
            DesiredStatus = EcsTaskStatus.Stopped,
            StopCode = StopCode ?? stopCode,
            StoppedReason = StoppedReason ?? reason,
            StoppingAt = StoppingAt ?? now,
            StoppedAt = now,
            ExecutionStoppedAt = ExecutionStoppedAt ?? now,
            StopSentAt = now,
            Containers = Containers.Select(c => c with { LastStatus = EcsTaskStatus.Stopped }).ToList(),
        };

    private static readonly JsonSerializerOptions Json = TaskMessages.Json;

    /// <summary>Column: when an unacknowledged task was placed (<see cref="TaskDeadlines.AwaitingAckSince"/>); absent once acknowledged.</summary>
    internal const string AwaitingAckSinceColumn = "AwaitingAckSince";

    /// <summary>Column: when Stop is next due (<see cref="TaskDeadlines.NextStopAt"/>); absent unless the task is told to stop and has not.</summary>
    internal const string StopDueAtColumn = "StopDueAt";

    internal TableEntity ToEntity()
    {
        var entity = new TableEntity(PartitionKey, Id)
        {
            ["Cluster"] = Cluster,
            ["Group"] = Group,
            ["TaskDefinitionArn"] = TaskDefinitionArn,
            ["Family"] = Family,
            ["ContainerInstanceId"] = ContainerInstanceId,
            ["WakeEndpoint"] = WakeEndpoint,
            ["LastStatus"] = LastStatus,
            ["DesiredStatus"] = DesiredStatus,
            ["LaunchType"] = LaunchType,
            ["StartedBy"] = StartedBy,
            ["ClientToken"] = ClientToken,
            ["Cpu"] = Cpu,
            ["Memory"] = Memory,
            ["Overrides"] = Overrides?.ToJsonString(),
            ["Attachment"] = Attachment is null ? null : JsonSerializer.Serialize(Attachment, Json),
            ["PlatformVersion"] = PlatformVersion,
            ["CapacityProviderName"] = CapacityProviderName,
            ["Tags"] = Tag.Serialize(Tags),
            ["HealthStatus"] = HealthStatus,
            ["StopCode"] = StopCode,
            ["StoppedReason"] = StoppedReason,
            ["CreatedAt"] = CreatedAt,
            ["PullStartedAt"] = PullStartedAt,
            ["PullStoppedAt"] = PullStoppedAt,
            ["StartedAt"] = StartedAt,
            ["StoppingAt"] = StoppingAt,
            ["StoppedAt"] = StoppedAt,
            ["ExecutionStoppedAt"] = ExecutionStoppedAt,
            ["StopSentAt"] = StopSentAt,
            ["DrainingUntil"] = DrainingUntil,
            ["ObservedAt"] = ObservedAt,
            ["PlacedAt"] = PlacedAt,
            ["Version"] = Version,
            ["ProtectedUntil"] = ProtectedUntil,
            // What the delivery sweep selects on, so its query returns only the rows it must act on.
            [AwaitingAckSinceColumn] = TaskDeadlines.AwaitingAckSince(this),
            [StopDueAtColumn] = TaskDeadlines.NextStopAt(this),
        };
        LargeJson.Write(entity, JsonSerializer.Serialize(Containers, Json), "Containers");
        return entity;
    }

    internal static TaskRecord FromEntity(TableEntity entity) => new()
    {
        Cluster = entity.GetString("Cluster"),
        Id = entity.RowKey,
        Group = entity.GetString("Group"),
        TaskDefinitionArn = entity.GetString("TaskDefinitionArn"),
        Family = entity.GetString("Family"),
        ContainerInstanceId = entity.GetString("ContainerInstanceId"),
        WakeEndpoint = entity.GetString("WakeEndpoint"),
        LastStatus = entity.GetString("LastStatus"),
        DesiredStatus = entity.GetString("DesiredStatus"),
        LaunchType = entity.GetString("LaunchType") ?? "EC2",
        StartedBy = entity.GetString("StartedBy"),
        ClientToken = entity.GetString("ClientToken"),
        Cpu = entity.GetInt32("Cpu") ?? 0,
        Memory = entity.GetInt32("Memory") ?? 0,
        Containers = JsonSerializer.Deserialize<List<TaskContainer>>(LargeJson.Read(entity, "Containers") ?? "[]", Json)!,
        Attachment = entity.GetString("Attachment") is { } attachment ? JsonSerializer.Deserialize<NetworkAttachment>(attachment, Json) : null,
        PlatformVersion = entity.GetString("PlatformVersion"),
        CapacityProviderName = entity.GetString("CapacityProviderName"),
        Overrides = entity.GetString("Overrides") is { } overrides ? JsonNode.Parse(overrides)!.AsObject() : null,
        Tags = Tag.Deserialize(entity.GetString("Tags")),
        HealthStatus = entity.GetString("HealthStatus"),
        StopCode = entity.GetString("StopCode"),
        StoppedReason = entity.GetString("StoppedReason"),
        CreatedAt = entity.GetDateTimeOffset("CreatedAt") ?? default,
        PullStartedAt = entity.GetDateTimeOffset("PullStartedAt"),
        PullStoppedAt = entity.GetDateTimeOffset("PullStoppedAt"),
        StartedAt = entity.GetDateTimeOffset("StartedAt"),
        StoppingAt = entity.GetDateTimeOffset("StoppingAt"),
        StoppedAt = entity.GetDateTimeOffset("StoppedAt"),
        ExecutionStoppedAt = entity.GetDateTimeOffset("ExecutionStoppedAt"),
        StopSentAt = entity.GetDateTimeOffset("StopSentAt"),
        DrainingUntil = entity.GetDateTimeOffset("DrainingUntil"),
        ObservedAt = entity.GetDateTimeOffset("ObservedAt"),
        PlacedAt = entity.GetDateTimeOffset("PlacedAt"),
        Version = entity.GetInt64("Version") ?? 1,
        ProtectedUntil = entity.GetDateTimeOffset("ProtectedUntil"),
        ETag = entity.ETag,
    };
}

/// <summary>Task ids and where their rows live.</summary>
public static class TaskIds
{
    /// <summary>32 lowercase hex digits, as ECS task ids: 8 from the group's hash, 24 random.</summary>
    public static string New(string group)
        => GroupHash(group) + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    public static string GroupHash(string group)
        => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(group)).AsSpan(0, 4));

    public static string PartitionKey(string cluster, string taskId) => $"{cluster}|{taskId[..8]}";

    public static string GroupPartitionKey(string cluster, string group) => $"{cluster}|{GroupHash(group)}";

    /// <summary>Whether <paramref name="id"/> can be a task id of ours (anything else cannot exist).</summary>
    public static bool IsValid(string id) => id.Length == 32 && id.All(char.IsAsciiHexDigitLower);
}
