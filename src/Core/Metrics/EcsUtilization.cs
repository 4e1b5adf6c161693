namespace Serverless.Core.Metrics;

/// <summary>One task's measurement over a period: CPU units and MiB used (averaged), and what its definition reserves.</summary>
/// <param name="Service">The service name (the task's group without <c>service:</c>), or null for a standalone task.</param>
public sealed record TaskUsage(string TaskArn, string? Service, double CpuUsed, double MemoryUsed, int CpuReserved, int MemoryReserved);

/// <summary>
/// ECS's utilization formulas (the "Amazon ECS service utilization metrics" and "CloudWatch metrics" pages):
/// <list type="bullet">
/// <item>service CPUUtilization = CPU units used by the service's tasks × 100 / (task definition CPU × tasks);
/// MemoryUtilization likewise with MiB; Minimum and Maximum are single tasks' utilizations;</item>
/// <item>cluster CPUReservation / MemoryReservation = what tasks reserve × 100 / what instances registered;
/// cluster CPUUtilization / MemoryUtilization = what tasks use × 100 / what instances registered.</item>
/// </list>
/// A task definition without a task-level size reserves the sum of its containers' (see
/// <see cref="Tasks.TaskSizing"/>); a service whose tasks reserve no CPU (or memory) has no utilization
/// of it, since there is nothing to divide by.
/// </summary>
public static class EcsUtilization
{
    public const string Namespace = "AWS/ECS";
    public const string CpuUtilization = "CPUUtilization";
    public const string MemoryUtilization = "MemoryUtilization";
    public const string CpuReservation = "CPUReservation";
    public const string MemoryReservation = "MemoryReservation";

    public static readonly IReadOnlyList<string> ServiceMetrics = [CpuUtilization, MemoryUtilization];
    public static readonly IReadOnlyList<string> ClusterMetrics = [CpuReservation, CpuUtilization, MemoryReservation, MemoryUtilization];

    /// <summary>Memory as ECS counts it: usage minus the page cache (cgroup v1 <c>cache</c>, v2 <c>inactive_file</c>), in MiB.</summary>
    public static double MemoryMiB(ulong usageBytes, ulong cacheBytes)
        => (usageBytes > cacheBytes ? usageBytes - cacheBytes : 0) / (1024.0 * 1024.0);

    /// <summary>
    /// CPU units used between two readings of a container's cumulative CPU time: 1024 units are one
    /// core busy for the whole interval. Null when there is no interval, or the counter went back (a restart).
    /// </summary>
    public static double? CpuUnits(ulong previousCpuNanoseconds, DateTimeOffset previousRead, ulong cpuNanoseconds, DateTimeOffset read)
    {
        var interval = (read - previousRead).TotalNanoseconds;
        if (interval <= 0 || cpuNanoseconds < previousCpuNanoseconds) return null;
        return (cpuNanoseconds - previousCpuNanoseconds) / interval * 1024;
    }

    /// <summary>The services' sums over the tasks of one instance, in name order.</summary>
    public static IReadOnlyList<ServiceLoad> Services(IEnumerable<TaskUsage> tasks)
        => [.. tasks.Where(t => t.Service is not null)
            .GroupBy(t => t.Service!, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new ServiceLoad(g.Key,
                Sum(g.Where(t => t.CpuReserved > 0).Select(t => Ratio.Of(t.CpuUsed, t.CpuReserved))),
                Sum(g.Where(t => t.MemoryReserved > 0).Select(t => Ratio.Of(t.MemoryUsed, t.MemoryReserved)))))];

    /// <summary>The instance's totals: every task counts, standalone ones too.</summary>
    public static InstanceLoad Instance(IReadOnlyCollection<TaskUsage> tasks, double cpuRegistered, double memoryRegistered)
        => new(cpuRegistered, memoryRegistered,
            tasks.Sum(t => (double)t.CpuReserved), tasks.Sum(t => (double)t.MemoryReserved),
            tasks.Sum(t => t.CpuUsed), tasks.Sum(t => t.MemoryUsed));

    /// <summary>An instance's cluster metrics: one sample each, a share of what it registered.</summary>
    public static IReadOnlyDictionary<string, Ratio> Cluster(InstanceLoad instance) => new Dictionary<string, Ratio>(StringComparer.Ordinal)
    {
        [CpuReservation] = Ratio.Of(instance.CpuReserved, instance.CpuRegistered),
        [CpuUtilization] = Ratio.Of(instance.CpuUsed, instance.CpuRegistered),
        [MemoryReservation] = Ratio.Of(instance.MemoryReserved, instance.MemoryRegistered),
        [MemoryUtilization] = Ratio.Of(instance.MemoryUsed, instance.MemoryRegistered),
    };

    /// <summary>A service's metrics on one instance; a resource its tasks do not reserve is left out.</summary>
    public static IReadOnlyDictionary<string, Ratio> Service(ServiceLoad service)
    {
        var metrics = new Dictionary<string, Ratio>(StringComparer.Ordinal);
        if (service.Cpu is { } cpu) metrics[CpuUtilization] = cpu;
        if (service.Memory is { } memory) metrics[MemoryUtilization] = memory;
        return metrics;
    }

    private static Ratio? Sum(IEnumerable<Ratio> ratios)
    {
        Ratio? total = null;
        foreach (var ratio in ratios) total = total is null ? ratio : total.Add(ratio);
        return total;
    }
}
