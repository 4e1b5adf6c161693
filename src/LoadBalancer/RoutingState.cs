using System.Collections.Concurrent;
using Serverless.Core.LoadBalancing;

namespace Serverless.LoadBalancer;

/// <summary>
/// What the request path reads, all in memory: the routing table (swapped whole on a configuration change),
/// each target's health as this process's checks found it, and since when a target is in slow start. Nothing
/// here touches storage.
/// </summary>
public sealed class RoutingState
{
    private volatile RoutingTable _table = RoutingTable.Empty;
    private readonly ConcurrentDictionary<string, TargetHealthState> _health = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox> _next = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _slowStart = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _failed = new(StringComparer.Ordinal);

    public RoutingTable Table => _table;

    public void Publish(RoutingTable table) => _table = table;

    /// <summary>One registration of a target: registering it again starts its health over.</summary>
    public static string Key(RouteTargetGroup group, TargetRow target) => $"{group.Id}|{target.Id}|{target.Port}|{target.RegisteredAt.UtcTicks}";

    public TargetHealthState? Health(string key) => _health.GetValueOrDefault(key);

    public void SetHealth(string key, TargetHealthState state) => _health[key] = state;

    /// <summary>Forgets targets no longer registered (a deregistered target leaves slow start, as on ALB).</summary>
    public void Retain(IReadOnlySet<string> keys)
    {
        foreach (var key in _health.Keys)
        {
            if (!keys.Contains(key)) _health.TryRemove(key, out _);
        }
        foreach (var key in _slowStart.Keys)
        {
            if (!keys.Contains(key)) _slowStart.TryRemove(key, out _);
        }
        foreach (var key in _failed.Keys)
        {
            if (!keys.Contains(key)) _failed.TryRemove(key, out _);
        }
    }

    /// <summary>
    /// A target's health went from <paramref name="before"/> to <paramref name="after"/> at <paramref name="now"/>: one
    /// that turned healthy enters slow start when ALB's rule says so (<see cref="TargetSelection.EntersSlowStart"/>);
    /// one that is no longer healthy leaves it (and enters again when healthy again).
    /// </summary>
    public void NoteHealthChange(RouteTargetGroup group, TargetRow target, string? before, string after, DateTimeOffset now)
    {
        var key = Key(group, target);
        if (after != "healthy")
        {
            _slowStart.TryRemove(key, out _);
            if (after == "unhealthy") _failed[key] = 0;
            return;
        }
        if (before == "healthy") return;
        var anotherTakesFullShare = group.Targets.Any(t => t.DrainingSince is null && Key(group, t) != key && HealthOf(group, t) == "healthy" && Share(group, t, now) >= 1);
        // Serving before: the stored verdict (another data plane's, or ours before a restart) says healthy and this
        // process has not seen it fail since; such a target's first healthy verdict here is not a new one.
        var wasServing = target.Health == "healthy" && !_failed.ContainsKey(key);
        if (TargetSelection.EntersSlowStart(group.SlowStartSeconds, anotherTakesFullShare, wasServing))
            _slowStart[key] = now;
    }

    /// <summary>The share of new requests <paramref name="target"/> takes at <paramref name="now"/>: 1, or less while it is in slow start.</summary>
    public double Share(RouteTargetGroup group, TargetRow target, DateTimeOffset now)
        => group.SlowStartSeconds > 0 && _slowStart.TryGetValue(Key(group, target), out var since)
            ? TargetSelection.Share(since, group.SlowStartSeconds, now)
            : 1;

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
