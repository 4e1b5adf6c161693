using Serverless.Core.LoadBalancing;

namespace Serverless.LoadBalancer;

/// <summary>
/// Keeps the routing table current: one point read of the configuration's version row per refresh, and only
/// when it moved a read of the configuration partition and of the forwarded-to target groups' targets. Then
/// the listener servers follow the table's ports. Storage being away leaves the last table serving.
/// </summary>
public sealed class ConfigWatcher(LoadBalancingStore store, RoutingState state, ListenerServers servers, DataPlaneOptions options, ILogger<ConfigWatcher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Azure.ETag? seen = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
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
                await Task.Delay(options.RefreshMilliseconds, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        await servers.DisposeAsync();
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
