using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Docker;

/// <summary>
/// What the runner keeps across tasks: the awsvpc subnet networks (made on a task's first use,
/// let go when idle) and the STOPPED report of a task that has no containers here.
/// </summary>
public sealed partial class TaskRunner
{
    /// <summary>
    /// Makes sure the network of an <c>awsvpc</c> task's subnet exists on this worker: found by its
    /// name (made by an earlier task, or before a restart), else created. Under the network's gate,
    /// so an idle network's removal (<see cref="RemoveIfIdleAsync"/>) never runs between this check
    /// and the task's pause container joining it. Null, or the failure in ECS's words.
    /// </summary>
    internal async Task<string?> EnsureNetworkAsync(ManagedTask task, CancellationToken cancellationToken)
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
    internal void ReleaseNetwork(string name)
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
            if (Loops.Any(l => l.Managed.Plan.Network?.Name == name)) return;
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
