using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;
using Serverless.Core.Telemetry;

namespace Serverless.Worker.Docker;

/// <summary>Starting a task: pull, volumes, create, start in dependency order.</summary>
public sealed partial class TaskRunner
{
    private void BeginStartSequence(ManagedTask task)
    {
        lock (task.Gate)
        {
            task.StartSequence = Task.Run(() => RunStartSequenceAsync(task));
        }
        // PENDING is worth a report only when RUNNING does not follow quickly, and only for a task
        // its row lets start.
        _reporter.PublishLater(task.Reports,
            () => task.StartAllowed is { IsCompletedSuccessfully: true, Result: true } ? SnapshotIf(task, EcsTaskStatus.Pending) : null,
            _shutdown.Token);
    }

    /// <summary>
    /// A task's start, top to bottom: everything that makes its containers ready to run (secrets,
    /// images, volumes, network, the containers themselves), then, once the task row allows it,
    /// each container's start in dependency order. A failure stops the task with TaskFailedToStart.
    /// </summary>
    private async Task RunStartSequenceAsync(ManagedTask task)
    {
        // The start (pull, create, start) is one span in the trace of the command that asked for it.
        using var activity = Telemetry.StartFrom(Telemetry.WorkerSource, "StartTask", task.TraceParent);
        activity?.SetTag("ecs.task_arn", task.TaskArn);
        if (activity is not null) lock (task.Gate) task.TraceParent = activity.Id;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(task.Lifetime.Token, _shutdown.Token);
        var token = linked.Token;
        try
        {
            var failure = await PrepareAsync(task, token);
            // A refused Start is withdrawn by StartAsync: nothing of it starts, and nothing is reported.
            if (!await task.StartAllowed) return;
            if (failure is not null)
            {
                BeginStop(task, TaskFailedToStart, failure, commanded: false);
                return;
            }
            await Task.WhenAll(task.Containers.Select(c => StartWhenReadyAsync(task, c, token)));
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
            BeginStop(task, TaskFailedToStart, $"CannotStartContainerError: {e.Message}", commanded: false);
        }
    }

    /// <summary>
    /// Everything before the first container starts: the task's secrets into its containers'
    /// parameters, its images present, its volumes and network made, its containers created.
    /// Null, or why the task cannot start, in ECS's words.
    /// </summary>
    private async Task<string?> PrepareAsync(ManagedTask task, CancellationToken token)
    {
        if (task.Plan.Refusal is { } refusal)
        {
            lock (task.Gate)
            {
                foreach (var container in task.Containers) container.Reason ??= refusal;
            }
            return refusal;
        }

        var secretsError = await _secrets.InjectAsync(task.TaskArn, task.Plan, task.Secrets, token);
        // Read once: the values are in the containers' create parameters now (or never will be).
        if (task.Plan.Secrets.Count > 0) Background(_secrets.ForgetAsync(task.TaskArn, task.Secrets, _shutdown.Token));
        if (secretsError is not null)
        {
            _logger.LogWarning("{TaskArn} cannot start: {Reason}", task.TaskArn, secretsError);
            lock (task.Gate)
            {
                foreach (var container in task.Containers) container.Reason ??= secretsError;
            }
            return secretsError;
        }

        lock (task.Gate) task.PullStartedAt ??= Now();
        // An image seen present before is not looked at again: one Docker call less per start.
        // Should it have gone since, its container's create finds out and pulls it (CreateAsync).
        var images = task.Containers.Where(c => c.DockerId is null).Select(c => c.Plan.Image).Distinct().Where(i => !_images.SeenPresent(i)).ToList();
        var pulls = await Task.WhenAll(images.Select(async image => (Image: image, Error: await _images.EnsureAsync(image, token))));
        lock (task.Gate) task.PullStoppedAt ??= Now();
        if (pulls.FirstOrDefault(p => p.Error is not null) is { Error: { } pullError } failed)
        {
            _logger.LogWarning("Could not pull {Image} for {TaskArn}: {Error}", failed.Image, task.TaskArn, pullError);
            lock (task.Gate)
            {
                foreach (var container in task.Containers.Where(c => c.Plan.Image == failed.Image)) container.Reason ??= pullError;
            }
            return pullError;
        }

        if (await EnsureVolumesAsync(task, token) is { } volumeError) return volumeError;
        // A spare pause container of the subnet's network (so the network exists), else the network made sure of.
        if (!await TakeSpareAsync(task) && await EnsureNetworkAsync(task, token) is { } networkError) return networkError;

        _metadata.Inject(task.Plan);
        // Containers are created together, each after the sources of its volumesFrom.
        var creations = new Dictionary<string, Task<string?>>(StringComparer.Ordinal);
        foreach (var plan in TaskStatusRules.CreateOrder(task.Plan.Containers))
        {
            var sources = plan.CreateAfter.Where(creations.ContainsKey).Select(name => creations[name]).ToList();
            creations[plan.Name] = CreateAsync(task, task.Container(plan.Name)!, sources, token);
        }
        return (await Task.WhenAll(creations.Values)).FirstOrDefault(e => e is not null);
    }

    /// <summary>
    /// Creates one container once its <paramref name="sources"/> exist; null, or the failure in ECS's
    /// words (a failed source leaves it uncreated, with no failure of its own).
    /// </summary>
    private async Task<string?> CreateAsync(ManagedTask task, ManagedContainer container, IReadOnlyList<Task<string?>> sources, CancellationToken cancellationToken)
    {
        foreach (var source in sources)
        {
            if (await source is not null) return null;
        }
        if (container.DockerId is not null) return null;
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
                    created = await _docker.Containers.CreateContainerAsync(container.Plan.Parameters, _shutdown.Token);
                    break;
                }
                catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound && attempt == 1)
                {
                    // The image went since it was last seen (the start skipped looking): make it present, then create again.
                    _images.Forget(container.Plan.Image);
                    if (await _images.EnsureAsync(container.Plan.Image, cancellationToken) is { } pullError)
                    {
                        lock (task.Gate) container.Reason ??= pullError;
                        return pullError;
                    }
                }
            }
            lock (task.Gate) container.MarkCreated(created.ID);
            _logger.LogDebug("Created {DockerName} ({DockerId}) for {TaskArn}", container.Plan.DockerName, created.ID, task.TaskArn);
            return null;
        }
        catch (DockerApiException e)
        {
            var reason = $"CannotCreateContainerError: Error response from daemon: {ImagePuller.DaemonMessage(e)}";
            _logger.LogWarning("Could not create {ContainerName} of {TaskArn}: {Reason}", container.Name, task.TaskArn, reason);
            lock (task.Gate) container.Reason ??= reason;
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
    /// Makes sure the network of an <c>awsvpc</c> task's subnet exists on this worker: found by its
    /// name (made by an earlier task, or before a restart), else created. Under the network's gate,
    /// so an idle network's removal (<see cref="RemoveIfIdleAsync"/>) never runs between this check
    /// and the task's pause container joining it. Null, or the failure in ECS's words.
    /// </summary>
    private async Task<string?> EnsureNetworkAsync(ManagedTask task, CancellationToken cancellationToken)
    {
        if (task.Plan.Network is not { } network) return null;
        var gate = NetworkGate(network.Name);
        await gate.WaitAsync(cancellationToken);
        try
        {
            var existing = await _docker.Networks.ListNetworksAsync(new NetworksListParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["name"] = new Dictionary<string, bool> { [network.Name] = true } },
            }, cancellationToken);
            // Docker's name filter matches substrings: only the exact name is the subnet's.
            if (existing.Any(n => n.Name == network.Name)) return null;
            await _docker.Networks.CreateNetworkAsync(new NetworksCreateParameters
            {
                Name = network.Name,
                Driver = "bridge",
                CheckDuplicate = true,
                Labels = network.Labels,
            }, cancellationToken);
            _logger.LogInformation("Created network {Network} for subnet {SubnetId} ({TaskArn} is its first task)", network.Name, network.SubnetId, task.TaskArn);
            return null;
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.Conflict)
        {
            return null; // created meanwhile (a create whose answer was lost, retried): the same network
        }
        catch (DockerApiException e)
        {
            return $"ResourceInitializationError: failed to create the task's network interface: {ImagePuller.DaemonMessage(e)}";
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Starts one container once its dependsOn conditions hold, woken by each change of the task's
    /// containers (Docker's events), never by polling. A condition that can never hold, or does not
    /// within the container's startTimeout, leaves it stopped unstarted, with the agent's reason.
    /// </summary>
    private async Task StartWhenReadyAsync(ManagedTask task, ManagedContainer container, CancellationToken cancellationToken)
    {
        if (container.Status != ContainerKnownStatus.Created || container.DockerId is not { } dockerId) return;

        var deadline = Now() + container.Plan.StartTimeout;
        while (true)
        {
            DependencyVerdict verdict;
            Task next;
            lock (task.Gate)
            {
                verdict = DependencyConditions.EvaluateAll(container.Name, container.Plan.DependsOn, name => task.Container(name)?.State);
                next = task.NextChange;
            }
            if (verdict.Kind == DependencyVerdictKind.Satisfied) break;

            var remaining = deadline - Now();
            if (verdict.Kind == DependencyVerdictKind.Waiting && remaining <= TimeSpan.Zero)
            {
                var blocking = container.Plan.DependsOn.First(d =>
                    DependencyConditions.Evaluate(container.Name, d, task.Container(d.ContainerName)?.State).Kind != DependencyVerdictKind.Satisfied);
                verdict = DependencyVerdict.Impossible(DependencyConditions.TimedOut(blocking.ContainerName, container.Name));
            }
            if (verdict.Kind == DependencyVerdictKind.Impossible)
            {
                _logger.LogWarning("{ContainerName} of {TaskArn} will not start: {Reason}", container.Name, task.TaskArn, verdict.Reason);
                bool changed;
                lock (task.Gate) changed = container.MarkStopped(null, $"CannotStartContainerError: {verdict.Reason}");
                if (changed) OnContainersChanged(task);
                return;
            }
            try
            {
                await next.WaitAsync(remaining, _time, cancellationToken);
            }
            catch (TimeoutException)
            {
                // Judged again above: the deadline passed.
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        // As Docker's awslogs driver does, the container does not start when its log stream cannot be made.
        var failure = await _logs.PrepareAsync(dockerId, container.Plan.Parameters.Labels, _shutdown.Token);
        if (failure is null)
        {
            try
            {
                await _docker.Containers.StartContainerAsync(dockerId, new ContainerStartParameters(), _shutdown.Token);
                _logs.Follow(dockerId, container.Plan.Parameters.Labels, container.Plan.Parameters.Tty == true, _shutdown.Token);
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
            bool changed;
            lock (task.Gate)
            {
                // Docker may already have sent the failed start's die event: the reason still says why.
                changed = container.MarkStopped(null, reason);
                container.Reason ??= reason;
            }
            if (changed) OnContainersChanged(task);
            return;
        }
        if (NeedsInspectAfterStart(task, container))
        {
            await RefreshAsync(task, container, _shutdown.Token);
            return;
        }
        // Docker's start returned: the container runs (an exit already seen stays, statuses only move
        // forward). Nothing an inspect would add, so RUNNING goes out one Docker round trip sooner.
        bool started;
        lock (task.Gate) started = container.MarkRunning();
        if (started) OnContainersChanged(task);
    }

    /// <summary>
    /// Whether a started container must be read back before it is reported: only for what Docker
    /// decides at start, the host ports it bound (bridge mode) and an <c>awsvpc</c> task's address
    /// (its pause container). Health starts UNKNOWN either way; an exit arrives as a <c>die</c> event.
    /// </summary>
    private static bool NeedsInspectAfterStart(ManagedTask task, ManagedContainer container)
        => container.Plan.PortMappings.Count > 0 || (container.Plan.Internal && task.Plan.Network is not null);

    /// <summary>Reads a container's state from Docker (status, exit code, health, the ports Docker bound) and applies it.</summary>
    private async Task RefreshAsync(ManagedTask task, ManagedContainer container, CancellationToken cancellationToken)
    {
        if (container.DockerId is not { } dockerId) return;
        ContainerInspectResponse inspected;
        try
        {
            inspected = await _docker.Containers.InspectContainerAsync(dockerId, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
            bool vanished;
            lock (task.Gate) vanished = container.MarkStopped(null, ContainerVanished);
            if (vanished) OnContainersChanged(task);
            return;
        }
        bool changed;
        lock (task.Gate) changed = Apply(task, container, inspected);
        if (changed) OnContainersChanged(task);
    }

    /// <summary>The agent's reason for a container Docker no longer knows.</summary>
    internal const string ContainerVanished = "ContainerVanishedError: No container matching saved ID found";

    /// <summary>Applies an inspect result (call under the task's gate); true when something changed.</summary>
    private static bool Apply(ManagedTask task, ManagedContainer container, ContainerInspectResponse inspected)
    {
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

    /// <summary>
    /// The pause container's endpoint on the task's network: the subnet's, or (a task started by a
    /// worker from before subnet networks, adopted) the one network it is on.
    /// </summary>
    private static EndpointSettings? PauseEndpoint(ContainerInspectResponse inspected, TaskNetworkPlan network)
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

    /// <summary>
    /// The task-level consequences of a container change: an essential container that stopped
    /// stops the task (EssentialContainerExited if it ran, TaskFailedToStart if it never could);
    /// a task whose containers all got going is RUNNING; a RUNNING task reports what changed.
    /// </summary>
    private void OnContainersChanged(ManagedTask task)
    {
        string? stopCode = null, stopReason = null;
        var publish = false;
        var counts = false;
        lock (task.Gate)
        {
            task.Pulse();
            if (task.IsStopping) return;

            var stoppedEssential = task.Containers.FirstOrDefault(c => c.Essential && c.Status == ContainerKnownStatus.Stopped);
            if (stoppedEssential is not null)
            {
                if (stoppedEssential.Started)
                {
                    task.ExecutionStoppedAt ??= Now();
                    (stopCode, stopReason) = (EssentialContainerExited, EssentialContainerExitedReason);
                }
                else
                {
                    (stopCode, stopReason) = (TaskFailedToStart, stoppedEssential.Reason ?? "CannotStartContainerError: the container did not start");
                }
            }
            else if (task.KnownStatus == EcsTaskStatus.Pending && TaskStatusRules.IsRunning(task.States()))
            {
                task.KnownStatus = EcsTaskStatus.Running;
                task.StartedAt ??= Now();
                Telemetry.TasksStarted.Add(1, new KeyValuePair<string, object?>("ecs.cluster", task.Cluster));
                publish = counts = true;
            }
            else if (task.KnownStatus == EcsTaskStatus.Running)
            {
                publish = true;
            }
        }

        if (stopCode is not null)
        {
            BeginStop(task, stopCode, stopReason, commanded: false);
            return;
        }
        if (counts)
        {
            _logger.LogInformation("{TaskArn} is RUNNING", task.TaskArn);
            CountsChanged?.Invoke();
            // The subnet's next task finds a spare pause container ready (made now, off this task's start).
            if (task.Plan.Network is { } network) EnsureSpare(network);
        }
        if (publish) Background(_reporter.PublishAsync(task.Reports, () => SnapshotIf(task, EcsTaskStatus.Running), _shutdown.Token));
    }

    /// <summary>The task's report if its known status is <paramref name="status"/>, else null (it moved on).</summary>
    private TaskStateChange? SnapshotIf(ManagedTask task, string status)
    {
        lock (task.Gate)
        {
            return task.KnownStatus == status ? task.Snapshot(_identity.ContainerInstanceArn, Now()) : null;
        }
    }
}
