using Serverless.Core.Tasks;
using Serverless.Worker.Reporting;

namespace Serverless.Worker.Docker;

/// <summary>
/// One task this worker manages (the agent's <c>managedTask</c>): desired and known status, its
/// containers, and what was reported. Its fields are read and changed only by its
/// <see cref="TaskLoop"/>, one input at a time (everyone else reads the loop's <see cref="TaskView"/>);
/// container statuses only move forward, so a late Docker event or a stale inspect cannot undo a newer one.
/// </summary>
internal sealed class ManagedTask
{
    public ManagedTask(string cluster, string taskArn, TaskPlan plan)
    {
        Cluster = cluster;
        TaskArn = taskArn;
        Plan = plan;
        Containers = plan.Containers.Select(c => new ManagedContainer(c)).ToList();
    }

    public string Cluster { get; }

    public string TaskArn { get; }

    public string TaskId => Core.Arns.LastSegment(TaskArn);

    public TaskPlan Plan { get; }

    public IReadOnlyList<ManagedContainer> Containers { get; }

    public string DesiredStatus { get; set; } = EcsTaskStatus.Running;

    /// <summary>PENDING, RUNNING, STOPPING or STOPPED.</summary>
    public string KnownStatus { get; set; } = EcsTaskStatus.Pending;

    public DateTimeOffset? PullStartedAt { get; set; }
    public DateTimeOffset? PullStoppedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? ExecutionStoppedAt { get; set; }
    public string? StopCode { get; set; }
    public string? StoppedReason { get; set; }

    /// <summary>The <c>traceparent</c> its reports carry: the worker's start of the task, in the trace of the command.</summary>
    public string? TraceParent { get; set; }

    /// <summary>The Start command's sealed secret values (or why there are none); null: look in table <c>TaskSecrets</c>.</summary>
    public Core.Secrets.TaskSecretsDelivery? Secrets { get; init; }

    /// <summary>An <c>awsvpc</c> task's address, read from its pause container.</summary>
    public TaskNetworkInterface? NetworkInterface { get; set; }

    public TaskReportState Reports { get; } = new();

    /// <summary>Cancelled when the task starts stopping: whatever still waits to start gives up.</summary>
    public CancellationTokenSource Lifetime { get; } = new();

    /// <summary>
    /// Whether the task's containers may be started: the Start's check of the task row, which runs
    /// beside the preparation (pull, create) and is awaited before the first container starts.
    /// </summary>
    public Task<bool> StartAllowed { get; init; } = Task.FromResult(true);

    /// <summary>The running start sequence (create, start in dependency order); the stop waits for it.</summary>
    public Task StartSequence { get; set; } = Task.CompletedTask;

    /// <summary>The stop in progress, once there is one (only one ever runs).</summary>
    public Task? StopSequence { get; set; }

    public bool IsStopping => StopSequence is not null;

    public ManagedContainer? Container(string name) => Containers.FirstOrDefault(c => c.Name == name);

    public IReadOnlyList<ContainerSnapshot> States() => Containers.Select(c => c.State).ToList();

    /// <summary>The report of the current state (called by the task's loop).</summary>
    public TaskStateChange Snapshot(string containerInstanceArn, DateTimeOffset now) => new()
    {
        Cluster = Cluster,
        TaskArn = TaskArn,
        ContainerInstanceArn = containerInstanceArn,
        LastStatus = KnownStatus,
        PullStartedAt = PullStartedAt,
        PullStoppedAt = PullStoppedAt,
        StartedAt = StartedAt,
        ExecutionStoppedAt = KnownStatus == EcsTaskStatus.Stopped ? ExecutionStoppedAt : null,
        StopCode = KnownStatus == EcsTaskStatus.Stopped ? StopCode : null,
        StoppedReason = KnownStatus == EcsTaskStatus.Stopped ? StoppedReason : null,
        HealthStatus = TaskStatusRules.TaskHealth(States()),
        // The pause container is the worker's own business, as in the agent: never reported.
        Containers = Containers.Where(c => !c.Plan.Internal).Select(c => c.Report()).ToList(),
        NetworkInterface = NetworkInterface,
        ObservedAt = now,
        TraceParent = TraceParent,
    };
}

/// <summary>One container of a <see cref="ManagedTask"/>.</summary>
internal sealed class ManagedContainer(ContainerPlan plan)
{
    public ContainerPlan Plan { get; } = plan;

    public string Name => Plan.Name;

    public bool Essential => Plan.Essential;

    public string? DockerId { get; private set; }

    public ContainerKnownStatus Status { get; private set; }

    public bool Started { get; private set; }

    public int? ExitCode { get; private set; }

    public string? Reason { get; set; }

    /// <summary>HEALTHY/UNHEALTHY/UNKNOWN when the container has a health check.</summary>
    public string? Health { get; private set; } = plan.HasHealthCheck ? HealthStatus.Unknown : null;

    /// <summary>Docker reported an OOM kill before the container died.</summary>
    public bool OutOfMemory { get; set; }

    public IReadOnlyList<NetworkBinding> Bindings { get; set; } = [];

    public ContainerSnapshot State => new(Name, Essential, Status, Started, ExitCode, Health, Plan.HasHealthCheck);

    /// <summary>Records the Docker id of the created container; false when it was known already.</summary>
    public bool MarkCreated(string dockerId)
    {
        if (DockerId == dockerId && Status >= ContainerKnownStatus.Created) return false;
        DockerId = dockerId;
        if (Status < ContainerKnownStatus.Created) Status = ContainerKnownStatus.Created;
        return true;
    }

    /// <summary>The container runs; ignored once it stopped (statuses only move forward).</summary>
    public bool MarkRunning()
    {
        if (Status >= ContainerKnownStatus.Running) return false;
        Status = ContainerKnownStatus.Running;
        Started = true;
        return true;
    }

    /// <summary>
    /// The container stopped: with its exit code when it ran. A container that ran is marked
    /// started even if its start was never seen (an exit code means it ran).
    /// </summary>
    public bool MarkStopped(int? exitCode, string? reason)
    {
        if (Status == ContainerKnownStatus.Stopped)
        {
            // A later, better-informed observation may still supply the exit code.
            if (ExitCode is null && exitCode is not null && Started)
            {
                ExitCode = exitCode;
                return true;
            }
            return false;
        }
        if (exitCode is not null && Status >= ContainerKnownStatus.Created) Started = true;
        Status = ContainerKnownStatus.Stopped;
        ExitCode = Started ? exitCode : null;
        Reason ??= reason ?? (OutOfMemory ? "OutOfMemoryError: Container killed due to memory usage" : null);
        return true;
    }

    public bool SetHealth(string health)
    {
        if (Health is null || Health == health || Status == ContainerKnownStatus.Stopped) return false;
        Health = health;
        return true;
    }

    public ContainerStateChange Report() => new()
    {
        Name = Name,
        RuntimeId = DockerId,
        LastStatus = Status switch
        {
            ContainerKnownStatus.Running => EcsTaskStatus.Running,
            ContainerKnownStatus.Stopped => EcsTaskStatus.Stopped,
            _ => EcsTaskStatus.Pending,
        },
        ExitCode = ExitCode,
        Reason = Reason,
        HealthStatus = Health,
        NetworkBindings = Status == ContainerKnownStatus.Running ? Bindings : [],
    };
}
