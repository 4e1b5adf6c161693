using Microsoft.Extensions.Logging;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Services;
using Serverless.Core.Tasks;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// What no event announces: a worker that stopped heartbeating. Its instance already shows
/// <c>agentConnected: false</c> and gets no new tasks; after <see cref="EcsOptions.AgentLostAfterSeconds"/>
/// its tasks are recorded STOPPED (their reservations freed, their services told), and a Stop is
/// queued for each, so a worker that comes back stops those containers: no slot runs twice.
/// The tasks a forced DeregisterContainerInstance left on an INACTIVE instance are orphans (ECS no
/// longer accounts for them, and their services start other copies): they go the same way at once.
/// </summary>
public sealed class InstanceHealthSweep(
    ClusterStore clusters,
    ContainerInstanceStore instances,
    TaskStore tasks,
    TaskLauncher launcher,
    ReconcileQueue reconcile,
    EcsOptions options,
    TimeProvider time,
    ILogger<InstanceHealthSweep> logger)
{
    public Task SweepAsync(CancellationToken cancellationToken) => SweepAsync(null, cancellationToken);

    /// <summary>Every ACTIVE cluster; with <paramref name="shared"/>, on the reads the minute's other sweep makes too.</summary>
    public Task SweepAsync(SweepReads.Round? shared, CancellationToken cancellationToken)
        => SweepReads.ForEachActiveClusterAsync(clusters, shared, SweepClusterAsync, cancellationToken);

    public Task SweepClusterAsync(string cluster, CancellationToken cancellationToken) => SweepClusterAsync(cluster, null, cancellationToken);

    private async Task SweepClusterAsync(string cluster, SweepReads.Round? shared, CancellationToken cancellationToken)
    {
        if (shared is not null)
        {
            var (hosts, readAt) = await shared.InstancesAsync(cluster, cancellationToken);
            await SweepClusterAsync(cluster, hosts, readAt, cancellationToken);
            return;
        }
        var now = time.GetUtcNow();
        await SweepClusterAsync(cluster, await instances.ListAsync(cluster, cancellationToken), now, cancellationToken);
    }

    /// <param name="hosts">The cluster's instances.</param>
    /// <param name="now">When <paramref name="hosts"/> were read: an agent is lost when silent that long before then.</param>
    private async Task SweepClusterAsync(string cluster, IReadOnlyList<ContainerInstanceRecord> hosts, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var lostAfter = TimeSpan.FromSeconds(options.AgentLostAfterSeconds);
        foreach (var instance in hosts)
        {
            if (instance.Reservations.Count == 0) continue;
            var orphaned = instance.Status == ContainerInstanceRecord.Inactive;
            if (!orphaned && (!instance.IsRegistered || now - instance.LastHeartbeat < lostAfter)) continue;
            var reason = orphaned
                ? $"Task stopped because its container instance ({instance.Id}) was deregistered."
                : $"Task stopped because the agent on its container instance ({instance.Id}) has not reported for more than {options.AgentLostAfterSeconds} seconds.";
            var services = new HashSet<string>(StringComparer.Ordinal);
            foreach (var task in await tasks.ListForInstanceAsync(cluster, instance.Id, cancellationToken))
            {
                var stopped = await tasks.UpdateAsync(cluster, task.Id, t => t.RecordStopped("ServiceSchedulerInitiated", reason, now), cancellationToken);
                if (stopped is null) continue;
                await launcher.SendStopAsync(stopped, cancellationToken);
                await instances.ReleaseAsync(cluster, instance.Id, task.Id, cancellationToken);
                if (task.ServiceName is { } service) services.Add(service);
                logger.LogWarning("Stopped {TaskId} on {State} instance {InstanceId} in {Cluster}", task.Id, orphaned ? "deregistered" : "lost", instance.Id, cluster);
            }
            // Reservations whose task rows are already STOPPED (or never written) are freed too.
            foreach (var reservation in instance.Reservations)
                await instances.ReleaseAsync(cluster, instance.Id, reservation.TaskId, cancellationToken);
            foreach (var service in services)
                await reconcile.EnqueueAsync(new ServiceKey(cluster, service), null, cancellationToken);
        }
    }
}
