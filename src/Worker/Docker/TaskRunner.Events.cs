using System.Globalization;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;

namespace Serverless.Worker.Docker;

/// <summary>Docker's event stream and the reconciliation after it was interrupted.</summary>
public sealed partial class TaskRunner
{
    /// <summary>
    /// Applies one Docker event of this instance's containers: <c>die</c> (exit code), <c>oom</c>,
    /// <c>destroy</c>, <c>health_status: …</c>. A <c>start</c> is learnt from the start call's own
    /// inspect instead, which also carries the ports Docker bound. The <c>start</c> of a container
    /// with this instance's labels that no task here owns is a stranger (<see cref="RemoveStrangerAsync"/>);
    /// other events of containers the worker does not manage are ignored. Safe to call twice with the same event.
    /// </summary>
    public void OnDockerEvent(Message message)
    {
        if (message.Type != "container" || message.Actor?.Attributes is not { } attributes) return;
        ManagedTask? task;
        if (!attributes.TryGetValue(DockerLabels.TaskArn, out var taskArn))
        {
            // A spare pause container carries no task: a taken one is its task's, found by id.
            if (!attributes.ContainsKey(SpareLabel) || message.Actor.ID is not { } spareId) return;
            task = SpareOwner(spareId);
            if (task is null)
            {
                OnSpareEvent(spareId, message.Action ?? message.Status ?? "");
                return;
            }
            taskArn = task.TaskArn;
        }
        else if ((task = Existing(taskArn)) is null)
        {
            if ((message.Action ?? message.Status) == "start" && message.Actor.ID is { } strangerId)
                _ = RemoveStrangerAsync(strangerId, taskArn, _shutdown.Token);
            return;
        }
        if (!attributes.TryGetValue(DockerLabels.ContainerName, out var name) || task.Container(name) is not { } container) return;
        var action = message.Action ?? message.Status ?? "";

        bool changed;
        lock (task.Gate)
        {
            // Only the container the worker knows by id: an adopted one is read by inspect first.
            if (container.DockerId != message.Actor.ID) return;
            changed = action switch
            {
                "die" => container.MarkStopped(ExitCode(attributes), null),
                "destroy" => container.MarkStopped(null, ContainerVanished),
                "oom" => SetOutOfMemory(container),
                _ when action.StartsWith("health_status", StringComparison.Ordinal)
                    => Health(action[(action.IndexOf(':') + 1)..].Trim()) is { } health && container.SetHealth(health),
                _ => false,
            };
        }
        if (changed)
        {
            _logger.LogDebug("{ContainerName} of {TaskArn}: {Action}", name, taskArn, action);
            OnContainersChanged(task);
        }
    }

    /// <summary>
    /// A container started with this instance's labels that no task of this worker owns: made
    /// behind the worker's back, or left from a task the control plane no longer has. A worker
    /// admits a task before it creates its containers, so this is never one of its own starts. It is
    /// removed when no task row places it on this instance; a task that is placed here, whatever its
    /// state, is left to the paths that own it (its Start or Stop, or adoption after a restart).
    /// </summary>
    private async Task RemoveStrangerAsync(string dockerId, string taskArn, CancellationToken cancellationToken)
    {
        try
        {
            var row = await _taskStore.FindAsync(_identity.Cluster, TaskIdOf(taskArn), cancellationToken);
            if (row is not null && row.ContainerInstanceId == _identity.InstanceId) return;
            if (Existing(taskArn) is not null) return;
            _logger.LogWarning("Removing container {DockerId} of {TaskArn}: no task on this instance owns it", dockerId, taskArn);
            await _docker.Containers.RemoveContainerAsync(dockerId, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning(e, "Could not remove stranger container {DockerId} of {TaskArn}", dockerId, taskArn);
        }
    }

    private static bool SetOutOfMemory(ManagedContainer container)
    {
        container.OutOfMemory = true;
        return false;
    }

    private static int? ExitCode(IDictionary<string, string> attributes)
        => attributes.TryGetValue("exitCode", out var text) && int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var code)
            ? code
            : null;

    /// <summary>
    /// After the event stream was interrupted: one list of this instance's containers brings every
    /// managed container up to date (an exit missed while disconnected, a container removed).
    /// </summary>
    public async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var listed = (await ListInstanceContainersAsync(cancellationToken)).ToDictionary(c => c.ID, StringComparer.Ordinal);
        foreach (var task in Tasks)
        {
            foreach (var container in task.Containers)
            {
                if (container.DockerId is not { } id || container.Status == ContainerKnownStatus.Stopped) continue;
                if (!listed.TryGetValue(id, out var entry))
                {
                    bool vanished;
                    lock (task.Gate) vanished = container.MarkStopped(null, ContainerVanished);
                    if (vanished) OnContainersChanged(task);
                }
                // An exit, or a health change, may have been missed while disconnected.
                else if (entry.State is "exited" or "dead" || (entry.State == "running" && container.Plan.HasHealthCheck))
                {
                    await RefreshAsync(task, container, cancellationToken);
                }
            }
        }
    }

    internal async Task<IList<ContainerListResponse>> ListInstanceContainersAsync(CancellationToken cancellationToken)
        => await _docker.Containers.ListContainersAsync(
            new ContainersListParameters { All = true, Filters = DockerLabels.InstanceFilter(_identity.InstanceId) }, cancellationToken);
}
