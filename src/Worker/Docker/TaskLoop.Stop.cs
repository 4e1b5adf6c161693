using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Docker;

/// <summary>
/// A task's stop, run by its loop beside it: shutdown order, exit codes, the STOPPED report,
/// clean-up. What it learns reaches the task as inputs; it reads the task's views.
/// </summary>
internal sealed partial class TaskLoop
{
    /// <summary>After <see cref="TaskStateReporter.TransitionDelay"/>, STOPPING unless the task got to STOPPED meanwhile.</summary>
    private void ReportStoppingLater()
        => Reporter.PublishLater(Managed.Reports, () => SnapshotIf(EcsTaskStatus.Stopping), Shutdown);

    /// <summary>
    /// A task's stop, top to bottom, begun once by its loop: the start sequence given up, containers
    /// stopped (dependents first), then STOPPED reported and the task's resources cleaned up.
    /// Runs beside the loop, never inside its step: what it learns comes back as inputs.
    /// </summary>
    private async Task RunStopSequenceAsync(bool report)
    {
        var task = Managed;
        var token = Shutdown;
        try
        {
            await task.StartSequence.WaitAsync(token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            token.ThrowIfCancellationRequested();

            var strays = await WithRetriesAsync(() => AdoptStraysAsync(token), task, "list the containers", token);

            // Dependents stop before what they depend on (the agent's shutdown order), in waves.
            var dependents = TaskStatusRules.Dependents(task.Plan.Containers);
            var remaining = task.Plan.Containers.ToList();
            while (remaining.Count > 0)
            {
                var wave = remaining.Where(c => dependents[c.Name].All(d => remaining.All(r => r.Name != d))).ToList();
                if (wave.Count == 0) wave = remaining; // a cycle: stop the rest together
                await Task.WhenAll(wave.Select(c => WithRetriesAsync(async () =>
                {
                    await StopContainerAsync(c, token);
                    return true;
                }, task, $"stop {c.Name}", token)));
                remaining = remaining.Except(wave).ToList();
            }
            await Task.WhenAll(strays.Select(id => StopStrayAsync(id, token)));

            await SendAsync(new TaskInput.Stopped());
            if (report) await Reporter.PublishAsync(task.Reports, () => SnapshotIf(EcsTaskStatus.Stopped), token);
            var view = View;
            _logger.LogInformation("{TaskArn} is STOPPED ({StopCode}): {StoppedReason}", task.TaskArn, view.Report.StopCode ?? "commanded", view.Report.StoppedReason);
            _runner.Finish(this);
            _runner.Background(CleanUpAsync(strays, token));
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
                await Task.Delay(delay, Time, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Containers Docker has for this task that the worker does not track (a create whose answer
    /// was lost): the one matching a container that has no id is adopted, any other is a stray.
    /// </summary>
    private async Task<IReadOnlyList<string>> AdoptStraysAsync(CancellationToken cancellationToken)
    {
        var listed = await Engine.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool>
                {
                    [$"{DockerLabels.InstanceId}={Identity.InstanceId}"] = true,
                    [$"{DockerLabels.TaskArn}={Managed.TaskArn}"] = true,
                },
            },
        }, cancellationToken);
        var claim = new TaskInput.Claim(listed);
        await SendAsync(claim);
        return claim.Strays;
    }

    /// <summary>SIGTERM, SIGKILL after the container's stopTimeout (Docker's stop does both), then its exit code.</summary>
    private async Task StopContainerAsync(ContainerPlan container, CancellationToken cancellationToken)
    {
        if (View.Container(container.Name) is not { DockerId: { } dockerId } known || known.Status == ContainerKnownStatus.Stopped) return;
        // Created as far as the worker knows, unless a restart interrupted: Docker says which.
        if (known.Status == ContainerKnownStatus.Created) await RefreshAsync(container.Name, cancellationToken);
        var status = View.Container(container.Name)!.Status;
        if (status == ContainerKnownStatus.Created)
        {
            // Never started: nothing to signal.
            await SendAsync(new TaskInput.NeverStarted(container.Name));
            return;
        }
        if (status == ContainerKnownStatus.Stopped) return;
        var stopCall = Engine.Containers.StopContainerAsync(dockerId,
            new ContainerStopParameters { WaitBeforeKillSeconds = (uint)Math.Max(0, container.StopTimeout.TotalSeconds) }, cancellationToken);
        // The die event (with the exit code) usually comes well before Docker's stop call returns
        // (it still tears down the network): the first of the two ends the wait.
        var died = UntilStoppedAsync(container.Name, cancellationToken);
        if (await Task.WhenAny(stopCall, died) == died)
        {
            _runner.Background(stopCall.ContinueWith(t => _ = t.Exception, TaskScheduler.Default));
            return;
        }
        try
        {
            await stopCall;
        }
        catch (DockerContainerNotFoundException)
        {
            await SendAsync(new TaskInput.Vanished(container.Name));
            return;
        }
        await RefreshAsync(container.Name, cancellationToken);
    }

    /// <summary>Completes when the container is known stopped (by an event or an inspect).</summary>
    private async Task UntilStoppedAsync(string container, CancellationToken cancellationToken)
    {
        while (true)
        {
            var view = View;
            if (view.Container(container)!.Status == ContainerKnownStatus.Stopped) return;
            await view.Superseded.WaitAsync(cancellationToken);
        }
    }

    private async Task StopStrayAsync(string dockerId, CancellationToken cancellationToken)
    {
        try
        {
            await Engine.Containers.StopContainerAsync(dockerId, new ContainerStopParameters { WaitBeforeKillSeconds = 0 }, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
        }
    }

    /// <summary>
    /// Removes the stopped task's containers and task-scoped volumes, after
    /// <see cref="WorkerOptions.TaskCleanupWaitSeconds"/> (ECS keeps them for a while; 0 here by default).
    /// </summary>
    private async Task CleanUpAsync(IReadOnlyList<string> strays, CancellationToken cancellationToken)
    {
        if (Options.TaskCleanupWaitSeconds > 0)
            await Task.Delay(TimeSpan.FromSeconds(Options.TaskCleanupWaitSeconds), Time, cancellationToken);
        // Every line is stored before the container (and Docker's copy of its output) is removed.
        await LogShipper.DrainAsync(View.Containers.Select(c => c.DockerId).OfType<string>(), TimeSpan.FromSeconds(30), cancellationToken);
        await RemoveResourcesAsync(strays, cancellationToken);
        _logger.LogDebug("Cleaned up {TaskArn}", Managed.TaskArn);
    }

    /// <summary>Removes what the task had on the engine: its containers (and <paramref name="strays"/>), task-scoped volumes, networks.</summary>
    internal async Task RemoveResourcesAsync(IReadOnlyList<string> strays, CancellationToken cancellationToken)
    {
        var task = Managed;
        foreach (var dockerId in View.Containers.Select(c => c.DockerId).OfType<string>().Concat(strays))
        {
            try
            {
                await Engine.Containers.RemoveContainerAsync(dockerId, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken);
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
                await Engine.Volumes.RemoveAsync(volume.DockerName, force: false, cancellationToken);
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
        await _runner.RemoveNetworksAsync(task.TaskArn, cancellationToken);
        if (task.Plan.Network is { } network) _runner.ReleaseNetwork(network.Name);
    }
}
