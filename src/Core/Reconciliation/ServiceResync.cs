using Serverless.Core.Services;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// The periodic resync: a reconcile for every ACTIVE or DRAINING service, so a lost message only
/// delays a service, never strands it (controller-runtime's SyncPeriod). A service whose row shows it
/// steady (<see cref="ServiceRecord.IsSteady"/>) is looked at once per
/// <see cref="EcsOptions.SteadyServiceResyncMinutes"/>, in a minute chosen by its name so the looks spread
/// out; any other every minute. And the same for one
/// cluster when its capacity changes (an instance registers, drains, returns or leaves), since
/// that changes what every service of the cluster should do (DAEMON tasks, placement, draining).
/// </summary>
public sealed class ServiceResync(ServiceStore services, ReconcileQueue reconcile, TimeProvider? time = null, EcsOptions? options = null)
{
    private const int Page = 100;

    /// <summary>
    /// Enqueues a reconcile for every ACTIVE or DRAINING service of <paramref name="cluster"/> (one
    /// partition range per page). With <paramref name="newCapacity"/> (an instance registered), only
    /// for the services new room can change: DAEMON services (a task on every instance) and those
    /// not steady (waiting for room, or mid-rollout); a steady REPLICA service places nothing on a
    /// new instance, and a cluster of many services would otherwise cost a reconcile of each per
    /// registering worker (the minute's resync still looks at every service).
    /// </summary>
    public async Task<int> ResyncClusterAsync(string cluster, CancellationToken cancellationToken, bool newCapacity = false)
    {
        var count = 0;
        string? after = null;
        while (true)
        {
            var (listed, more) = await services.ListAsync(cluster, after, Page, null, null, cancellationToken);
            var page = newCapacity ? listed.Where(s => !s.Steady || s.SchedulingStrategy == ServiceRecord.Daemon).ToList() : listed;
            // A page at once: this runs inside Register/DeregisterContainerInstance and UpdateContainerInstancesState.
            await Task.WhenAll(page.Select(s => reconcile.EnqueueAsync(new ServiceKey(s.Cluster, s.Name), null, cancellationToken)));
            count += page.Count;
            if (!more || listed.Count == 0) return count;
            after = listed[^1].Name;
        }
    }

    public async Task<int> ResyncAsync(CancellationToken cancellationToken)
    {
        var count = 0;
        var every = Math.Max(1, options?.SteadyServiceResyncMinutes ?? 1);
        var minute = (time ?? TimeProvider.System).GetUtcNow().ToUnixTimeSeconds() / 60;
        await foreach (var service in services.ListAllActiveAsync(cancellationToken))
        {
            if (service.Steady && !IsTurnOf(service, minute, every)) continue;
            await reconcile.EnqueueAsync(new ServiceKey(service.Cluster, service.Name), null, cancellationToken);
            count++;
        }
        return count;
    }

    /// <summary>Whether minute <paramref name="minute"/> is the one of every <paramref name="every"/> in which a steady service is looked at.</summary>
    internal static bool IsTurnOf(ServiceSummary service, long minute, int every)
    {
        // A stable hash (string.GetHashCode differs per process): every control plane picks the same minute.
        var digest = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(service.Cluster + "|" + service.Name));
        var offset = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(digest) % (uint)every;
        return (minute - offset) % every == 0;
    }
}
