using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;
using Serverless.Core.Telemetry;

namespace Serverless.Worker.Docker;

/// <summary>
/// A task's start, run by its loop beside it: pull, volumes, network, create, then start in
/// dependency order. What it learns reaches the task as inputs; it reads the task's views.
/// </summary>
internal sealed partial class TaskLoop
{
    /// <summary>PENDING is worth a report only when RUNNING does not follow quickly, and only for a task its row lets start.</summary>
    private void ReportPendingLater()
        => Reporter.PublishLater(Managed.Reports,
            () => Managed.StartAllowed is { IsCompletedSuccessfully: true, Result: true } ? SnapshotIf(EcsTaskStatus.Pending) : null,
            Shutdown);

    /// <summary>
    /// A task's start, top to bottom: everything that makes its containers ready to run (secrets,
    /// images, volumes, network, the containers themselves), then, once the task row allows it,
    /// each container's start in dependency order. A failure stops the task with TaskFailedToStart.
    /// Runs beside the loop, never inside its step: what it learns comes back as inputs.
    /// </summary>
    private async Task RunStartSequenceAsync()
    {
        var task = Managed;
        // The start (pull, create, start) is one span in the trace of the command that asked for it.
        using var activity = Telemetry.StartFrom(Telemetry.WorkerSource, "StartTask", task.TraceParent);
        activity?.SetTag("ecs.task_arn", task.TaskArn);
        if (activity?.Id is { } traceParent) await SendAsync(new TaskInput.Traced(traceParent));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(task.Lifetime.Token, Shutdown);
        var token = linked.Token;
        try
        {
            var failure = await PrepareAsync(token);
            // A refused Start is withdrawn by StartAsync: nothing of it starts, and nothing is reported.
            if (!await task.StartAllowed) return;
            if (failure is not null)
            {
                await SendAsync(new TaskInput.Stop(TaskRunner.TaskFailedToStart, failure, commanded: false));
                return;
            }
            await Task.WhenAll(task.Plan.Containers.Select(c => StartWhenReadyAsync(c, token)));
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
            await SendAsync(new TaskInput.Stop(TaskRunner.TaskFailedToStart, $"CannotStartContainerError: {e.Message}", commanded: false));
        }
    }

    /// <summary>
    /// Everything before the first container starts: the task's secrets into its containers'
    /// parameters, its images present, its volumes and network made, its containers created.
    /// Null, or why the task cannot start, in ECS's words.
    /// </summary>
    private async Task<string?> PrepareAsync(CancellationToken token)
    {
        var task = Managed;
        var everyContainer = task.Plan.Containers.Select(c => c.Name).ToList();
        if (task.Plan.Refusal is { } refusal)
        {
            await SendAsync(new TaskInput.Explain(everyContainer, refusal));
            return refusal;
        }

        var secretsError = await SecretsReceiver.InjectAsync(task.TaskArn, task.Plan, task.Secrets, token);
        // Read once: the values are in the containers' create parameters now (or never will be).
        if (task.Plan.Secrets.Count > 0) _runner.Background(SecretsReceiver.ForgetAsync(task.TaskArn, task.Secrets, Shutdown));
        if (secretsError is not null)
        {
            _logger.LogWarning("{TaskArn} cannot start: {Reason}", task.TaskArn, secretsError);
            await SendAsync(new TaskInput.Explain(everyContainer, secretsError));
            return secretsError;
        }

        await SendAsync(new TaskInput.PullStarted());
        // An image seen present before is not looked at again: one Docker call less per start.
        // Should it have gone since, its container's create finds out and pulls it (CreateAsync).
        var images = View.Containers.Where(c => c.DockerId is null).Select(c => c.Plan.Image).Distinct().Where(i => !Images.SeenPresent(i)).ToList();
        var pulls = await Task.WhenAll(images.Select(async image => (Image: image, Error: await Images.EnsureAsync(image, token))));
        await SendAsync(new TaskInput.PullStopped());
        if (pulls.FirstOrDefault(p => p.Error is not null) is { Error: { } pullError } failed)
        {
            _logger.LogWarning("Could not pull {Image} for {TaskArn}: {Error}", failed.Image, task.TaskArn, pullError);
            await SendAsync(new TaskInput.Explain([.. task.Plan.Containers.Where(c => c.Image == failed.Image).Select(c => c.Name)], pullError));
            return pullError;
        }

        if (await EnsureVolumesAsync(task, token) is { } volumeError) return volumeError;
        // A spare pause container of the subnet's network (so the network exists), else the network made sure of.
        if (!await TakeSpareAsync() && await _runner.EnsureNetworkAsync(task, token) is { } networkError) return networkError;

        MetadataEndpoint.Inject(task.Plan);
        // Containers are created together, each after the sources of its volumesFrom.
        var creations = new Dictionary<string, Task<string?>>(StringComparer.Ordinal);
        foreach (var plan in TaskStatusRules.CreateOrder(task.Plan.Containers))
        {
            var sources = plan.CreateAfter.Where(creations.ContainsKey).Select(name => creations[name]).ToList();
            creations[plan.Name] = CreateAsync(plan, sources, token);
        }
        return (await Task.WhenAll(creations.Values)).FirstOrDefault(e => e is not null);
    }

    /// <summary>
    /// Gives the task's pause container a ready spare of its network (<see cref="TaskRunner.TakeSpare"/>),
    /// when there is one and the pause container needs nothing a spare lacks (DNS servers, search
    /// domains and extra hosts are only taken at create): renamed to the pause container's name, it
    /// is the task's pause container from here on, running, with its address known. False: the task
    /// makes its own.
    /// </summary>
    private async Task<bool> TakeSpareAsync()
    {
        var task = Managed;
        if (task.Plan.Network is not { } network
            || View.Containers.FirstOrDefault(c => c.Plan.Internal) is not { DockerId: null, Status: ContainerKnownStatus.None } pause
            || pause.Plan.Parameters.HostConfig is not { DNS: null, DNSSearch: null, ExtraHosts: null }
            || pause.Plan.Image != Options.PauseImage
            || _runner.TakeSpare(network.Name) is not { } spare)
        {
            return false;
        }
        try
        {
            await Engine.Containers.RenameContainerAsync(spare.Id, new ContainerRenameParameters { NewName = pause.Plan.DockerName }, Shutdown);
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException)
        {
            // Gone meanwhile (or a name in use): the task makes its own pause container.
            _logger.LogWarning("Could not take spare {DockerId} on {Network} for {TaskArn}: {Error}", spare.Id, network.Name, task.TaskArn, e.Message);
            _runner.SpareTaken(spare, failed: true);
            return false;
        }
        try
        {
            await SendAsync(new TaskInput.TookSpare(pause.Name, spare.Id, spare.Interface));
        }
        finally
        {
            _runner.SpareTaken(spare, failed: false);
        }
        _logger.LogDebug("{TaskArn} took spare {DockerId} on {Network}", task.TaskArn, spare.Id, network.Name);
        return true;
    }

    /// <summary>
    /// Creates one container once its <paramref name="sources"/> exist; null, or the failure in ECS's
    /// words (a failed source leaves it uncreated, with no failure of its own).
    /// </summary>
    private async Task<string?> CreateAsync(ContainerPlan container, IReadOnlyList<Task<string?>> sources, CancellationToken cancellationToken)
    {
        var task = Managed;
        foreach (var source in sources)
        {
            if (await source is not null) return null;
        }
        if (View.Container(container.Name)?.DockerId is not null) return null;
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
                    created = await Engine.Containers.CreateContainerAsync(container.Parameters, Shutdown);
                    break;
                }
                catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound && attempt == 1)
                {
                    // The image went since it was last seen (the start skipped looking): make it present, then create again.
                    Images.Forget(container.Image);
                    if (await Images.EnsureAsync(container.Image, cancellationToken) is { } pullError)
                    {
                        await SendAsync(new TaskInput.Explain([container.Name], pullError));
                        return pullError;
                    }
                }
            }
            await SendAsync(new TaskInput.Created(container.Name, created.ID));
            _logger.LogDebug("Created {DockerName} ({DockerId}) for {TaskArn}", container.DockerName, created.ID, task.TaskArn);
            return null;
        }
        catch (DockerApiException e)
        {
            var reason = $"CannotCreateContainerError: Error response from daemon: {ImagePuller.DaemonMessage(e)}";
            _logger.LogWarning("Could not create {ContainerName} of {TaskArn}: {Reason}", container.Name, task.TaskArn, reason);
            await SendAsync(new TaskInput.Explain([container.Name], reason));
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
                        await Engine.Volumes.InspectAsync(volume.DockerName, cancellationToken);
                        continue;
                    }
                    catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
                    {
                        return $"ResourceInitializationError: volume {volume.Name}: the shared volume {volume.DockerName} does not exist and autoprovision is not set";
                    }
                }
                // Creating a volume that exists with the same driver returns it unchanged.
                await Engine.Volumes.CreateAsync(new VolumesCreateParameters
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
    /// Starts one container once its dependsOn conditions hold, woken by each change of the task
    /// (each new view of its loop), never by polling. A condition that can never hold, or does not
    /// within the container's startTimeout, leaves it stopped unstarted, with the agent's reason.
    /// </summary>
    private async Task StartWhenReadyAsync(ContainerPlan container, CancellationToken cancellationToken)
    {
        var task = Managed;
        if (View.Container(container.Name) is not { Status: ContainerKnownStatus.Created, DockerId: { } dockerId }) return;

        var deadline = _runner.Now() + container.StartTimeout;
        while (true)
        {
            var view = View;
            var verdict = DependencyConditions.EvaluateAll(container.Name, container.DependsOn, name => view.Container(name)?.State);
            if (verdict.Kind == DependencyVerdictKind.Satisfied) break;

            var remaining = deadline - _runner.Now();
            if (verdict.Kind == DependencyVerdictKind.Waiting && remaining <= TimeSpan.Zero)
            {
                var blocking = container.DependsOn.First(d =>
                    DependencyConditions.Evaluate(container.Name, d, view.Container(d.ContainerName)?.State).Kind != DependencyVerdictKind.Satisfied);
                verdict = DependencyVerdict.Impossible(DependencyConditions.TimedOut(blocking.ContainerName, container.Name));
            }
            if (verdict.Kind == DependencyVerdictKind.Impossible)
            {
                _logger.LogWarning("{ContainerName} of {TaskArn} will not start: {Reason}", container.Name, task.TaskArn, verdict.Reason);
                await SendAsync(new TaskInput.Failed(container.Name, $"CannotStartContainerError: {verdict.Reason}", always: false));
                return;
            }
            try
            {
                await view.Superseded.WaitAsync(remaining, Time, cancellationToken);
            }
            catch (TimeoutException)
            {
                // Judged again above: the deadline passed.
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        // As Docker's awslogs driver does, the container does not start when its log stream cannot be made.
        var failure = await LogShipper.PrepareAsync(dockerId, container.Parameters.Labels, Shutdown);
        if (failure is null)
        {
            try
            {
                await Engine.Containers.StartContainerAsync(dockerId, new ContainerStartParameters(), Shutdown);
                LogShipper.Follow(dockerId, container.Parameters.Labels, container.Parameters.Tty == true, Shutdown);
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
            await SendAsync(new TaskInput.Failed(container.Name, reason, always: true));
            return;
        }
        if (NeedsInspectAfterStart(task, container))
        {
            await RefreshAsync(container.Name, Shutdown);
            return;
        }
        // Docker's start returned: the container runs (an exit already seen stays, statuses only move
        // forward). Nothing an inspect would add, so RUNNING goes out one Docker round trip sooner.
        await SendAsync(new TaskInput.Started(container.Name));
    }

    /// <summary>
    /// Whether a started container must be read back before it is reported: only for what Docker
    /// decides at start, the host ports it bound (bridge mode) and an <c>awsvpc</c> task's address
    /// (its pause container). Health starts UNKNOWN either way; an exit arrives as a <c>die</c> event.
    /// </summary>
    private static bool NeedsInspectAfterStart(ManagedTask task, ContainerPlan container)
        => container.PortMappings.Count > 0 || (container.Internal && task.Plan.Network is not null);

    /// <summary>Reads a container's state from Docker (status, exit code, health, the ports Docker bound) and hands it to the loop.</summary>
    internal async Task RefreshAsync(string container, CancellationToken cancellationToken)
    {
        if (View.Container(container)?.DockerId is not { } dockerId) return;
        ContainerInspectResponse? inspected;
        try
        {
            inspected = await Engine.Containers.InspectContainerAsync(dockerId, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
            inspected = null;
        }
        await SendAsync(new TaskInput.Inspected(container, inspected));
    }

    /// <summary>A RUNNING task's report of what changed (sent unless nothing reportable did).</summary>
    private void ReportRunning()
        => _runner.Background(Reporter.PublishAsync(Managed.Reports, () => SnapshotIf(EcsTaskStatus.Running), Shutdown));

    /// <summary>The task's report if its known status is <paramref name="status"/>, else null (it moved on).</summary>
    private TaskStateChange? SnapshotIf(string status)
    {
        var view = View;
        return view.KnownStatus == status ? view.Report with { ContainerInstanceArn = _runner.ContainerInstanceArn, ObservedAt = _runner.Now() } : null;
    }

    /// <summary>
    /// The pause container's endpoint on the task's network: the subnet's, or (a task started by a
    /// worker from before subnet networks, adopted) the one network it is on.
    /// </summary>
    internal static EndpointSettings? PauseEndpoint(ContainerInspectResponse inspected, TaskNetworkPlan network)
        => inspected.NetworkSettings?.Networks is not { Count: > 0 } networks ? null
            : networks.TryGetValue(network.Name, out var endpoint) ? endpoint
            : networks.Count == 1 ? networks.Values.Single() : null;

    private static string? Health(string dockerHealth) => dockerHealth switch
    {
        "healthy" => HealthStatus.Healthy,
        "unhealthy" => HealthStatus.Unhealthy,
        "starting" => HealthStatus.Unknown,
        _ => null,
    };
}
