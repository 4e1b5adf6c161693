using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Serverless.Core.Tasks;

/// <summary>
/// Messages between the control plane and workers. Small, versioned JSON (<see cref="V"/>);
/// a reader ignores members it does not know, so either side can be upgraded first.
/// </summary>
public static class TaskMessages
{
    /// <summary>The queue every worker reports <see cref="TaskStateChange"/>s to.</summary>
    public const string TaskEventsQueue = "task-events";

    /// <summary>The command queue of one container instance (queue names: lowercase, 3-63 chars).</summary>
    public static string CommandQueue(string containerInstanceId) => $"ci-{containerInstanceId.ToLowerInvariant()}";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string Serialize<T>(T message) => JsonSerializer.Serialize(message, Json);

    /// <summary>Azure's limit on a queue message (64 KiB of message text; messages are sent unencoded, as JSON).</summary>
    public const int MaxMessageBytes = 64 * 1024;

    /// <summary>Whether <paramref name="json"/> can be sent as one queue message.</summary>
    public static bool FitsInOneMessage(string json) => System.Text.Encoding.UTF8.GetByteCount(json) <= MaxMessageBytes;

    public static T Deserialize<T>(string json) => JsonSerializer.Deserialize<T>(json, Json)
        ?? throw new JsonException($"Empty {typeof(T).Name} message");

    /// <summary>Several reports in one <c>task-events</c> message (a single one is sent bare).</summary>
    public static string SerializeReports(IEnumerable<TaskStateChange> changes)
        => Serialize(new TaskStateReports { Changes = changes.ToList() });

    /// <summary>The reports of one <c>task-events</c> message: a bare <see cref="TaskStateChange"/> or a <see cref="TaskStateReports"/>.</summary>
    public static IReadOnlyList<TaskStateChange> DeserializeReports(string json)
    {
        var node = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("A task-events message is not a JSON object");
        return node.ContainsKey("changes")
            ? node.Deserialize<TaskStateReports>(Json)?.Changes ?? []
            : [node.Deserialize<TaskStateChange>(Json) ?? throw new JsonException("Empty TaskStateChange message")];
    }
}

/// <summary>Reports of several tasks in one message, in the order they were observed.</summary>
public sealed record TaskStateReports
{
    public int V { get; init; } = 1;
    public required IReadOnlyList<TaskStateChange> Changes { get; init; }
}

/// <summary>What a worker is told to do with one task. Sent to the instance's command queue.</summary>
public sealed record TaskCommand
{
    public const string Start = "Start";
    public const string Stop = "Stop";

    public int V { get; init; } = 1;

    /// <summary><see cref="Start"/> or <see cref="Stop"/>.</summary>
    public required string Type { get; init; }

    public required string Cluster { get; init; }

    public required string TaskArn { get; init; }

    /// <summary>Start: the revision to run (immutable, so a worker may cache it by ARN).</summary>
    public string? TaskDefinitionArn { get; init; }

    /// <summary>Start: the task's <c>overrides</c> as RunTask took them (containerOverrides, cpu, memory...).</summary>
    public JsonObject? Overrides { get; init; }

    /// <summary>Start: the task's <c>startedBy</c> and <c>group</c>, for the containers' labels.</summary>
    public string? StartedBy { get; init; }

    public string? Group { get; init; }

    /// <summary>Start: an <c>awsvpc</c> task's subnet (its attachment's <c>subnetId</c>), whose network on the worker it joins.</summary>
    public string? SubnetId { get; init; }

    /// <summary>Stop: the reason the control plane recorded (<c>stoppedReason</c>).</summary>
    public string? Reason { get; init; }

    /// <summary>
    /// Where the sending control plane takes wakes for <see cref="TaskMessages.TaskEventsQueue"/>
    /// (<see cref="Storage.QueueWake"/>), so the worker can have its reports picked up at once; null when it takes none.
    /// </summary>
    public string? ReportWake { get; init; }

    /// <summary>The W3C <c>traceparent</c> of the call that sent it, so the worker's work joins that trace.</summary>
    public string? TraceParent { get; init; }

    /// <summary>
    /// Start: the task's secret values sealed to the instance's key, or why there are none; null for a
    /// task without secrets, or when they did not fit in the message (then they are in table <c>TaskSecrets</c>).
    /// </summary>
    public Secrets.TaskSecretsDelivery? Secrets { get; init; }
}

/// <summary>
/// A worker's report of a task's known state (the ECS agent's task state change). The applier
/// never moves a task backwards: a report older than what is recorded changes nothing.
/// </summary>
public sealed record TaskStateChange
{
    public int V { get; init; } = 1;
    public required string Cluster { get; init; }
    public required string TaskArn { get; init; }
    public required string ContainerInstanceArn { get; init; }

    /// <summary>PENDING, RUNNING, STOPPING or STOPPED.</summary>
    public required string LastStatus { get; init; }

    public DateTimeOffset? PullStartedAt { get; init; }
    public DateTimeOffset? PullStoppedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? ExecutionStoppedAt { get; init; }

    /// <summary>Set with STOPPED when the worker decided it (TaskFailedToStart, EssentialContainerExited).</summary>
    public string? StopCode { get; init; }

    public string? StoppedReason { get; init; }

    /// <summary>Task health (HEALTHY, UNHEALTHY, UNKNOWN) from its essential containers' health checks.</summary>
    public string? HealthStatus { get; init; }

    public IReadOnlyList<ContainerStateChange> Containers { get; init; } = [];

    /// <summary>An <c>awsvpc</c> task's address on its own network, once it has one.</summary>
    public TaskNetworkInterface? NetworkInterface { get; init; }

    /// <summary>When the worker observed this state; orders reports of the same status.</summary>
    public DateTimeOffset ObservedAt { get; init; }

    /// <summary>The W3C <c>traceparent</c> of the worker's start of the task, so applying the report joins its trace.</summary>
    public string? TraceParent { get; init; }
}

public sealed record ContainerStateChange
{
    public required string Name { get; init; }
    public string? RuntimeId { get; init; }
    public required string LastStatus { get; init; }
    public int? ExitCode { get; init; }
    public string? Reason { get; init; }
    public string? HealthStatus { get; init; }
    public string? ImageDigest { get; init; }
    public IReadOnlyList<NetworkBinding> NetworkBindings { get; init; } = [];
}

/// <summary>Where an <c>awsvpc</c> task is reachable: the address and MAC of its network interface (its Docker network endpoint).</summary>
public sealed record TaskNetworkInterface(string PrivateIpv4Address, string? MacAddress);

/// <summary>ECS's <c>NetworkBinding</c>: where Docker published a container port on the host.</summary>
public sealed record NetworkBinding(string BindIP, int ContainerPort, int HostPort, string Protocol);
