using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Capacity;

/// <summary>A capacity provider's <c>managedScaling</c>, with ECS's defaults.</summary>
public sealed record ManagedScalingSettings(bool Enabled, int TargetCapacity, int MinimumScalingStepSize, int MaximumScalingStepSize, int InstanceWarmupPeriod)
{
    public static ManagedScalingSettings Of(System.Text.Json.Nodes.JsonObject autoScalingGroupProvider)
    {
        var m = autoScalingGroupProvider["managedScaling"] as System.Text.Json.Nodes.JsonObject;
        int Int(string name, int fallback) => m?[name] is { } v ? v.GetValue<int>() : fallback;
        return new(m?["status"]?.GetValue<string>() == "ENABLED", Int("targetCapacity", 100), Int("minimumScalingStepSize", 1),
            Int("maximumScalingStepSize", 10000), Int("instanceWarmupPeriod", 300));
    }
}

/// <summary>What managed scaling sees of one capacity provider in one cluster.</summary>
public sealed record PoolView
{
    /// <summary>The provider's registered (ACTIVE or DRAINING) container instances.</summary>
    public required IReadOnlyList<ContainerInstanceRecord> Instances { get; init; }
    /// <summary>The cpu units and MiB of each task waiting for room in this provider.</summary>
    public required IReadOnlyList<(int Cpu, int Memory)> Waiting { get; init; }
    /// <summary>Task groups of DAEMON services: their tasks do not make an instance busy.</summary>
    public IReadOnlySet<string> DaemonGroups { get; init; } = new HashSet<string>();
    /// <summary>One instance's cpu units and MiB (0: unknown, then one waiting task is counted per instance).</summary>
    public int InstanceCpu { get; init; }
    public int InstanceMemory { get; init; }
}

/// <summary>The <c>CapacityProviderReservation</c> inputs and value: M instances needed, N there.</summary>
public sealed record CapacityReservation(int Needed, int Present, double Value);

/// <summary>What managed scaling asks of the pool: a new desired size, and which instances go on scale-in.</summary>
public sealed record ScalingStep(int DesiredCapacity, IReadOnlyList<string> Terminate, string Why);

/// <summary>
/// ECS cluster auto scaling as pure decisions. The metric is AWS's: N is the number of instances in
/// the pool; M is the number needed: more than N when tasks wait in PROVISIONING (N plus the
/// instances their sizes need, packed first-fit into the room left on the present instances and
/// then into empty instances of the pool's size), otherwise the instances running at least one
/// non-daemon task. <c>CapacityProviderReservation</c> = M / N × 100 (100 when both are 0, 200 when
/// only N is). Target tracking then wants ceil(M × 100 / targetCapacity) instances.
/// </summary>
public static class ManagedScaling
{
    public static bool IsBusy(ContainerInstanceRecord instance, IReadOnlySet<string> daemonGroups)
        => instance.Reservations.Any(r => r.Group is null || !daemonGroups.Contains(r.Group));

    public static CapacityReservation Measure(PoolView pool)
    {
        var present = pool.Instances.Count;
        var extra = ExtraInstances(pool);
        var needed = extra > 0 ? present + extra : pool.Instances.Count(i => IsBusy(i, pool.DaemonGroups));
        var value = present == 0 ? (needed > 0 ? 200 : 100) : 100.0 * needed / present;
        return new CapacityReservation(needed, present, value);
    }

    /// <summary>How many more instances the waiting tasks need (first-fit, largest first).</summary>
    public static int ExtraInstances(PoolView pool)
    {
        if (pool.Waiting.Count == 0) return 0;
        if (pool.InstanceCpu <= 0 || pool.InstanceMemory <= 0) return pool.Waiting.Count;
        var room = pool.Instances.Where(i => i.Status == ContainerInstanceRecord.Active)
            .Select(i => (Cpu: i.RemainingCpu, Memory: i.RemainingMemory)).ToList();
        var present = room.Count;
        foreach (var (cpu, memory) in pool.Waiting.OrderByDescending(w => w.Memory).ThenByDescending(w => w.Cpu))
        {
            var at = room.FindIndex(r => r.Cpu >= cpu && r.Memory >= memory);
            if (at < 0)
            {
                room.Add((pool.InstanceCpu, pool.InstanceMemory));   // a task bigger than an instance still asks for one
                at = room.Count - 1;
            }
            room[at] = (room[at].Cpu - cpu, room[at].Memory - memory);
        }
        return room.Count - present;
    }

    /// <summary>
    /// The next step for the pool, or null to leave it. Scale-out: at least minimumScalingStepSize,
    /// at most maximumScalingStepSize more, within MaxSize, and not again while the instances of the
    /// last scale-out are still warming up and not all there. Scale-in: only after the pool has
    /// wanted fewer instances for <paramref name="scaleInAfter"/>, at most maximumScalingStepSize at
    /// once, never below MinSize, and only the pool's own workers with no non-daemon task (with managed
    /// termination protection; without it, busy ones after the idle ones).
    /// </summary>
    public static ScalingStep? Decide(
        PoolView view, CapacityReservation reservation, ManagedScalingSettings settings, WorkerPoolRecord pool, bool terminationProtection,
        DateTimeOffset now, TimeSpan scaleInAfter)
    {
        var want = (int)Math.Ceiling(reservation.Needed * 100.0 / Math.Clamp(settings.TargetCapacity, 1, 100));
        var current = pool.DesiredCapacity;
        if (want > current)
        {
            var warming = pool.LastScaleOutAt is { } at && now - at < TimeSpan.FromSeconds(settings.InstanceWarmupPeriod)
                && reservation.Present < current;
            if (warming) return null;
            var step = Math.Clamp(want - current, Math.Max(1, settings.MinimumScalingStepSize), Math.Max(1, settings.MaximumScalingStepSize));
            var desired = Math.Min(current + step, pool.MaxSize);
            return desired > current ? new ScalingStep(desired, [], $"CapacityProviderReservation {reservation.Value:0.#} > target {settings.TargetCapacity}") : null;
        }
        if (want >= current || reservation.Present < current) return null;   // steady, or instances still coming
        if (pool.LowSince is not { } low || now - low < scaleInAfter) return null;

        var count = Math.Min(Math.Min(current - want, Math.Max(1, settings.MaximumScalingStepSize)), current - pool.MinSize);
        if (count <= 0) return null;
        // Only the pool's own workers: an instance registered to the provider by hand is not the pool's to terminate.
        var candidates = view.Instances.Where(i => pool.Running.Contains(i.Id) && !pool.Terminate.Contains(i.Id)).ToList();
        var idle = candidates.Where(i => !IsBusy(i, view.DaemonGroups))
            .OrderByDescending(i => i.Status == ContainerInstanceRecord.Draining).ThenByDescending(i => i.RegisteredAt).ThenBy(i => i.Id, StringComparer.Ordinal);
        var busy = terminationProtection ? Enumerable.Empty<ContainerInstanceRecord>() : candidates.Where(i => IsBusy(i, view.DaemonGroups))
            .OrderBy(i => i.Reservations.Count).ThenBy(i => i.Id, StringComparer.Ordinal);
        var chosen = idle.Concat(busy).Take(count).Select(i => i.Id).ToList();
        return chosen.Count == 0 ? null
            : new ScalingStep(current - chosen.Count, chosen, $"CapacityProviderReservation {reservation.Value:0.#} < target {settings.TargetCapacity}");
    }

    /// <summary>Whether the pool wants fewer instances than it has (the start of a low that scale-in waits out).</summary>
    public static bool IsLow(CapacityReservation reservation, ManagedScalingSettings settings, WorkerPoolRecord pool)
        => (int)Math.Ceiling(reservation.Needed * 100.0 / Math.Clamp(settings.TargetCapacity, 1, 100)) < pool.DesiredCapacity;
}
