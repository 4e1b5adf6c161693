using System.Threading.Channels;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;
using Serverless.Core.Telemetry;
using Serverless.Worker.Logs;
using Serverless.Worker.Registration;
using Serverless.Worker.Reporting;
using Serverless.Worker.Secrets;

namespace Serverless.Worker.Docker;

/// <summary>
/// The one owner of a <see cref="ManagedTask"/>'s state (the agent's <c>managedTask</c> and its
/// <c>overseeTask</c> loop): every change (a command's stop, a Docker event, the outcome of a Docker
/// call the task's start or stop made) arrives as a <see cref="TaskInput"/> on one channel and is
/// applied by one loop, one at a time, so the state needs no lock. Whatever runs outside the loop
/// (the start and stop sequences, the reporter, the metadata endpoint, the heartbeat's counts)
/// reads the <see cref="View"/> the loop publishes after each input, never the task itself.
/// Handlers never wait: what follows from a change (a sequence to run, a report, a wake) runs
/// after the change's view is published.
/// </summary>
internal sealed partial class TaskLoop
{
    private readonly Channel<TaskInput> _inputs = Channel.CreateUnbounded<TaskInput>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<Action> _after = [];
    private readonly TaskRunner _runner;
    private readonly ILogger _logger;
    private TaskView _view;

    public TaskLoop(ManagedTask task, TaskRunner runner, ILogger logger)
    {
        Managed = task;
        _runner = runner;
        _logger = logger;
        _view = TaskView.Of(task, runner.ContainerInstanceArn);
        _ = System.Threading.Tasks.Task.Run(RunAsync);
    }

    // What the start and stop sequences use (TaskLoop.Start.cs, TaskLoop.Stop.cs): the runner's.
    private IDockerClient Engine => _runner.Engine;
    private ImagePuller Images => _runner.Images;
    private TaskSecretsReceiver SecretsReceiver => _runner.SecretsReceiver;
    private AwsLogsShipper LogShipper => _runner.LogShipper;
    private Metadata.TaskMetadataEndpoint MetadataEndpoint => _runner.MetadataEndpoint;
    private TaskStateReporter Reporter => _runner.Reporter;
    private WorkerOptions Options => _runner.Options;
    private WorkerIdentity Identity => _runner.Identity;
    private TimeProvider Time => _runner.Time;
    private CancellationToken Shutdown => _runner.Shutdown;

    /// <summary>The task; outside the loop, only what never changes (its ARN, plan, containers' plans) may be read.</summary>
    public ManagedTask Managed { get; }

    /// <summary>The task's state after the last input applied.</summary>
    public TaskView View => Volatile.Read(ref _view);

    /// <summary>Hands an input to the loop; completes once it is applied (at once when the loop was closed).</summary>
    public Task SendAsync(TaskInput input)
    {
        if (!_inputs.Writer.TryWrite(input)) input.Complete();
        return input.Done;
    }

    /// <summary>
    /// Ends a loop that never owned a task (its task was not admitted). A task that finished keeps
    /// its loop until the last holder lets go: the router forgets it, so no new input reaches it, and
    /// an input already on its way (a Stop that raced the task's end) is applied as it always was.
    /// </summary>
    public void Close() => _inputs.Writer.TryComplete();

    private async Task RunAsync()
    {
        await foreach (var input in _inputs.Reader.ReadAllAsync())
        {
            try
            {
                Apply(input);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Applying {Input} to {TaskArn} failed", input.GetType().Name, Managed.TaskArn);
                _after.Clear();
            }
            try
            {
                var previous = _view;
                Volatile.Write(ref _view, TaskView.Of(Managed, _runner.ContainerInstanceArn));
                previous.Supersede();
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Publishing the state of {TaskArn} failed", Managed.TaskArn);
            }
            input.Complete();
            foreach (var action in _after)
            {
                try
                {
                    action();
                }
                catch (Exception e)
                {
                    _logger.LogError(e, "What followed {Input} of {TaskArn} failed", input.GetType().Name, Managed.TaskArn);
                }
            }
            _after.Clear();
        }
        // Inputs written after the close are completed by SendAsync; none is left waiting.
        while (_inputs.Reader.TryRead(out var late)) late.Complete();
    }

    /// <summary>Runs <paramref name="action"/> once the current input's view is published.</summary>
    private void After(Action action) => _after.Add(action);

    private void Apply(TaskInput input)
    {
        var task = Managed;
        switch (input)
        {
            case TaskInput.Start:
                // A Stop that reached the task between its admission and this input wins: it never starts.
                if (!task.IsStopping) BeginStart();
                break;
            case TaskInput.Stop stop:
                BeginStop(stop.StopCode, stop.Reason, stop.Commanded, stop.Report);
                break;
            case TaskInput.Withdraw withdraw:
                if (task.IsStopping) break;
                // Never reported: the delayed PENDING report finds nothing to say.
                task.DesiredStatus = EcsTaskStatus.Stopped;
                task.KnownStatus = EcsTaskStatus.Stopped;
                withdraw.Withdrawn = true;
                withdraw.StartSequence = task.StartSequence;
                break;
            case TaskInput.Resume:
                // An adopted task: containers not started yet are started; otherwise its state is judged as it is.
                if (!task.IsStopping && task.Containers.Any(c => c.Status is ContainerKnownStatus.None or ContainerKnownStatus.Created)) BeginStart();
                else ContainersChanged();
                break;
            case TaskInput.Traced traced:
                task.TraceParent = traced.TraceParent;
                break;
            case TaskInput.PullStarted:
                task.PullStartedAt ??= _runner.Now();
                break;
            case TaskInput.PullStopped:
                task.PullStoppedAt ??= _runner.Now();
                break;
            case TaskInput.Explain explain:
                foreach (var name in explain.Containers) task.Container(name)!.Reason ??= explain.Reason;
                break;
            case TaskInput.Created created:
                task.Container(created.Container)!.MarkCreated(created.DockerId);
                break;
            case TaskInput.TookSpare took:
            {
                // Running already, with its address: the spare's own start was its start.
                var pause = task.Container(took.Container)!;
                pause.MarkCreated(took.DockerId);
                pause.MarkRunning();
                task.NetworkInterface = took.Interface;
                break;
            }
            case TaskInput.Claim claim:
                ApplyClaim(claim);
                break;
            case TaskInput.Started started:
                if (task.Container(started.Container)!.MarkRunning()) ContainersChanged();
                break;
            case TaskInput.Failed failed:
            {
                var container = task.Container(failed.Container)!;
                var changed = container.MarkStopped(null, failed.Reason);
                // Docker may already have sent the failed start's die event: the reason still says why.
                if (failed.Always) container.Reason ??= failed.Reason;
                if (changed) ContainersChanged();
                break;
            }
            case TaskInput.NeverStarted neverStarted:
            {
                var container = task.Container(neverStarted.Container)!;
                container.MarkStopped(null, container.Reason);
                break;
            }
            case TaskInput.Vanished vanished:
                if (task.Container(vanished.Container)!.MarkStopped(null, TaskRunner.ContainerVanished)) ContainersChanged();
                break;
            case TaskInput.Inspected inspected:
                if (ApplyInspect(task.Container(inspected.Container)!, inspected.Response)) ContainersChanged();
                break;
            case TaskInput.DockerEvent dockerEvent:
                ApplyEvent(dockerEvent);
                break;
            case TaskInput.Stopped:
                foreach (var container in task.Containers) container.MarkStopped(null, null);
                task.KnownStatus = EcsTaskStatus.Stopped;
                task.ExecutionStoppedAt ??= _runner.Now();
                break;
            default:
                throw new InvalidOperationException($"Unknown input {input.GetType().Name}");
        }
    }

    /// <summary>Starts the start sequence once the view shows the task admitted; PENDING is reported later if still true.</summary>
    private void BeginStart()
    {
        var task = Managed;
        var sequence = new Task<Task>(RunStartSequenceAsync);
        task.StartSequence = sequence.Unwrap();
        After(() =>
        {
            sequence.Start(TaskScheduler.Default);
            ReportPendingLater();
        });
    }

    /// <summary>
    /// Starts stopping the task, once: desired STOPPED, pending starts abandoned, then the stop
    /// sequence. The first stop code and reason stick.
    /// </summary>
    private void BeginStop(string? stopCode, string? reason, bool commanded, bool report)
    {
        var task = Managed;
        if (task.StopSequence is not null) return;
        task.DesiredStatus = EcsTaskStatus.Stopped;
        task.StopCode ??= stopCode;
        task.StoppedReason ??= reason;
        if (task.KnownStatus != EcsTaskStatus.Stopped) task.KnownStatus = EcsTaskStatus.Stopping;
        var sequence = new Task<Task>(() => RunStopSequenceAsync(report));
        task.StopSequence = sequence.Unwrap();
        _logger.LogInformation("Stopping {TaskArn} ({StopCode}): {StoppedReason}", task.TaskArn, task.StopCode ?? "commanded", task.StoppedReason);
        After(() =>
        {
            sequence.Start(TaskScheduler.Default);
            // Cancelling runs the waiters' continuations: after the loop's step, not inside it.
            task.Lifetime.Cancel();
            if (commanded && report) ReportStoppingLater();
            _runner.OnCountsChanged();
        });
    }

    /// <summary>
    /// The task-level consequences of a container change: an essential container that stopped
    /// stops the task (EssentialContainerExited if it ran, TaskFailedToStart if it never could);
    /// a task whose containers all got going is RUNNING; a RUNNING task reports what changed.
    /// </summary>
    private void ContainersChanged()
    {
        var task = Managed;
        if (task.IsStopping) return;

        var stoppedEssential = task.Containers.FirstOrDefault(c => c.Essential && c.Status == ContainerKnownStatus.Stopped);
        if (stoppedEssential is not null)
        {
            if (stoppedEssential.Started)
            {
                task.ExecutionStoppedAt ??= _runner.Now();
                BeginStop(TaskRunner.EssentialContainerExited, TaskRunner.EssentialContainerExitedReason, commanded: false, report: true);
            }
            else
            {
                BeginStop(TaskRunner.TaskFailedToStart, stoppedEssential.Reason ?? "CannotStartContainerError: the container did not start",
                    commanded: false, report: true);
            }
        }
        else if (task.KnownStatus == EcsTaskStatus.Pending && TaskStatusRules.IsRunning(task.States()))
        {
            task.KnownStatus = EcsTaskStatus.Running;
            task.StartedAt ??= _runner.Now();
            Telemetry.TasksStarted.Add(1, new KeyValuePair<string, object?>("ecs.cluster", task.Cluster));
            _logger.LogInformation("{TaskArn} is RUNNING", task.TaskArn);
            After(() =>
            {
                _runner.OnCountsChanged();
                // The subnet's next task finds a spare pause container ready (made now, off this task's start).
                if (task.Plan.Network is { } network) _runner.EnsureSpare(network);
                ReportRunning();
            });
        }
        else if (task.KnownStatus == EcsTaskStatus.Running)
        {
            After(() => ReportRunning());
        }
    }

    /// <summary>
    /// Containers Docker has for this task that the task does not track (a create whose answer was
    /// lost, or every container found after a restart): the one matching a container that has no id
    /// is adopted, any other is a stray.
    /// </summary>
    private void ApplyClaim(TaskInput.Claim claim)
    {
        var task = Managed;
        foreach (var entry in claim.Found)
        {
            if (task.Containers.Any(c => c.DockerId == entry.ID)) continue;
            var name = DockerLabels.Get(entry.Labels, DockerLabels.ContainerName);
            var owner = name is null ? null : task.Container(name);
            if (owner is { DockerId: null, Status: ContainerKnownStatus.None })
            {
                owner.MarkCreated(entry.ID);
                claim.Adopted.Add((owner.Name, entry));
            }
            else
            {
                claim.Strays.Add(entry.ID);
            }
        }
    }

    /// <summary>Applies one Docker event of a container the task knows by id (an adopted one is read by inspect first).</summary>
    private void ApplyEvent(TaskInput.DockerEvent dockerEvent)
    {
        var container = Managed.Container(dockerEvent.Container)!;
        if (container.DockerId != dockerEvent.DockerId) return;
        var action = dockerEvent.Action;
        var changed = action switch
        {
            "die" => container.MarkStopped(dockerEvent.ExitCode, null),
            "destroy" => container.MarkStopped(null, TaskRunner.ContainerVanished),
            "oom" => SetOutOfMemory(container),
            _ when action.StartsWith("health_status", StringComparison.Ordinal)
                => Health(action[(action.IndexOf(':') + 1)..].Trim()) is { } health && container.SetHealth(health),
            _ => false,
        };
        if (!changed) return;
        _logger.LogDebug("{ContainerName} of {TaskArn}: {Action}", container.Name, Managed.TaskArn, action);
        ContainersChanged();
    }

    private static bool SetOutOfMemory(ManagedContainer container)
    {
        container.OutOfMemory = true;
        return false;
    }

    /// <summary>Applies an inspect result (null: Docker no longer knows the container); true when something changed.</summary>
    private bool ApplyInspect(ManagedContainer container, ContainerInspectResponse? inspected)
    {
        if (inspected is null) return container.MarkStopped(null, TaskRunner.ContainerVanished);
        var task = Managed;
        var changed = container.MarkCreated(inspected.ID);
        var state = inspected.State;
        if (state is null) return changed;
        if (state.Running)
        {
            changed |= container.MarkRunning();
            if (container.Plan.Internal && task.NetworkInterface is null && task.Plan.Network is { } network
                && PauseEndpoint(inspected, network) is { IPAddress: { Length: > 0 } address } endpoint)
            {
                task.NetworkInterface = new TaskNetworkInterface(address, endpoint.MacAddress is { Length: > 0 } mac ? mac : null);
                changed = true;
            }
            var bindings = TaskStatusRules.NetworkBindings(inspected.NetworkSettings?.Ports, task.Plan.NetworkMode, container.Plan.PortMappings);
            if (!bindings.SequenceEqual(container.Bindings))
            {
                container.Bindings = bindings;
                changed = true;
            }
            if (state.Health?.Status is { } health && Health(health) is { } reported) changed |= container.SetHealth(reported);
        }
        else if (state.Status is "exited" or "dead")
        {
            if (state.OOMKilled) container.OutOfMemory = true;
            changed |= container.MarkStopped((int)state.ExitCode, null);
        }
        return changed;
    }
}

/// <summary>One thing that happened to a task, for its <see cref="TaskLoop"/>. Completes once applied.</summary>
internal abstract class TaskInput
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Done => _done.Task;

    public void Complete() => _done.TrySetResult();

    /// <summary>Run the task: its start sequence begins.</summary>
    public sealed class Start : TaskInput;

    /// <summary>Stop the task (a command, a failure, an essential exit, an adoption that must not run).</summary>
    public sealed class Stop(string? stopCode, string? reason, bool commanded, bool report = true) : TaskInput
    {
        public string? StopCode { get; } = stopCode;
        public string? Reason { get; } = reason;
        public bool Commanded { get; } = commanded;
        public bool Report { get; } = report;
    }

    /// <summary>Take back a refused Start: nothing reported. Not done (false) when a stop owns the task.</summary>
    public sealed class Withdraw : TaskInput
    {
        public bool Withdrawn { get; set; }
        public Task StartSequence { get; set; } = Task.CompletedTask;
    }

    /// <summary>An adopted task's containers were read: carry on from there.</summary>
    public sealed class Resume : TaskInput;

    public sealed class Traced(string traceParent) : TaskInput
    {
        public string TraceParent { get; } = traceParent;
    }

    public sealed class PullStarted : TaskInput;

    public sealed class PullStopped : TaskInput;

    /// <summary>Why these containers cannot start (the first reason sticks).</summary>
    public sealed class Explain(IReadOnlyList<string> containers, string reason) : TaskInput
    {
        public IReadOnlyList<string> Containers { get; } = containers;
        public string Reason { get; } = reason;
    }

    public sealed class Created(string container, string dockerId) : TaskInput
    {
        public string Container { get; } = container;
        public string DockerId { get; } = dockerId;
    }

    /// <summary>The task's pause container is a warm spare it took (renamed to the pause container's name): running, with its address.</summary>
    public sealed class TookSpare(string container, string dockerId, TaskNetworkInterface networkInterface) : TaskInput
    {
        public string Container { get; } = container;
        public string DockerId { get; } = dockerId;
        public TaskNetworkInterface Interface { get; } = networkInterface;
    }

    /// <summary>Containers Docker lists for the task: those it has a place for are adopted, the rest are strays.</summary>
    public sealed class Claim(IEnumerable<ContainerListResponse> found) : TaskInput
    {
        public IReadOnlyList<ContainerListResponse> Found { get; } = [.. found];
        public List<(string Container, ContainerListResponse Entry)> Adopted { get; } = [];
        public List<string> Strays { get; } = [];
    }

    /// <summary>Docker's start of the container returned.</summary>
    public sealed class Started(string container) : TaskInput
    {
        public string Container { get; } = container;
    }

    /// <summary>
    /// The container will not run: its start failed, or its dependencies can never hold.
    /// <paramref name="always"/>: the reason is kept even if the container was already seen stopped.
    /// </summary>
    public sealed class Failed(string container, string reason, bool always) : TaskInput
    {
        public string Container { get; } = container;
        public string Reason { get; } = reason;
        public bool Always { get; } = always;
    }

    /// <summary>The stop found the container never started: nothing to signal, it is stopped.</summary>
    public sealed class NeverStarted(string container) : TaskInput
    {
        public string Container { get; } = container;
    }

    /// <summary>Docker no longer knows the container.</summary>
    public sealed class Vanished(string container) : TaskInput
    {
        public string Container { get; } = container;
    }

    /// <summary>What Docker's inspect says of the container (null: not found).</summary>
    public sealed class Inspected(string container, ContainerInspectResponse? response) : TaskInput
    {
        public string Container { get; } = container;
        public ContainerInspectResponse? Response { get; } = response;
    }

    /// <summary>One Docker event of one of the task's containers: die, destroy, oom, health_status.</summary>
    public sealed class DockerEvent(string container, string? dockerId, string action, int? exitCode) : TaskInput
    {
        public string Container { get; } = container;
        public string? DockerId { get; } = dockerId;
        public string Action { get; } = action;
        public int? ExitCode { get; } = exitCode;
    }

    /// <summary>The stop sequence is through: every container stopped, the task STOPPED.</summary>
    public sealed class Stopped : TaskInput;
}

/// <summary>
/// A task's state as its <see cref="TaskLoop"/> published it after one input: immutable, so it is
/// read anywhere without a lock. <see cref="Superseded"/> completes when a newer view replaces it,
/// which is how a waiter (a container waiting on its dependencies) learns of a change.
/// </summary>
internal sealed class TaskView
{
    private readonly TaskCompletionSource _superseded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TaskView(string desiredStatus, string knownStatus, bool isStopping, IReadOnlyList<ContainerView> containers, TaskStateChange report)
    {
        DesiredStatus = desiredStatus;
        KnownStatus = knownStatus;
        IsStopping = isStopping;
        Containers = containers;
        Report = report;
    }

    public string DesiredStatus { get; }

    /// <summary>PENDING, RUNNING, STOPPING or STOPPED.</summary>
    public string KnownStatus { get; }

    public bool IsStopping { get; }

    /// <summary>The containers, in the plan's order (the pause container included).</summary>
    public IReadOnlyList<ContainerView> Containers { get; }

    /// <summary>The task's report as of this view (its <c>ObservedAt</c> is set when it is sent).</summary>
    public TaskStateChange Report { get; }

    /// <summary>Completes once a newer view replaced this one.</summary>
    public Task Superseded => _superseded.Task;

    public ContainerView? Container(string name) => Containers.FirstOrDefault(c => c.Name == name);

    internal void Supersede() => _superseded.TrySetResult();

    /// <summary>The view of the task now (only its loop calls this, or its constructor).</summary>
    public static TaskView Of(ManagedTask task, string containerInstanceArn) => new(
        task.DesiredStatus, task.KnownStatus, task.IsStopping,
        [.. task.Containers.Select(c => new ContainerView(c.Plan, c.DockerId, c.State))],
        task.Snapshot(containerInstanceArn, default));
}

/// <summary>One container of a <see cref="TaskView"/>.</summary>
internal sealed record ContainerView(ContainerPlan Plan, string? DockerId, ContainerSnapshot State)
{
    public string Name => Plan.Name;

    public ContainerKnownStatus Status => State.Status;
}
