using System.Collections.Concurrent;
using System.Net;
using Serverless.Core.LoadBalancing;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Storage;

namespace Serverless.LoadBalancer;

/// <summary>
/// Active health checks with each target group's settings (path, port, interval, timeout, thresholds,
/// matcher) for every target of a group in use that is not draining. A change of state is what is written
/// back to storage (DescribeTargetHealth reads it); the routing uses the in-memory verdict at once. A target an ECS
/// service registered turning healthy or unhealthy also asks that service to reconcile (one queue message): its
/// rollout counts the target once healthy, and a target that fails its checks gets its task replaced.
/// </summary>
public sealed class HealthChecker(
    RoutingState state, LoadBalancingStore store, ReconcileQueue reconcile, QueueWake wake, DataPlaneOptions options, TimeProvider time, ILogger<HealthChecker> logger) : BackgroundService
{
    private readonly HttpClient _client = new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.Zero });
    private readonly ConcurrentDictionary<string, DateTimeOffset> _due = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _running = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var table = state.Table;
            var live = new HashSet<string>(StringComparer.Ordinal);
            var now = time.GetUtcNow();
            foreach (var group in table.TargetGroups.Values.Where(g => g.HealthCheckEnabled))
            {
                foreach (var target in group.Targets.Where(t => t.DrainingSince is null))
                {
                    var key = RoutingState.Key(group, target);
                    live.Add(key);
                    if (_due.TryGetValue(key, out var due) && due > now) continue;
                    if (!_running.TryAdd(key, 0)) continue;
                    _due[key] = now.AddSeconds(group.IntervalSeconds);
                    _ = CheckAsync(group, target, key, stoppingToken);
                }
            }
            state.Retain(live);
            foreach (var key in _due.Keys.Where(k => !live.Contains(k))) _due.TryRemove(key, out _);
        }
    }

    private async Task CheckAsync(RouteTargetGroup group, TargetRow target, string key, CancellationToken cancellationToken)
    {
        try
        {
            var result = await ProbeAsync(group, target, cancellationToken);
            var before = state.Health(key);
            var after = HealthChecks.Next(before ?? TargetHealthState.Initial, result, group.HealthyThreshold, group.UnhealthyThreshold);
            state.SetHealth(key, after);
            if (before?.State != after.State) state.NoteHealthChange(group, target, before?.State, after.State, time.GetUtcNow());
            if (before is null || before.State != after.State || before.Reason != after.Reason)
            {
                logger.LogInformation("Target {Target}:{Port} of {TargetGroupArn} is {State} {Reason}", target.Id, target.Port, group.Arn, after.State, after.Reason);
                await store.WriteHealthAsync(group.Id, target.Id, target.Port, after.State, after.Reason, after.Description, cancellationToken);
                if (target.Service is { } service && (before?.State ?? TargetHealthState.Initial.State) != after.State && service.Split('/', 2) is [var cluster, var name])
                {
                    await reconcile.EnqueueAsync(new ServiceKey(cluster, name), null, cancellationToken);
                    wake.Send(target.ServiceWake, ReconcileQueue.QueueName);
                }
            }
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("Health of {Target}:{Port} not recorded: {Message}", target.Id, target.Port, e.Message);
        }
        finally
        {
            _running.TryRemove(key, out _);
        }
    }

    private async Task<HealthCheckResult> ProbeAsync(RouteTargetGroup group, TargetRow target, CancellationToken cancellationToken)
    {
        var address = Routing.Address(group, target, options.InstanceAddress);
        var port = group.HealthCheckPort == "traffic-port" ? target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) : group.HealthCheckPort;
        var host = IPAddress.TryParse(address, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(group.TimeoutSeconds));
        try
        {
            using var response = await _client.GetAsync($"http://{host}:{port}{group.HealthCheckPath}", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            return ElbRules.ParseMatcher(group.Matcher)?.Invoke(status) == true ? HealthCheckResult.Pass : HealthCheckResult.Mismatch(status);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Timeout;
        }
        catch (HttpRequestException)
        {
            return HealthCheckResult.Failed;
        }
    }

    public override void Dispose()
    {
        _client.Dispose();
        base.Dispose();
    }
}
