using Serverless.Core.Services;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// The periodic resync: a reconcile for every ACTIVE or DRAINING service, so a lost message only
/// delays a service, never strands it (controller-runtime's SyncPeriod). And the same for one
/// cluster when its capacity changes (an instance registers, drains, returns or leaves), since
/// that changes what every service of the cluster should do (DAEMON tasks, placement, draining).
/// </summary>
public sealed class ServiceResync(ServiceStore services, ReconcileQueue reconcile)
{
    private const int Page = 100;

    /// <summary>Enqueues a reconcile for every ACTIVE or DRAINING service of <paramref name="cluster"/> (one partition range per page).</summary>
    public async Task<int> ResyncClusterAsync(string cluster, CancellationToken cancellationToken)
    {
        var count = 0;
        string? after = null;
        while (true)
        {
            var (page, more) = await services.ListAsync(cluster, after, Page, null, null, cancellationToken);
            // A page at once: this runs inside Register/DeregisterContainerInstance and UpdateContainerInstancesState.
            await Task.WhenAll(page.Select(s => reconcile.EnqueueAsync(new ServiceKey(s.Cluster, s.Name), null, cancellationToken)));
            count += page.Count;
            if (!more || page.Count == 0) return count;
            after = page[^1].Name;
        }
    }

    public async Task<int> ResyncAsync(CancellationToken cancellationToken)
    {
        var count = 0;
        await foreach (var service in services.ListAllActiveAsync(cancellationToken))
        {
            await reconcile.EnqueueAsync(new ServiceKey(service.Cluster, service.Name), null, cancellationToken);
            count++;
        }
        return count;
    }
}
