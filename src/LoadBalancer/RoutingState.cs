using System.Collections.Concurrent;
using Serverless.Core.LoadBalancing;

namespace Serverless.LoadBalancer;

/// <summary>
/// What the request path reads, all in memory: the routing table (swapped whole on a configuration change)
/// and each target's health as this process's checks found it. Nothing here touches storage.
/// </summary>
public sealed class RoutingState
{
    private volatile RoutingTable _table = RoutingTable.Empty;
    private readonly ConcurrentDictionary<string, TargetHealthState> _health = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox> _next = new(StringComparer.Ordinal);

    public RoutingTable Table => _table;

    public void Publish(RoutingTable table) => _table = table;

    /// <summary>One registration of a target: registering it again starts its health over.</summary>
    public static string Key(RouteTargetGroup group, TargetRow target) => $"{group.Id}|{target.Id}|{target.Port}|{target.RegisteredAt.UtcTicks}";

    public TargetHealthState? Health(string key) => _health.GetValueOrDefault(key);

    public void SetHealth(string key, TargetHealthState state) => _health[key] = state;

    /// <summary>Forgets targets no longer registered.</summary>
    public void Retain(IReadOnlySet<string> keys)
    {
        foreach (var key in _health.Keys)
        {
            if (!keys.Contains(key)) _health.TryRemove(key, out _);
        }
    }

    /// <summary>The state routing goes by: this process's verdict, else the stored one (another data plane's, or ours before a restart).</summary>
    public string HealthOf(RouteTargetGroup group, TargetRow target)
        => !group.HealthCheckEnabled ? "healthy" : Health(Key(group, target))?.State ?? target.Health ?? "initial";

    /// <summary>Round robin over a group's eligible targets.</summary>
    public int NextIndex(string groupArn) => Interlocked.Increment(ref _next.GetOrAdd(groupArn, _ => new StrongBox()).Value) & int.MaxValue;

    private sealed class StrongBox
    {
        public int Value;
    }
}
