using System.Collections.Concurrent;
using System.Security.Cryptography;
using Docker.DotNet;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Tasks;
using Serverless.Worker.Logs;
using Serverless.Worker.Registration;
using Serverless.Worker.Reporting;

namespace Serverless.Worker.Docker;

/// <summary>
/// Runs tasks on the local Docker engine, the ECS agent's task engine: starts a task's containers
/// in dependency order, follows them through Docker's events, stops them, reports every state
/// change, and cleans up. A router: each task's state has one owner, its <see cref="TaskLoop"/>,
/// which commands and Docker events reach by the task's ARN; a task ARN once stopped is
/// remembered, so a duplicated or late command cannot bring it back.
/// </summary>
public sealed partial class TaskRunner : IDisposable, IAsyncDisposable
{
    public const string EssentialContainerExited = "EssentialContainerExited";
    public const string TaskFailedToStart = "TaskFailedToStart";
    public const string EssentialContainerExitedReason = "Essential container in task exited";
    public const string StoppedWhileWorkerWasDown = "Task stopped while the worker was down";

    /// <summary>How long stopped task ARNs are remembered.</summary>
    private static readonly TimeSpan TombstoneLifetime = TimeSpan.FromHours(6);

    private readonly IDockerClient _docker;
    private readonly ImagePuller _images;
    private readonly TaskDefinitionCache _definitions;
    private readonly TaskStore _taskStore;
    private readonly TaskStateReporter _reporter;
    private readonly WorkerIdentity _identity;
    private readonly WorkerOptions _options;
    private readonly Arns _arns;
    private readonly TimeProvider _time;
    private readonly ILogger<TaskRunner> _logger;
    private readonly Secrets.TaskSecretsReceiver _secrets;
    private readonly AwsLogsShipper _logs;
    private readonly Metadata.TaskMetadataEndpoint _metadata;
    private readonly EngineStorage _storage;

    /// <summary>
    /// Every task ARN this worker knows, in one table so that admitting a task, finishing it and
    /// answering a Stop for an unknown task are each one atomic step on one entry, with no lock
    /// across tasks: a task it manages, or the time it finished here (its tombstone).
    /// </summary>
    private readonly ConcurrentDictionary<string, Known> _known = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();

    /// <summary>The subnet networks' gates and when each was last let go by a task (<see cref="ReleaseNetwork"/>).</summary>
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _networkGates = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _networkReleases = new(StringComparer.Ordinal);

    public TaskRunner(
        IDockerClient docker, ImagePuller images, TaskDefinitionCache definitions, TaskStore taskStore, TaskStateReporter reporter,
        WorkerIdentity identity, WorkerOptions options, Arns arns, TimeProvider time, ILogger<TaskRunner> logger,
        Secrets.TaskSecretsReceiver secrets, AwsLogsShipper logs, Metadata.TaskMetadataEndpoint metadata, EngineStorage storage)
    {
        _metadata = metadata;
        _storage = storage;
        _secrets = secrets;
        _logs = logs;
        _docker = docker;
        _images = images;
        _definitions = definitions;
        _taskStore = taskStore;
        _reporter = reporter;
        _identity = identity;
        _options = options;
        _arns = arns;
        _time = time;
        _logger = logger;
    }

    /// <summary>Raised when the number of RUNNING or PENDING tasks may have changed (for the heartbeat).</summary>
    public event Action? CountsChanged;

    /// <summary>Tasks RUNNING (or still stopping: their containers still hold the host's resources).</summary>
    public int RunningCount => Loops.Count(t => t.View.KnownStatus is EcsTaskStatus.Running or EcsTaskStatus.Stopping);

    public int PendingCount => Loops.Count(t => t.View.KnownStatus == EcsTaskStatus.Pending);

    /// <summary>Task ARNs this worker manages right now.</summary>
    public IReadOnlyCollection<string> TaskArns => [.. _known.Where(e => e.Value.Loop is not null).Select(e => e.Key)];

    /// <summary>Whether the task already stopped here (and its STOPPED was reported).</summary>
    public bool HasFinished(string taskArn) => _known.TryGetValue(taskArn, out var known) && known.Loop is null;

    /// <summary>The tasks this worker manages right now, each by its loop.</summary>
    private IEnumerable<TaskLoop> Loops => _known.Values.Select(k => k.Loop).OfType<TaskLoop>();

    /// <summary>
    /// Handles a Start command. Returns once the task's first state (PENDING, RUNNING or STOPPED)
    /// is queued, which is when the command may be deleted: from then on the task is this worker's,
    /// and a restart re-adopts it from its containers. A duplicate returns the same way.
    /// </summary>
    /// <param name="redelivered">The command was delivered before: a task whose row is gone is not started.</param>
    public async Task StartAsync(TaskCommand command, bool redelivered, CancellationToken cancellationToken)
    {
        if (Existing(command.TaskArn) is { } known)
        {
            await known.Managed.Reports.FirstReported.WaitAsync(cancellationToken);
            return;
        }
        if (HasFinished(command.TaskArn)) return;

        // The task row is read on every Start: a Start can arrive after the control plane gave up on
        // it (its send had no clear answer and the start deadline stopped the task, or the task was
        // stopped meanwhile), and a task desired STOPPED is never started. A first delivery whose row
        // is missing is started (the control plane writes the row before it sends); a redelivered one
        // was started before, or is gone. The read runs beside the plan, the pull and the create,
        // and only the containers' start waits for it: it costs a launch no time.
        var reading = _taskStore.FindAsync(command.Cluster, TaskIdOf(command.TaskArn), cancellationToken);
        TaskPlan plan;
        try
        {
            plan = await PlanAsync(command.Cluster, command.TaskArn, command.TaskDefinitionArn, command.Overrides, command.StartedBy, command.Group, command.SubnetId, null, cancellationToken);
        }
        catch
        {
            await ((Task)reading).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }
        var verdict = StartVerdictAsync(reading, redelivered);
        var task = new ManagedTask(command.Cluster, command.TaskArn, plan)
        {
            TraceParent = command.TraceParent,
            Secrets = command.Secrets,
            StartAllowed = AllowedAsync(verdict),
        };
        if (Admit(task, out var existing) is not { } loop)
        {
            await ((Task)reading).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (existing is not null) await existing.Managed.Reports.FirstReported.WaitAsync(cancellationToken);
            return;
        }
        _logger.LogInformation("Starting {TaskArn} ({Family}:{Revision}, {Containers} container(s))",
            task.TaskArn, plan.Family, plan.Revision, plan.Containers.Count);
        _ = loop.SendAsync(new TaskInput.Start());

        TaskRecord? refusedBy;
        try
        {
            (var allowed, refusedBy) = await verdict;
            if (allowed)
            {
                await task.Reports.FirstReported.WaitAsync(cancellationToken);
                return;
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The row could not be read: nothing started; the command comes back for another try.
            await WithdrawAsync(loop);
            throw;
        }

        if (refusedBy is { IsStopped: false, DesiredStatus: EcsTaskStatus.Stopped } row)
        {
            _logger.LogInformation("Refused a Start of {TaskArn}: the task is desired STOPPED", command.TaskArn);
            if (await WithdrawAsync(loop))
                await ReportStoppedAsync(command.Cluster, command.TaskArn, null, row.StoppedReason, row.Containers.Select(c => c.Name), null, cancellationToken);
        }
        else
        {
            _logger.LogInformation("Ignored a Start of {TaskArn}: the task is {State}", command.TaskArn, refusedBy is null ? "gone" : "stopped");
            await WithdrawAsync(loop);
        }
    }

    /// <summary>Whether the task row lets this Start run the task; when not, the row that says so (null: it is gone).</summary>
    private static async Task<(bool Allowed, TaskRecord? Row)> StartVerdictAsync(Task<TaskRecord?> reading, bool redelivered)
    {
        var row = await reading;
        var refused = (row is null && redelivered) || row is { IsStopped: true } || row is { DesiredStatus: EcsTaskStatus.Stopped };
        return (!refused, row);
    }

    /// <summary>The start sequence's gate: true only when the verdict allows the start (a failed read does not).</summary>
    private static async Task<bool> AllowedAsync(Task<(bool Allowed, TaskRecord? Row)> verdict)
    {
        try
        {
            return (await verdict).Allowed;
        }
        catch
        {
            return false;
        }
    }

    /// <summary>
    /// Takes back a task whose Start was refused after its preparation began: nothing of it was
    /// started; what was created (containers, task volumes, its network) is removed, and the task
    /// is forgotten without a report. False when a Stop meanwhile owns the task (it reports).
    /// </summary>
    private async Task<bool> WithdrawAsync(TaskLoop loop)
    {
        var withdraw = new TaskInput.Withdraw();
        await loop.SendAsync(withdraw);
        if (!withdraw.Withdrawn) return false;
        loop.Managed.Lifetime.Cancel();
        await withdraw.StartSequence.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        // Forgotten first: the removals' destroy events then belong to no task.
        Finish(loop);
        await loop.RemoveResourcesAsync([], _shutdown.Token);
        return true;
    }

    /// <summary>
    /// Handles a Stop command: SIGTERM to each container, SIGKILL after its stopTimeout, then STOPPED
    /// with the exit codes. Returns once STOPPING or STOPPED is queued (STOPPING only goes out when
    /// the stop takes longer than the transition delay). A task this worker does not run still
    /// gets a STOPPED report, with the command's reason, so the control plane can finish it.
    /// </summary>
    public async Task StopAsync(TaskCommand command, CancellationToken cancellationToken)
    {
        // One step: a task admitted later finds the tombstone and never starts.
        var tombstone = Known.Finished(_time.GetUtcNow());
        var known = _known.GetOrAdd(command.TaskArn, tombstone);
        var unknown = ReferenceEquals(known, tombstone);
        var loop = known.Loop;
        if (loop is null)
        {
            if (unknown)
            {
                _logger.LogInformation("Stop for {TaskArn}, which does not run here: reporting it STOPPED", command.TaskArn);
                await ReportStoppedAsync(command.Cluster, command.TaskArn, null, command.Reason, [], null, cancellationToken);
            }
            return;
        }

        _ = loop.SendAsync(new TaskInput.Stop(stopCode: null, command.Reason, commanded: true));
        await loop.Managed.Reports.StoppingReported.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Gives up a command that kept failing: the task is stopped (if it runs here) or reported
    /// STOPPED with <paramref name="reason"/>, so the control plane does not wait for it forever.
    /// Returns once STOPPED is queued.
    /// </summary>
    internal async Task AbandonAsync(TaskCommand command, string reason, CancellationToken cancellationToken)
    {
        var stopCode = command.Type == TaskCommand.Start ? TaskFailedToStart : null;
        if (Existing(command.TaskArn) is { } loop)
        {
            _ = loop.SendAsync(new TaskInput.Stop(stopCode, reason, commanded: false));
            await loop.Managed.Reports.StoppedReported.WaitAsync(cancellationToken);
        }
        else if (!HasFinished(command.TaskArn))
        {
            await ReportStoppedAsync(command.Cluster, command.TaskArn, stopCode, reason, [], null, cancellationToken);
        }
    }

    /// <summary>Stops every task's pending work without touching its containers (they are adopted after a restart, as the agent's are).</summary>
    public void Dispose()
    {
        // Cancelled, not disposed: background work still reads the token as it winds down.
        _shutdown.Cancel();
    }

    /// <summary>
    /// As <see cref="Dispose"/>, after removing this worker's spare pause containers and its networks
    /// no task it manages is on (a subnet network kept for its next task, <see cref="WorkerOptions.AwsVpcNetworkIdleSeconds"/>,
    /// and its spare do not outlive the worker; a running task's network stays for the next start to adopt).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (!_shutdown.IsCancellationRequested)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                // Spares first: no task owns them, and their networks cannot go while they are on them.
                await CloseSparesAsync(timeout.Token);
                await RemoveSparesAsync(null, keepReady: false, timeout.Token);
                await RemoveNetworksAsync(null, timeout.Token);
            }
            catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or OperationCanceledException or TimeoutException)
            {
                _logger.LogWarning("Could not remove the idle networks at shutdown: {Error}; the next start removes them", e.Message);
            }
        }
        Dispose();
    }

    // ---------------------------------------------------------------- admission

    private TaskLoop? Existing(string taskArn) => _known.TryGetValue(taskArn, out var known) ? known.Loop : null;

    /// <summary>A task this worker manages, for the task metadata endpoint.</summary>
    internal TaskLoop? Managed(string taskArn) => Existing(taskArn);

    /// <summary>
    /// Gives a task its loop and registers it unless it is known or finished (atomic with
    /// <see cref="StopAsync"/>'s check); null when it was not admitted.
    /// </summary>
    private TaskLoop? Admit(ManagedTask task, out TaskLoop? existing)
    {
        var loop = new TaskLoop(task, this, _logger);
        var admitted = Known.Managing(loop);
        var known = _known.GetOrAdd(task.TaskArn, admitted);
        existing = known.Loop;
        if (!ReferenceEquals(known, admitted))
        {
            loop.Close();
            return null;
        }
        CountsChanged?.Invoke();
        return loop;
    }

    /// <summary>The task is done here: its loop is forgotten, its entry becomes a tombstone, and tombstones past their lifetime go.</summary>
    internal void Finish(TaskLoop loop)
    {
        var now = _time.GetUtcNow();
        var taskArn = loop.Managed.TaskArn;
        if (_known.TryGetValue(taskArn, out var known) && known.Loop == loop)
            _known.TryUpdate(taskArn, Known.Finished(now), known);
        Forget(now - TombstoneLifetime);
        CountsChanged?.Invoke();
    }

    /// <summary>Records that a task's STOPPED was reported without it running here (a task it manages stays).</summary>
    private void Tombstone(string taskArn)
        => _known.AddOrUpdate(taskArn, _ => Known.Finished(_time.GetUtcNow()),
            (_, existing) => existing.Loop is not null ? existing : Known.Finished(_time.GetUtcNow()));

    private void Forget(DateTimeOffset cutoff)
    {
        foreach (var entry in _known)
        {
            if (entry.Value.Loop is null && entry.Value.FinishedAt < cutoff) _known.TryRemove(entry);
        }
    }

    /// <summary>One entry of <see cref="_known"/>: a managed task's loop, or a finished task. Compared by reference.</summary>
    private sealed class Known(TaskLoop? loop, DateTimeOffset finishedAt)
    {
        public TaskLoop? Loop { get; } = loop;

        public DateTimeOffset FinishedAt { get; } = finishedAt;

        public static Known Managing(TaskLoop loop) => new(loop, default);

        public static Known Finished(DateTimeOffset at) => new(null, at);
    }

    /// <summary>
    /// The plan for a task: its definition translated with its overrides. A missing definition is a
    /// refused plan (the task stops with TaskFailedToStart). <paramref name="suffix"/> reuses the
    /// Docker names of an adopted task's existing containers.
    /// </summary>
    private async Task<TaskPlan> PlanAsync(
        string cluster, string taskArn, string? taskDefinitionArn, System.Text.Json.Nodes.JsonObject? overrides,
        string? startedBy, string? group, string? subnetId, string? suffix, CancellationToken cancellationToken)
    {
        var key = taskDefinitionArn is null ? null : TaskDefinitionCache.Key(taskDefinitionArn);
        var definition = taskDefinitionArn is null ? null : await _definitions.FindAsync(taskDefinitionArn, cancellationToken);
        if (definition is null)
        {
            return TaskPlan.Refused(key?.Family ?? "unknown", key?.Revision ?? 0,
                $"ResourceInitializationError: the task definition {taskDefinitionArn} does not exist");
        }
        var context = new TaskContext(cluster, taskArn, _identity.InstanceId, startedBy, group, subnetId);
        return TaskTranslation.Plan(definition.TaskDefinition, context, overrides, suffix ?? NewSuffix(), Defaults());
    }

    private PlanDefaults Defaults() => new(
        TimeSpan.FromSeconds(_options.ContainerStopTimeoutSeconds), TimeSpan.FromSeconds(_options.ContainerStartTimeoutSeconds))
    {
        Permissions = TaskPermissions.From(_options),
        PauseImage = _options.PauseImage,
        SizeWritableLayers = _storage.SizesWritableLayers,
    };

    /// <summary>The agent's random hex that makes Docker names unique.</summary>
    private static string NewSuffix() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));

    internal static string TaskIdOf(string taskArn) => Arns.LastSegment(taskArn);

    // ---------------------------------------------------------------- what the task loops use

    /// <summary>The agent's reason for a container Docker no longer knows.</summary>
    internal const string ContainerVanished = "ContainerVanishedError: No container matching saved ID found";

    internal IDockerClient Engine => _docker;
    internal ImagePuller Images => _images;
    internal Secrets.TaskSecretsReceiver SecretsReceiver => _secrets;
    internal AwsLogsShipper LogShipper => _logs;
    internal Metadata.TaskMetadataEndpoint MetadataEndpoint => _metadata;
    internal TaskStateReporter Reporter => _reporter;
    internal WorkerOptions Options => _options;
    internal WorkerIdentity Identity => _identity;
    internal TimeProvider Time => _time;

    /// <summary>Cancelled when the worker stops: every task's pending work winds down.</summary>
    internal CancellationToken Shutdown => _shutdown.Token;

    // ---------------------------------------------------------------- helpers

    internal DateTimeOffset Now() => _time.GetUtcNow();

    internal string ContainerInstanceArn => _identity.ContainerInstanceArn;

    internal void OnCountsChanged() => CountsChanged?.Invoke();

    /// <summary>Work nobody awaits: failures are logged, cancellation at shutdown is not a failure.</summary>
    internal void Background(Task work)
        => work.ContinueWith(
            t => _logger.LogError(t.Exception, "Background work failed"),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
}
