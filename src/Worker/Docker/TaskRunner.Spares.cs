using System.Collections.Concurrent;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Docker;

/// <summary>
/// Warm spare pause containers: one running namespace holder per subnet network, made in the
/// background after a task of that subnet reaches RUNNING, so the next <c>awsvpc</c> task of the
/// subnet takes it (a rename to its own pause container's name) instead of creating and starting
/// one on its launch path. A spare is labelled with this worker's instance id,
/// <see cref="DockerLabels.ContainerName"/> = the pause container's name and
/// <see cref="SpareLabel"/> = its network, and with no task or cluster: it belongs to no task until
/// taken, and a taken one is matched to its task by name (<see cref="SpareOf"/>). Spares no task
/// owns are removed with their network, when the worker stops, and at its next start.
/// </summary>
public sealed partial class TaskRunner
{
    /// <summary>The label naming the subnet network of a spare pause container.</summary>
    public const string SpareLabel = "ecs-worker.awsvpc-spare";

    /// <summary>A ready spare: its container, and the address and MAC it holds on its network.</summary>
    internal sealed record Spare(string Id, TaskNetworkInterface Interface);

    /// <summary>The ready spare of each subnet network (at most one).</summary>
    private readonly ConcurrentDictionary<string, Spare> _spares = new(StringComparer.Ordinal);

    /// <summary>The spare being made for a subnet network (at most one at a time).</summary>
    private readonly ConcurrentDictionary<string, Task> _sparing = new(StringComparer.Ordinal);

    /// <summary>Spares handed to a task's start sequence that its loop does not show yet (<see cref="TakeSpare"/>).</summary>
    private readonly ConcurrentDictionary<string, bool> _taking = new(StringComparer.Ordinal);

    private volatile bool _sparesClosed;

    /// <summary>
    /// Whether a container listed from Docker is the pause container of the task whose other
    /// containers carry <paramref name="suffix"/>: a spare renamed to that task's pause name.
    /// </summary>
    internal static bool SpareOf(ContainerListResponse container, string suffix)
        => DockerLabels.Get(container.Labels, SpareLabel) is not null
           && container.Names?.FirstOrDefault() is { } name
           && name.EndsWith($"-internalecspause-{suffix}", StringComparison.Ordinal);

    /// <summary>
    /// Hands the ready spare of <paramref name="network"/> to a task's start sequence
    /// (<see cref="TaskLoop"/>'s TakeSpareAsync), or null when there is none. Until the taker
    /// <see cref="SpareTaken"/> (its loop's view then shows it as the pause container), the sweep
    /// of <see cref="RemoveSparesAsync"/> leaves it alone.
    /// </summary>
    internal Spare? TakeSpare(string network)
    {
        if (!_spares.TryGetValue(network, out var spare)) return null;
        // Marked as being taken before it leaves the ready ones: a sweep never sees it as neither.
        _taking[spare.Id] = true;
        if (_spares.TryRemove(new KeyValuePair<string, Spare>(network, spare))) return spare;
        _taking.TryRemove(spare.Id, out _);
        return null;
    }

    /// <summary>The taker of a spare is done with it: owned by its task (or, when its rename failed, removed).</summary>
    internal void SpareTaken(Spare spare, bool failed)
    {
        if (failed) Background(RemoveQuietlyAsync(spare.Id, _shutdown.Token));
        _taking.TryRemove(spare.Id, out _);
    }

    /// <summary>
    /// Makes sure the subnet network has a spare, ready or being made (called while a task of the
    /// network is managed here, so the network's idle removal waits for the spare and removes it).
    /// </summary>
    internal void EnsureSpare(TaskNetworkPlan network)
    {
        if (!_options.AwsVpcWarmSpare || _sparesClosed || _shutdown.IsCancellationRequested || _spares.ContainsKey(network.Name)) return;
        var making = new Task<Task>(() => MakeSpareAsync(network));
        if (!_sparing.TryAdd(network.Name, making.Unwrap())) return;
        making.Start(TaskScheduler.Default);
    }

    private async Task MakeSpareAsync(TaskNetworkPlan network)
    {
        var token = _shutdown.Token;
        string? id = null;
        try
        {
            var created = await _docker.Containers.CreateContainerAsync(new CreateContainerParameters
            {
                Name = $"ecs-awsvpc-spare-{NewSuffix()}",
                Image = _options.PauseImage,
                Cmd = ["sleep", "2147483647"],
                Labels = new Dictionary<string, string>
                {
                    [DockerLabels.InstanceId] = _identity.InstanceId,
                    [DockerLabels.ContainerName] = TaskTranslation.PauseContainerName,
                    [SpareLabel] = network.Name,
                },
                HostConfig = new HostConfig { NetworkMode = network.Name },
            }, token);
            id = created.ID;
            await _docker.Containers.StartContainerAsync(id, new ContainerStartParameters(), token);
            var inspected = await _docker.Containers.InspectContainerAsync(id, token);
            if (inspected.State?.Running != true || TaskLoop.PauseEndpoint(inspected, network) is not { IPAddress: { Length: > 0 } address } endpoint)
                throw new InvalidOperationException("the spare is not running with an address on its network");
            if (_spares.TryAdd(network.Name, new Spare(id, new TaskNetworkInterface(address, endpoint.MacAddress is { Length: > 0 } mac ? mac : null))))
                id = null;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException or InvalidOperationException)
        {
            // The network went meanwhile, or Docker refused: the next task makes its own pause container.
            _logger.LogDebug("No spare on {Network}: {Error}", network.Name, e.Message);
        }
        finally
        {
            if (id is not null) await RemoveQuietlyAsync(id, CancellationToken.None);
            _sparing.TryRemove(network.Name, out _);
        }
    }

    /// <summary>A spare's die or destroy: a ready spare that is no longer running is not handed out.</summary>
    private void OnSpareEvent(string dockerId, string action)
    {
        if (action is not ("die" or "destroy" or "kill")) return;
        foreach (var (network, spare) in _spares)
        {
            if (spare.Id == dockerId) _spares.TryRemove(new KeyValuePair<string, Spare>(network, spare));
        }
    }

    /// <summary>
    /// The loop of the managed task one of whose containers is <paramref name="dockerId"/> (a taken
    /// spare is its pause container), as the loops' published views show it.
    /// </summary>
    private TaskLoop? SpareOwner(string dockerId)
        => Loops.FirstOrDefault(l => l.View.Containers.Any(c => c.DockerId == dockerId));

    /// <summary>
    /// Removes this worker's spares no task owns: of one network (<paramref name="network"/>), or
    /// all. <paramref name="keepReady"/> keeps the ready ones this worker made (its start's sweep,
    /// which only wants what an earlier run left). Found by their labels, so one whose making was
    /// interrupted goes too.
    /// </summary>
    internal async Task RemoveSparesAsync(string? network, bool keepReady, CancellationToken cancellationToken)
    {
        var labels = new Dictionary<string, bool> { [$"{DockerLabels.InstanceId}={_identity.InstanceId}"] = true };
        labels[network is null ? SpareLabel : $"{SpareLabel}={network}"] = true;
        var listed = await _docker.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = labels },
        }, cancellationToken);
        foreach (var container in listed)
        {
            var ready = _spares.FirstOrDefault(s => s.Value.Id == container.ID);
            if (ready.Value is not null)
            {
                if (keepReady) continue;
                if (!_spares.TryRemove(ready)) continue; // taken meanwhile
            }
            else if (_taking.ContainsKey(container.ID) || SpareOwner(container.ID) is not null)
            {
                continue;
            }
            await RemoveQuietlyAsync(container.ID, cancellationToken);
            _logger.LogDebug("Removed spare {DockerId} of {Network}", container.ID, DockerLabels.Get(container.Labels, SpareLabel));
        }
    }

    /// <summary>Stops making spares and waits (a while) for those being made, before the worker's last sweep.</summary>
    private async Task CloseSparesAsync(CancellationToken cancellationToken)
    {
        _sparesClosed = true;
        await Task.WhenAll(_sparing.Values).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Waits for the spare being made for <paramref name="network"/>, if one is (its network is about to go).</summary>
    private async Task SparingDoneAsync(string network, CancellationToken cancellationToken)
    {
        if (_sparing.TryGetValue(network, out var making))
            await making.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task RemoveQuietlyAsync(string dockerId, CancellationToken cancellationToken)
    {
        try
        {
            await _docker.Containers.RemoveContainerAsync(dockerId, new ContainerRemoveParameters { Force = true }, cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
        }
        catch (Exception e) when (e is DockerApiException or HttpRequestException or IOException or TimeoutException)
        {
            _logger.LogWarning("Could not remove spare {DockerId}: {Error}", dockerId, e.Message);
        }
    }
}
