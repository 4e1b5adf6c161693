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
        TaskLoop? loop;
        if (!attributes.TryGetValue(DockerLabels.TaskArn, out var taskArn))
        {
            // A spare pause container carries no task: a taken one is its task's, found by id.
            if (!attributes.ContainsKey(SpareLabel) || message.Actor.ID is not { } spareId) return;
            loop = SpareOwner(spareId);
            if (loop is null)
            {
                OnSpareEvent(spareId, message.Action ?? message.Status ?? "");
                return;
            }
        }
        else if ((loop = Existing(taskArn)) is null)
        {
            if ((message.Action ?? message.Status) == "start" && message.Actor.ID is { } strangerId)
                _ = RemoveStrangerAsync(strangerId, taskArn, _shutdown.Token);
            return;
        }
        if (!attributes.TryGetValue(DockerLabels.ContainerName, out var name) || loop.Managed.Container(name) is null) return;
        // The task's loop applies it, in the order the events came.
        _ = loop.SendAsync(new TaskInput.DockerEvent(name, message.Actor.ID, message.Action ?? message.Status ?? "", ExitCode(attributes)));
    }

    /// <summary>
    /// A container started with this instance's labels that no task of this worker owns: made
    /// behind the worker's back, or left from a task the control plane no longer has. A worker
    /// admits a task before it creates its containers, so this is never one of its own starts. It is
    /// removed when no task row places it on this instance; a task that is placed here, whatever its
    /// state, is left to the paths that own it (its Start or Stop, or adoption after a restart).
    /// A container that adoption found is adoption's: the event stream starts a second before the
    /// worker does, so it can show the <c>start</c> of a container from before this start, which
    /// adoption is about to take over or stop.
    /// </summary>
    private async Task RemoveStrangerAsync(string dockerId, string taskArn, CancellationToken cancellationToken)
    {
        try
        {
            if ((await _foundAtStart.Task.WaitAsync(cancellationToken)).Contains(dockerId)) return;
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

    private static int? ExitCode(IDictionary<string, string> attributes)
        => attributes.TryGetValue("exitCode", out var text) && int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var code)
            ? code
            : null;

    /// <summary>
    /// After the event stream was interrupted: one list of this instance's containers brings every
    /// managed container up to date (an exit missed while disconnected, a container removed). Only
    /// the containers the tasks knew before the list was asked for are compared with it: one created
    /// while the list was on its way (or a task admitted meanwhile) is not in it, and is not gone.
    /// </summary>
    public async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var known = Loops.Select(l => (Loop: l, l.View)).ToList();
        var listed = (await ListInstanceContainersAsync(cancellationToken)).ToDictionary(c => c.ID, StringComparer.Ordinal);
        foreach (var (loop, before) in known)
        {
            foreach (var container in before.Containers)
            {
                if (container.DockerId is not { } id || container.Status == ContainerKnownStatus.Stopped) continue;
                if (!listed.TryGetValue(id, out var entry))
                {
                    await loop.SendAsync(new TaskInput.Vanished(container.Name));
                }
                // An exit, or a health change, may have been missed while disconnected.
                else if (entry.State is "exited" or "dead" || (entry.State == "running" && container.Plan.HasHealthCheck))
                {
                    await loop.RefreshAsync(container.Name, cancellationToken);
                }
            }
        }
    }

    // The containers adoption found when this worker started: theirs, not strangers.
    private readonly TaskCompletionSource<IReadOnlySet<string>> _foundAtStart = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Adoption's list of the containers from before this start (the first, if it is tried again); strangers are told apart from them.</summary>
    internal async Task<IList<ContainerListResponse>> ListContainersFoundAtStartAsync(CancellationToken cancellationToken)
    {
        var found = await ListInstanceContainersAsync(cancellationToken);
        _foundAtStart.TrySetResult(found.Select(c => c.ID).ToHashSet(StringComparer.Ordinal));
        return found;
    }

    internal async Task<IList<ContainerListResponse>> ListInstanceContainersAsync(CancellationToken cancellationToken)
        => await _docker.Containers.ListContainersAsync(
            new ContainersListParameters { All = true, Filters = DockerLabels.InstanceFilter(_identity.InstanceId) }, cancellationToken);
}
