using Serverless.Core.LoadBalancing;
using Serverless.Core.Storage;

namespace Serverless.LoadBalancer;

/// <summary>
/// Keeps the routing table current: one point read of the configuration's version row when woken (every
/// ELBv2 change and target change wakes the registered data planes once committed, see
/// <see cref="LoadBalancingStore"/>) or when the fallback refresh is due, and only when it moved a read of the
/// configuration partition and of the forwarded-to target groups' targets. Then the listener servers follow
/// the table's ports. Storage being away leaves the last table serving.
/// </summary>
public sealed class ConfigWatcher(
    LoadBalancingStore store, RoutingState state, ListenerServers servers, QueueWake wake, DataPlaneOptions options, TimeProvider time, ILogger<ConfigWatcher> logger)
    : BackgroundService
{
    private string? _registered;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Listen and register before the first read, so no change committed after that read goes unannounced.
        var signal = wake.Signal(LoadBalancingStore.WakeName);
        var endpoint = wake.Listen(options.WakePort, options.WakeAddress);
        long? registeredAt = null;
        Azure.ETag? seen = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (endpoint is not null && (registeredAt is null || time.GetElapsedTime(registeredAt.Value) >= LoadBalancingStore.RegistrationRenewal))
                {
                    await store.RegisterDataPlaneAsync(endpoint, stoppingToken);
                    _registered = endpoint;
                    registeredAt = time.GetTimestamp();
                }
                var version = await store.VersionAsync(stoppingToken);
                if (version is null || version != seen)
                {
                    state.Publish(await LoadAsync(stoppingToken));
                    seen = version;
                }
                await servers.SyncAsync(state.Table.Listeners.Select(l => l.Port).ToHashSet(), stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("Configuration refresh failed, serving the last one: {Message}", e.Message);
            }
            try
            {
                await signal.WaitAsync(TimeSpan.FromMilliseconds(options.RefreshMilliseconds), time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        await servers.DisposeAsync();
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_registered is null) return;
        try
        {
            await store.UnregisterDataPlaneAsync(_registered, cancellationToken);
        }
        catch (Exception e) when (e is Azure.RequestFailedException or AggregateException or OperationCanceledException)
        {
            // AggregateException: the storage client's retries all failed (storage is down, e.g. stopped first).
            // It lapses by itself once it is not renewed.
            logger.LogDebug("Wake registration {Endpoint} not removed: {Message}", _registered, e.Message);
        }
    }

    private async Task<RoutingTable> LoadAsync(CancellationToken cancellationToken)
    {
        var config = await store.ListConfigAsync(cancellationToken);
        var forwarded = config.Where(r => r.RowKey.StartsWith("rule|", StringComparison.Ordinal))
            .SelectMany(r => r.Doc[ElbDocs.TargetGroupArns]?.AsArray().Select(a => a!.GetValue<string>()) ?? [])
            .ToHashSet(StringComparer.Ordinal);
        var targets = new Dictionary<string, IReadOnlyList<TargetRow>>(StringComparer.Ordinal);
        foreach (var group in config.Where(r => r.RowKey.StartsWith("tg|", StringComparison.Ordinal) && forwarded.Contains(r.Doc["TargetGroupArn"]!.GetValue<string>())))
        {
            var id = group.Doc[ElbDocs.Id]!.GetValue<string>();
            targets[id] = await store.ListTargetsAsync(id, cancellationToken);
        }
        var table = Routing.Build(config, id => targets.GetValueOrDefault(id) ?? []);
        logger.LogInformation("Configuration loaded: {Listeners} listeners, {TargetGroups} target groups in use", table.Listeners.Count, targets.Count);
        return table;
    }
}
