using Serverless.Core.Services;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// The periodic resync: a reconcile for every ACTIVE or DRAINING service, so a lost message only
/// delays a service, never strands it (controller-runtime's SyncPeriod).
/// </summary>
public sealed class ServiceResync(ServiceStore services, ReconcileQueue reconcile)
{
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
