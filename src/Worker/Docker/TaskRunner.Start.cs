using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;
using Serverless.Core.Telemetry;
using CoreTaskStatus = Serverless.Core.Tasks.TaskStatus;

namespace Serverless.Worker.Docker;

/// <summary>Starting a task: pull, volumes, create, start in dependency order.</summary>
public sealed partial class TaskRunner
{
    /// <summary>PENDING is worth a report only when RUNNING does not follow quickly, and only for a task its row lets start.</summary>
    internal void ReportPendingLater(TaskLoop loop)
        => _reporter.PublishLater(loop.Managed.Reports,
            () => loop.Managed.StartAllowed is { IsCompletedSuccessfully: true, Result: true } ? SnapshotIf(loop, CoreTaskStatus.Pending) : null,
            _shutdown.Token);

    /// <summary>
    /// A task's start, top to bottom: everything that makes its containers ready to run (secrets,
    /// images, volumes, network, the containers themselves), then, once the task row allows it,
    /// each container's start in dependency order. A failure stops the task with TaskFailedToStart.
    /// Runs beside the task's loop: what it learns goes to the loop as inputs.
    /// </summary>
    internal async Task RunStartSequenceAsync(TaskLoop loop)
    {
        var task = loop.Managed;
        // The start (pull, create, start) is one span in the trace of the command that asked for it.
        using var activity = Telemetry.StartFrom(Telemetry.WorkerSource, "StartTask", task.TraceParent);
        activity?.SetTag("ecs.task_arn", task.TaskArn);
        if (activity?.Id is { } traceParent) await loop.SendAsync(new TaskInput.Traced(traceParent));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(task.Lifetime.Token, _shutdown.Token);
        var token = linked.Token;
        try
        {
            var failure = await PrepareAsync(loop, token);
            // A refused Start is withdrawn by StartAsync: nothing of it starts, and nothing is reported.
            if (!await task.StartAllowed) return;
            if (failure is not null)
            {
                await loop.SendAsync(new TaskInput.Stop(TaskFailedToStart, failure, commanded: false));
                return;
            }
            await Task.WhenAll(task.Plan.Containers.Select(c => StartWhenReadyAsync(loop, c, token)));
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The task is stopping (or the worker is): whatever did not start stays unstarted.
        }
        catch (Exception e)
        {
            if (!await task.StartAllowed) return;
            _logger.LogError(e, "Starting {TaskArn} failed", task.TaskArn);
            Telemetry.TasksFailed.Add(1, new KeyValuePair<string, object?>("ecs.cluster", task.Cluster));
            await loop.SendAsync(new TaskInput.Stop(TaskFailedToStart, $"CannotStartContainerError: {e.Message}", commanded: false));
        }
    }

    /// <summary>
    /// Everything before the first container starts: the task's secrets into its containers'
    /// parameters, its images present, its volumes and network made, its containers created.
    /// Null, or why the task cannot start, in ECS's words.
    /// </summary>
    private async Task<string?> PrepareAsync(TaskLoop loop, CancellationToken token)
    {
        var task = loop.Managed;
        var everyContainer = task.Plan.Containers.Select(c => c.Name).ToList();
        if (task.Plan.Refusal is { } refusal)
        {
            await loop.SendAsync(new TaskInput.Explain(everyContainer, refusal));
            return refusal;
        }

        var secretsError = await _secrets.InjectAsync(task.TaskArn, task.Plan, task.Secrets, token);
        // Read once: the values are in the containers' create parameters now (or never will be).
        if (task.Plan.Secrets.Count > 0) Background(_secrets.ForgetAsync(task.TaskArn, task.Secrets, _shutdown.Token));
        if (secretsError is not null)
        {
            _logger.LogWarning("{TaskArn} cannot start: {Reason}", task.TaskArn, secretsError);
            await loop.SendAsync(new TaskInput.Explain(everyContainer, secretsError));
            return secretsError;
        }

        await loop.SendAsync(new TaskInput.PullStarted());
        // An image seen present before is not looked at again: one Docker call less per start.
        // Should it have gone since, its container's create finds out and pulls it (CreateAsync).
        var images = loop.View.Containers.Where(c => c.DockerId is null).Select(c => c.Plan.Image).Distinct().Where(i => !_images.SeenPresent(i)).ToList();
        var pulls = await Task.WhenAll(images.Select(async image => (Image: image, Error: await _images.EnsureAsync(image, token))));
        await loop.SendAsync(new TaskInput.PullStopped());
        if (pulls.FirstOrDefault(p => p.Error is not null) is { Error: { } pullError } failed)
        {
            _logger.LogWarning("Could not pull {Image} for {TaskArn}: {Error}", failed.Image, task.TaskArn, pullError);
            await loop.SendAsync(new TaskInput.Explain([.. task.Plan.Containers.Where(c => c.Image == failed.Image).Select(c => c.Name)], pullError));
            return pullError;
        }

        if (await EnsureVolumesAsync(task, token) is { } volumeError) return volumeError;
        if (await EnsureNetworkAsync(task, token) is { } networkError) return networkError;

        _metadata.Inject(task.Plan);
        // Containers are created together, each after the sources of its volumesFrom.
        var creations = new Dictionary<string, Task<string?>>(StringComparer.Ordinal);
        foreach (var plan in TaskStatusRules.CreateOrder(task.Plan.Containers))
        {
            var sources = plan.CreateAfter.Where(creations.ContainsKey).Select(name => creations[name]).ToList();
            creations[plan.Name] = CreateAsync(loop, plan, sources, token);
        }
        return (await Task.WhenAll(creations.Values)).FirstOrDefault(e => e is not null);
    }

    /// <summary>
    /// Creates one container once its <paramref name="sources"/> exist; null, or the failure in ECS's
    /// words (a failed source leaves it uncreated, with no failure of its own).
    /// </summary>
    private async Task<string?> CreateAsync(TaskLoop loop, ContainerPlan container, IReadOnlyList<Task<string?>> sources, CancellationToken cancellationToken)
    {
        var task = loop.Managed;
        foreach (var source in sources)
        {
            if (await source is not null) return null;
        }
        if (loop.View.Container(container.Name)?.DockerId is not null) return null;
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            // Not cancellable by the task's stop: an abandoned create could leave an untracked
            // container; the stop waits for the start sequence instead.
            CreateContainerResponse created;
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    created = await _docker.Containers.CreateContainerAsync(container.Parameters, _shutdown.Token);
                    break;
                }
                catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound && attempt == 1)
                {
                    // The image went since it was last seen (the start skipped looking): make it present, then create again.
                    _images.Forget(container.Image);
                    if (await _images.EnsureAsync(container.Image, cancellationToken) is { } pullError)
                    {
                        await loop.SendAsync(new TaskInput.Explain([container.Name], pullError));
                        return pullError;
                    }
                }
            }
            await loop.SendAsync(new TaskInput.Created(container.Name, created.ID));
            _logger.LogDebug("Created {DockerName} ({DockerId}) for {TaskArn}", container.DockerName, created.ID, task.TaskArn);
            return null;
        }
        catch (DockerApiException e)
        {
            var reason = $"CannotCreateContainerError: Error response from daemon: {ImagePuller.DaemonMessage(e)}";
            _logger.LogWarning("Could not create {ContainerName} of {TaskArn}: {Reason}", container.Name, task.TaskArn, reason);
            await loop.SendAsync(new TaskInput.Explain([container.Name], reason));
            return reason;
        }
    }

    /// <summary>Creates the task's Docker volumes (idempotent); null, or the failure in ECS's words.</summary>
    private async Task<string?> EnsureVolumesAsync(ManagedTask task, CancellationToken cancellationToken)
    {
        foreach (var volume in task.Plan.Volumes)
        {
            try
            {
                if (!volume.Autoprovision)
                {
                    try
                    {
                        await _docker.Volumes.InspectAsync(volume.DockerName, cancellationToken);
                        continue;
                    }
                    catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
                    {
                        return $"ResourceInitializationError: volume {volume.Name}: the shared volume {volume.DockerName} does not exist and autoprovision is not set";
                    }
                }
                // Creating a volume that exists with the same driver returns it unchanged.
                await _docker.Volumes.CreateAsync(new VolumesCreateParameters
                {
                    Name = volume.DockerName,
                    Driver = volume.Driver,
                    DriverOpts = volume.DriverOpts,
                    Labels = volume.Labels,
                }, cancellationToken);
            }
            catch (DockerApiException e)
            {
                return $"ResourceInitializationError: failed to create volume {volume.Name}: {ImagePuller.DaemonMessage(e)}";
            }
        }
        return null;
    }

    /// <summary>
    /// Creates an <c>awsvpc</c> task's network unless it exists (a restart between creating it and
    /// the containers finds it by its name); null, or the failure in ECS's words.
    /// </summary>
    private async Task<string?> EnsureNetworkAsync(ManagedTask task, CancellationToken cancellationToken)
    {
        if (task.Plan.Network is not { } network) return null;
        try
        {
            var existing = await _docker.Networks.ListNetworksAsync(new NetworksListParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["name"] = new Dictionary<string, bool> { [network.Name] = true } },
            }, cancellationToken);
            // Docker's name filter matches substrings: only the exact name is this task's.
            if (existing.Any(n => n.Name == network.Name)) return null;
            await _docker.Networks.CreateNetworkAsync(new NetworksCreateParameters
            {
                Name = network.Name,
                Driver = "bridge",
                CheckDuplicate = true,
                Labels = network.Labels,
            }, cancellationToken);
            _logger.LogDebug("Created network {Network} for {TaskArn}", network.Name, task.TaskArn);
            return null;
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.Conflict)
        {
            return null; // created meanwhile by this task's earlier attempt: the same network
        }
        catch (DockerApiException e)
        {
            return $"ResourceInitializationError: failed to create the task's network interface: {ImagePuller.DaemonMessage(e)}";
        }
    }

    /// <summary>
    /// Starts one container once its dependsOn conditions hold, woken by each change of the task
    /// (each new view of its loop), never by polling. A condition that can never hold, or does not
    /// within the container's startTimeout, leaves it stopped unstarted, with the agent's reason.
    /// </summary>
    private async Task StartWhenReadyAsync(TaskLoop loop, ContainerPlan container, CancellationToken cancellationToken)
    {
        var task = loop.Managed;
        if (loop.View.Container(container.Name) is not { Status: ContainerKnownStatus.Created, DockerId: { } dockerId }) return;

        var deadline = Now() + container.StartTimeout;
        while (true)
        {
            var view = loop.View;
            var verdict = DependencyConditions.EvaluateAll(container.Name, container.DependsOn, name => view.Container(name)?.State);
            if (verdict.Kind == DependencyVerdictKind.Satisfied) break;

            var remaining = deadline - Now();
            if (verdict.Kind == DependencyVerdictKind.Waiting && remaining <= TimeSpan.Zero)
            {
                var blocking = container.DependsOn.First(d =>
                    DependencyConditions.Evaluate(container.Name, d, view.Container(d.ContainerName)?.State).Kind != DependencyVerdictKind.Satisfied);
                verdict = DependencyVerdict.Impossible(DependencyConditions.TimedOut(blocking.ContainerName, container.Name));
            }
            if (verdict.Kind == DependencyVerdictKind.Impossible)
            {
                _logger.LogWarning("{ContainerName} of {TaskArn} will not start: {Reason}", container.Name, task.TaskArn, verdict.Reason);
                await loop.SendAsync(new TaskInput.Failed(container.Name, $"CannotStartContainerError: {verdict.Reason}", always: false));
                return;
            }
            try
            {
                await view.Superseded.WaitAsync(remaining, _time, cancellationToken);
            }
            catch (TimeoutException)
            {
                // Judged again above: the deadline passed.
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        // As Docker's awslogs driver does, the container does not start when its log stream cannot be made.
        var failure = await _logs.PrepareAsync(dockerId, container.Parameters.Labels, _shutdown.Token);
        if (failure is null)
        {
            try
            {
                await _docker.Containers.StartContainerAsync(dockerId, new ContainerStartParameters(), _shutdown.Token);
                _logs.Follow(dockerId, container.Parameters.Labels, container.Parameters.Tty == true, _shutdown.Token);
            }
            catch (DockerApiException e)
            {
                failure = ImagePuller.DaemonMessage(e);
            }
        }
        if (failure is not null)
        {
            var reason = $"CannotStartContainerError: Error response from daemon: {failure}";
            _logger.LogWarning("Could not start {ContainerName} of {TaskArn}: {Reason}", container.Name, task.TaskArn, reason);
            await loop.SendAsync(new TaskInput.Failed(container.Name, reason, always: true));
            return;
        }
        if (NeedsInspectAfterStart(task, container))
        {
            await RefreshAsync(loop, container.Name, _shutdown.Token);
            return;
        }
        // Docker's start returned: the container runs (an exit already seen stays, statuses only move
        // forward). Nothing an inspect would add, so RUNNING goes out one Docker round trip sooner.
        await loop.SendAsync(new TaskInput.Started(container.Name));
    }

    /// <summary>
    /// Whether a started container must be read back before it is reported: only for what Docker
    /// decides at start, the host ports it bound (bridge mode) and an <c>awsvpc</c> task's address
    /// (its pause container). Health starts UNKNOWN either way; an exit arrives as a <c>die</c> event.
    /// </summary>
    private static bool NeedsInspectAfterStart(ManagedTask task, ContainerPlan container)
        => container.PortMappings.Count > 0 || (container.Internal && task.Plan.Network is not null);

    /// <summary>Reads a container's state from Docker (status, exit code, health, the ports Docker bound) and hands it to the task's loop.</summary>
    private async Task RefreshAsync(TaskLoop loop, string container, CancellationToken cancellationToken)
    {
        if (loop.View.Container(container)?.DockerId is not { } dockerId) return;
        ContainerInspectResponse? inspected;
        try
        {
            inspected = await _docker.Containers.InspectContainerAsync(dockerId, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
            inspected = null;
        }
        await loop.SendAsync(new TaskInput.Inspected(container, inspected));
    }

    /// <summary>The agent's reason for a container Docker no longer knows.</summary>
    internal const string ContainerVanished = "ContainerVanishedError: No container matching saved ID found";

    internal static string? Health(string dockerHealth) => dockerHealth switch
    {
        "healthy" => HealthStatus.Healthy,
        "unhealthy" => HealthStatus.Unhealthy,
        "starting" => HealthStatus.Unknown,
        _ => null,
    };

    /// <summary>A RUNNING task's report of what changed (sent unless nothing reportable did).</summary>
    internal void ReportRunning(TaskLoop loop)
        => Background(_reporter.PublishAsync(loop.Managed.Reports, () => SnapshotIf(loop, CoreTaskStatus.Running), _shutdown.Token));

    /// <summary>The task's report if its known status is <paramref name="status"/>, else null (it moved on).</summary>
    private TaskStateChange? SnapshotIf(TaskLoop loop, string status)
    {
        var view = loop.View;
        return view.KnownStatus == status ? view.Report with { ContainerInstanceArn = _identity.ContainerInstanceArn, ObservedAt = Now() } : null;
    }
}
