using System.Collections.Concurrent;
using System.Security.Cryptography;
using Docker.DotNet;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Tasks;
using Serverless.Worker.Logs;
using Serverless.Worker.Registration;
using Serverless.Worker.Reporting;
using CoreTaskStatus = Serverless.Core.Tasks.TaskStatus;

namespace Serverless.Worker.Docker;

/// <summary>
/// Runs tasks on the local Docker engine, the ECS agent's task engine: starts a task's containers
/// in dependency order, follows them through Docker's events, stops them, reports every state
/// change, and cleans up. One <see cref="ManagedTask"/> per task ARN; a task ARN once stopped is
/// remembered, so a duplicated or late command cannot bring it back.
/// </summary>
public sealed partial class TaskRunner : IDisposable
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

    private readonly ConcurrentDictionary<string, ManagedTask> _tasks = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _finished = new(StringComparer.Ordinal);
    private readonly object _admission = new();
    private readonly CancellationTokenSource _shutdown = new();

    public TaskRunner(
        IDockerClient docker, ImagePuller images, TaskDefinitionCache definitions, TaskStore taskStore, TaskStateReporter reporter,
        WorkerIdentity identity, WorkerOptions options, Arns arns, TimeProvider time, ILogger<TaskRunner> logger,
        Secrets.TaskSecretsReceiver secrets, AwsLogsShipper logs, Metadata.TaskMetadataEndpoint metadata)
    {
        _metadata = metadata;
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
    public int RunningCount => _tasks.Values.Count(t => t.KnownStatus is CoreTaskStatus.Running or CoreTaskStatus.Stopping);

    public int PendingCount => _tasks.Values.Count(t => t.KnownStatus == CoreTaskStatus.Pending);

    /// <summary>Task ARNs this worker manages right now.</summary>
    public IReadOnlyCollection<string> TaskArns => [.. _tasks.Keys];

    /// <summary>Whether the task already stopped here (and its STOPPED was reported).</summary>
    public bool HasFinished(string taskArn) => _finished.ContainsKey(taskArn);

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
            await known.Reports.FirstReported.WaitAsync(cancellationToken);
            return;
        }
        if (HasFinished(command.TaskArn)) return;

        // The task row is read on every Start, beside the plan, so it costs no time: a Start can
        // arrive after the control plane gave up on it (its send had no clear answer and the start
        // deadline stopped the task, or the task was stopped meanwhile), and a task desired STOPPED
        // is never started. A first delivery whose row is missing is started (the control plane
        // writes the row before it sends); a redelivered one was started before, or is gone.
        var reading = _taskStore.FindAsync(command.Cluster, TaskIdOf(command.TaskArn), cancellationToken);
        var planning = PlanAsync(command.Cluster, command.TaskArn, command.TaskDefinitionArn, command.Overrides, command.StartedBy, command.Group, null, cancellationToken);
        var row = await reading;
        if ((row is null && redelivered) || row is { IsStopped: true })
        {
            _logger.LogInformation("Ignored a Start of {TaskArn}: the task is {State}", command.TaskArn, row is null ? "gone" : "stopped");
            await ((Task)planning).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return;
        }
        if (row is { DesiredStatus: CoreTaskStatus.Stopped })
        {
            _logger.LogInformation("Refused a Start of {TaskArn}: the task is desired STOPPED", command.TaskArn);
            await ((Task)planning).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await ReportStoppedAsync(command.Cluster, command.TaskArn, null, row.StoppedReason, row.Containers.Select(c => c.Name), null, cancellationToken);
            return;
        }

        var plan = await planning;
        var task = new ManagedTask(command.Cluster, command.TaskArn, plan) { TraceParent = command.TraceParent, Secrets = command.Secrets };
        if (!Admit(task, out var existing))
        {
            if (existing is not null) await existing.Reports.FirstReported.WaitAsync(cancellationToken);
            return;
        }
        _logger.LogInformation("Starting {TaskArn} ({Family}:{Revision}, {Containers} container(s))",
            task.TaskArn, plan.Family, plan.Revision, plan.Containers.Count);
        BeginStartSequence(task);
        await task.Reports.FirstReported.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Handles a Stop command: SIGTERM to each container, SIGKILL after its stopTimeout, then STOPPED
    /// with the exit codes. Returns once STOPPING or STOPPED is queued (STOPPING only goes out when
    /// the stop takes longer than the transition delay). A task this worker does not run still
    /// gets a STOPPED report, with the command's reason, so the control plane can finish it.
    /// </summary>
    public async Task StopAsync(TaskCommand command, CancellationToken cancellationToken)
    {
        ManagedTask? task;
        bool unknown;
        lock (_admission)
        {
            task = Existing(command.TaskArn);
            unknown = task is null && !_finished.ContainsKey(command.TaskArn);
            if (unknown) _finished[command.TaskArn] = _time.GetUtcNow();
        }
        if (task is null)
        {
            if (unknown)
            {
                _logger.LogInformation("Stop for {TaskArn}, which does not run here: reporting it STOPPED", command.TaskArn);
                await ReportStoppedAsync(command.Cluster, command.TaskArn, null, command.Reason, [], null, cancellationToken);
            }
            return;
        }

        BeginStop(task, stopCode: null, command.Reason, commanded: true);
        await task.Reports.StoppingReported.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Gives up a command that kept failing: the task is stopped (if it runs here) or reported
    /// STOPPED with <paramref name="reason"/>, so the control plane does not wait for it forever.
    /// Returns once STOPPED is queued.
    /// </summary>
    internal async Task AbandonAsync(TaskCommand command, string reason, CancellationToken cancellationToken)
    {
        var stopCode = command.Type == TaskCommand.Start ? TaskFailedToStart : null;
        if (Existing(command.TaskArn) is { } task)
        {
            BeginStop(task, stopCode, reason, commanded: false);
            await task.Reports.StoppedReported.WaitAsync(cancellationToken);
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

    // ---------------------------------------------------------------- admission

    private ManagedTask? Existing(string taskArn) => _tasks.TryGetValue(taskArn, out var task) ? task : null;

    /// <summary>A task this worker manages, for the task metadata endpoint.</summary>
    internal ManagedTask? Managed(string taskArn) => Existing(taskArn);

    /// <summary>Registers a task unless it is known or finished; atomic with <see cref="StopAsync"/>'s check.</summary>
    private bool Admit(ManagedTask task, out ManagedTask? existing)
    {
        lock (_admission)
        {
            existing = Existing(task.TaskArn);
            if (existing is not null || _finished.ContainsKey(task.TaskArn)) return false;
            _tasks[task.TaskArn] = task;
        }
        CountsChanged?.Invoke();
        return true;
    }

    private void Finish(ManagedTask task)
    {
        lock (_admission)
        {
            _finished[task.TaskArn] = _time.GetUtcNow();
            _tasks.TryRemove(new KeyValuePair<string, ManagedTask>(task.TaskArn, task));
            var cutoff = _time.GetUtcNow() - TombstoneLifetime;
            foreach (var (arn, at) in _finished)
            {
                if (at < cutoff) _finished.TryRemove(arn, out _);
            }
        }
        CountsChanged?.Invoke();
    }

    /// <summary>
    /// The plan for a task: its definition translated with its overrides. A missing definition is a
    /// refused plan (the task stops with TaskFailedToStart). <paramref name="suffix"/> reuses the
    /// Docker names of an adopted task's existing containers.
    /// </summary>
    private async Task<TaskPlan> PlanAsync(
        string cluster, string taskArn, string? taskDefinitionArn, System.Text.Json.Nodes.JsonObject? overrides,
        string? startedBy, string? group, string? suffix, CancellationToken cancellationToken)
    {
        var key = taskDefinitionArn is null ? null : TaskDefinitionCache.Key(taskDefinitionArn);
        var definition = taskDefinitionArn is null ? null : await _definitions.FindAsync(taskDefinitionArn, cancellationToken);
        if (definition is null)
        {
            return TaskPlan.Refused(key?.Family ?? "unknown", key?.Revision ?? 0,
                $"ResourceInitializationError: the task definition {taskDefinitionArn} does not exist");
        }
        var context = new TaskContext(cluster, taskArn, _identity.InstanceId, startedBy, group);
        return TaskTranslation.Plan(definition.TaskDefinition, context, overrides, suffix ?? NewSuffix(), Defaults());
    }

    private PlanDefaults Defaults() => new(
        TimeSpan.FromSeconds(_options.ContainerStopTimeoutSeconds), TimeSpan.FromSeconds(_options.ContainerStartTimeoutSeconds))
    {
        Permissions = TaskPermissions.From(_options),
        PauseImage = _options.PauseImage,
    };

    /// <summary>The agent's random hex that makes Docker names unique.</summary>
    private static string NewSuffix() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));

    internal static string TaskIdOf(string taskArn) => Arns.LastSegment(taskArn);

    // ---------------------------------------------------------------- helpers

    private DateTimeOffset Now() => _time.GetUtcNow();

    /// <summary>Work nobody awaits: failures are logged, cancellation at shutdown is not a failure.</summary>
    private void Background(Task work)
        => work.ContinueWith(
            t => _logger.LogError(t.Exception, "Background work failed"),
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
}
