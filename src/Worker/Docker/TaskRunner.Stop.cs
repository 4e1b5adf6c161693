using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Docker;

/// <summary>Stopping a task: shutdown order, exit codes, the STOPPED report, clean-up.</summary>
public sealed partial class TaskRunner
{
    /// <summary>
    /// Starts stopping the task, once: desired STOPPED, pending starts abandoned, then
    /// <see cref="RunStopSequenceAsync"/>. The first stop code and reason stick.
    /// </summary>
    private void BeginStop(ManagedTask task, string? stopCode, string? reason, bool commanded, bool report = true)
    {
        lock (task.Gate)
        {
            if (task.StopSequence is not null) return;
            task.DesiredStatus = EcsTaskStatus.Stopped;
            task.StopCode ??= stopCode;
            task.StoppedReason ??= reason;
            if (task.KnownStatus != EcsTaskStatus.Stopped) task.KnownStatus = EcsTaskStatus.Stopping;
            task.StopSequence = Task.Run(() => RunStopSequenceAsync(task, report));
            task.Pulse();
        }
        _logger.LogInformation("Stopping {TaskArn} ({StopCode}): {StoppedReason}", task.TaskArn, task.StopCode ?? "commanded", task.StoppedReason);
        // Outside the gate: cancelling runs the waiters' continuations.
        task.Lifetime.Cancel();
        if (commanded && report)
            _reporter.PublishLater(task.Reports, () => SnapshotIf(task, EcsTaskStatus.Stopping), _shutdown.Token);
        CountsChanged?.Invoke();
    }

    private async Task RunStopSequenceAsync(ManagedTask task, bool report)
    {
        var token = _shutdown.Token;
        try
        {
            Task start;
            lock (task.Gate) start = task.StartSequence;
            await start.WaitAsync(token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            token.ThrowIfCancellationRequested();

            var strays = await WithRetriesAsync(() => AdoptStraysAsync(task, token), task, "list the containers", token);

            // Dependents stop before what they depend on (the agent's shutdown order), in waves.
            var dependents = TaskStatusRules.Dependents(task.Plan.Containers);
            var remaining = task.Containers.ToList();
            while (remaining.Count > 0)
            {
                var wave = remaining.Where(c => dependents[c.Name].All(d => remaining.All(r => r.Name != d))).ToList();
                if (wave.Count == 0) wave = remaining; // a cycle: stop the rest together
                await Task.WhenAll(wave.Select(c => WithRetriesAsync(async () =>
                {
                    await StopContainerAsync(task, c, token);
                    return true;
                }, task, $"stop {c.Name}", token)));
                remaining = remaining.Except(wave).ToList();
            }
            await Task.WhenAll(strays.Select(id => StopStrayAsync(id, token)));

            lock (task.Gate)
            {
                foreach (var container in task.Containers) container.MarkStopped(null, null);
                task.KnownStatus = EcsTaskStatus.Stopped;
                task.ExecutionStoppedAt ??= Now();
                task.Pulse();
            }
            if (report) await _reporter.PublishAsync(task.Reports, () => SnapshotIf(task, EcsTaskStatus.Stopped), token);
            _logger.LogInformation("{TaskArn} is STOPPED ({StopCode}): {StoppedReason}", task.TaskArn, task.StopCode ?? "commanded", task.StoppedReason);
            Finish(task);
            Background(CleanUpAsync(task, strays, token));
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // The worker is shutting down mid-stop: the restarted worker finds the containers and finishes.
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Stopping {TaskArn} failed; it is retried after a worker restart", task.TaskArn);
        }
    }

    /// <summary>
    /// A Docker call of the stop sequence, retried a few times with a growing pause: a stop that
    /// failed once must not leave the task STOPPING for good.
    /// </summary>
    private async Task<T> WithRetriesAsync<T>(Func<Task<T>> call, ManagedTask task, string what, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (attempt < 5 && e is DockerApiException or HttpRequestException or IOException or TimeoutException)
            {
                var delay = TimeSpan.FromSeconds(1 << (attempt - 1));
                _logger.LogWarning("Could not {What} of {TaskArn} (attempt {Attempt}): {Error}; retrying in {Delay}", what, task.TaskArn, attempt, e.Message, delay);
                await Task.Delay(delay, _time, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Containers Docker has for this task that the worker does not track (a create whose answer
    /// was lost): the one matching a container that has no id is adopted, any other is a stray.
    /// </summary>
    private async Task<IReadOnlyList<string>> AdoptStraysAsync(ManagedTask task, CancellationToken cancellationToken)
    {
        var listed = await _docker.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool>
                {
                    [$"{DockerLabels.InstanceId}={_identity.InstanceId}"] = true,
                    [$"{DockerLabels.TaskArn}={task.TaskArn}"] = true,
                },
            },
        }, cancellationToken);
        var strays = new List<string>();
        lock (task.Gate)
        {
            foreach (var entry in listed)
            {
                if (task.Containers.Any(c => c.DockerId == entry.ID)) continue;
                var name = DockerLabels.Get(entry.Labels, DockerLabels.ContainerName);
                var owner = name is null ? null : task.Container(name);
                if (owner is { DockerId: null, Status: ContainerKnownStatus.None }) owner.MarkCreated(entry.ID);
                else strays.Add(entry.ID);
            }
        }
        return strays;
    }

    /// <summary>SIGTERM, SIGKILL after the container's stopTimeout (Docker's stop does both), then its exit code.</summary>
    private async Task StopContainerAsync(ManagedTask task, ManagedContainer container, CancellationToken cancellationToken)
    {
        if (container.DockerId is not { } dockerId || container.Status == ContainerKnownStatus.Stopped) return;
        // Created as far as the worker knows, unless a restart interrupted: Docker says which.
        if (container.Status == ContainerKnownStatus.Created) await RefreshAsync(task, container, cancellationToken);
        if (container.Status == ContainerKnownStatus.Created)
        {
            // Never started: nothing to signal.
            lock (task.Gate) container.MarkStopped(null, container.Reason);
            return;
        }
        if (container.Status == ContainerKnownStatus.Stopped) return;
        var stopCall = _docker.Containers.StopContainerAsync(dockerId,
            new ContainerStopParameters { WaitBeforeKillSeconds = (uint)Math.Max(0, container.Plan.StopTimeout.TotalSeconds) }, cancellationToken);
        // The die event (with the exit code) usually comes well before Docker's stop call returns
        // (it still tears down the network): the first of the two ends the wait.
        var died = UntilStoppedAsync(task, container, cancellationToken);
        if (await Task.WhenAny(stopCall, died) == died)
        {
            Background(stopCall.ContinueWith(t => _ = t.Exception, TaskScheduler.Default));
            return;
        }
        try
        {
            await stopCall;
        }
        catch (DockerContainerNotFoundException)
        {
            lock (task.Gate) container.MarkStopped(null, ContainerVanished);
            return;
        }
        await RefreshAsync(task, container, cancellationToken);
    }

    /// <summary>Completes when the container is known stopped (by an event or an inspect).</summary>
    private static async Task UntilStoppedAsync(ManagedTask task, ManagedContainer container, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task next;
            lock (task.Gate)
            {
                if (container.Status == ContainerKnownStatus.Stopped) return;
                next = task.NextChange;
            }
            await next.WaitAsync(cancellationToken);
        }
    }

    private async Task StopStrayAsync(string dockerId, CancellationToken cancellationToken)
    {
        try
        {
            await _docker.Containers.StopContainerAsync(dockerId, new ContainerStopParameters { WaitBeforeKillSeconds = 0 }, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
        }
    }

    /// <summary>
    /// Removes the stopped task's containers and task-scoped volumes, after
    /// <see cref="WorkerOptions.TaskCleanupWaitSeconds"/> (ECS keeps them for a while; 0 here by default).
    /// </summary>
    private async Task CleanUpAsync(ManagedTask task, IReadOnlyList<string> strays, CancellationToken cancellationToken)
    {
        if (_options.TaskCleanupWaitSeconds > 0)
            await Task.Delay(TimeSpan.FromSeconds(_options.TaskCleanupWaitSeconds), _time, cancellationToken);
        // Every line is stored before the container (and Docker's copy of its output) is removed.
        await _logs.DrainAsync(task.Containers.Select(c => c.DockerId).OfType<string>(), TimeSpan.FromSeconds(30), cancellationToken);
        await RemoveResourcesAsync(task, strays, cancellationToken);
        _logger.LogDebug("Cleaned up {TaskArn}", task.TaskArn);
    }

    /// <summary>Removes what the task had on the engine: its containers (and <paramref name="strays"/>), task-scoped volumes, networks.</summary>
    private async Task RemoveResourcesAsync(ManagedTask task, IReadOnlyList<string> strays, CancellationToken cancellationToken)
    {
        foreach (var dockerId in task.Containers.Select(c => c.DockerId).OfType<string>().Concat(strays))
        {
            try
            {
                await _docker.Containers.RemoveContainerAsync(dockerId, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken);
            }
            catch (DockerContainerNotFoundException)
            {
            }
            catch (DockerApiException e)
            {
                _logger.LogWarning("Could not remove container {DockerId} of {TaskArn}: {Error}", dockerId, task.TaskArn, ImagePuller.DaemonMessage(e));
            }
        }
        foreach (var volume in task.Plan.Volumes.Where(v => v.TaskScoped))
        {
            try
            {
                await _docker.Volumes.RemoveAsync(volume.DockerName, force: false, cancellationToken);
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
            }
            catch (DockerApiException e)
            {
                _logger.LogWarning("Could not remove volume {Volume} of {TaskArn}: {Error}", volume.DockerName, task.TaskArn, ImagePuller.DaemonMessage(e));
            }
        }
        // A network a worker from before subnet networks made for this task alone.
        await RemoveNetworksAsync(task.TaskArn, cancellationToken);
        if (task.Plan.Network is { } network) ReleaseNetwork(network.Name);
    }

    /// <summary>
    /// Removes the networks this worker made for <paramref name="taskArn"/> (a worker from before
    /// subnet networks made one per task), or, when null, every network of this worker no task it
    /// manages is on: those per-task networks, and subnet networks (Docker refuses to remove one
    /// that a container still runs on; that one goes once its tasks are cleaned up). Found by their labels,
    /// so a network is never kept once its tasks are gone, whether they stopped here or were found after a restart.
    /// </summary>
    internal async Task RemoveNetworksAsync(string? taskArn, CancellationToken cancellationToken)
    {
        var labels = new Dictionary<string, bool> { [$"{DockerLabels.InstanceId}={_identity.InstanceId}"] = true };
        if (taskArn is not null) labels[$"{DockerLabels.TaskArn}={taskArn}"] = true;
        var networks = await _docker.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = labels },
        }, cancellationToken);
        foreach (var network in networks)
        {
            var owner = DockerLabels.Get(network.Labels, DockerLabels.TaskArn);
            if (DockerLabels.Get(network.Labels, TaskNetworkPlan.SubnetLabel) is not null)
            {
                if (taskArn is null) await RemoveIfUnusedAsync(network.Name, since: null, cancellationToken);
                continue;
            }
            if (taskArn is null && owner is not null && Existing(owner) is not null) continue;
            try
            {
                await _docker.Networks.DeleteNetworkAsync(network.ID, cancellationToken);
                _logger.LogDebug("Removed network {Network} of {TaskArn}", network.Name, owner);
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
            }
            catch (DockerApiException e)
            {
                _logger.LogWarning("Could not remove network {Network} of {TaskArn}: {Error}", network.Name, owner, ImagePuller.DaemonMessage(e));
            }
        }
    }

    /// <summary>One gate per subnet network: its check-or-create and its removal never interleave.</summary>
    private SemaphoreSlim NetworkGate(string name) => _networkGates.GetOrAdd(name, _ => new SemaphoreSlim(1, 1));

    /// <summary>
    /// A task that was on a subnet's network has been cleaned up: the network goes after
    /// <see cref="WorkerOptions.AwsVpcNetworkIdleSeconds"/> unless a task is on it by then (or
    /// another task's release came later and waits its own turn).
    /// </summary>
    private void ReleaseNetwork(string name)
    {
        var releasedAt = Now();
        _networkReleases[name] = releasedAt;
        Background(RemoveIfIdleAsync(name, releasedAt, _shutdown.Token));
    }

    private async Task RemoveIfIdleAsync(string name, DateTimeOffset releasedAt, CancellationToken cancellationToken)
    {
        try
        {
            if (_options.AwsVpcNetworkIdleSeconds > 0)
                await Task.Delay(TimeSpan.FromSeconds(_options.AwsVpcNetworkIdleSeconds), _time, cancellationToken);
            await RemoveIfUnusedAsync(name, releasedAt, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The worker is stopping: its own sweep (DisposeAsync) or the next start's takes the network.
        }
    }

    /// <summary>
    /// Removes a subnet network no task this worker manages is on (and, with <paramref name="since"/>,
    /// whose last release is that one). A container of another kind still on it makes Docker refuse: kept.
    /// </summary>
    private async Task RemoveIfUnusedAsync(string name, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        var gate = NetworkGate(name);
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (since is { } released && _networkReleases.TryGetValue(name, out var last) && last != released) return;
            if (Tasks.Any(t => t.Plan.Network?.Name == name)) return;
            try
            {
                // Its spare pause container goes first (Docker keeps a network a container is on).
                await SparingDoneAsync(name, cancellationToken);
                await RemoveSparesAsync(name, keepReady: false, cancellationToken);
                await _docker.Networks.DeleteNetworkAsync(name, cancellationToken);
                _networkReleases.TryRemove(name, out _);
                _logger.LogInformation("Removed network {Network}: no task is on it", name);
            }
            catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                _networkReleases.TryRemove(name, out _);
            }
            catch (DockerApiException e)
            {
                // Docker refuses while a container is attached (a task's cleanup still to come releases it again).
                _logger.LogDebug("Kept network {Network}: {Error}", name, ImagePuller.DaemonMessage(e));
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>A STOPPED report for a task without containers here (never started, or gone while the worker was down).</summary>
    internal async Task ReportStoppedAsync(
        string cluster, string taskArn, string? stopCode, string? reason, IEnumerable<string> containerNames, string? containerReason,
        CancellationToken cancellationToken)
    {
        Tombstone(taskArn);
        var now = Now();
        await _reporter.SendAsync(new TaskStateChange
        {
            Cluster = cluster,
            TaskArn = taskArn,
            ContainerInstanceArn = _identity.ContainerInstanceArn,
            LastStatus = EcsTaskStatus.Stopped,
            StopCode = stopCode,
            StoppedReason = reason,
            ExecutionStoppedAt = now,
            Containers = containerNames.Select(name => new ContainerStateChange
            {
                Name = name,
                LastStatus = EcsTaskStatus.Stopped,
                Reason = containerReason,
            }).ToList(),
            ObservedAt = now,
        }, transitional: false, cancellationToken);
        _logger.LogInformation("Reported {TaskArn} STOPPED without containers: {StoppedReason}", taskArn, reason);
    }
}
