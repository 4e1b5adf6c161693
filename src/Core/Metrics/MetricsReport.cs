namespace Serverless.Core.Metrics;

/// <summary>
/// One worker's measurements of one period (queue <see cref="Queue"/>): one message per instance per
/// period, never one per task. The worker has already summed its tasks per service with
/// <see cref="EcsUtilization"/>; the control plane stores what it is sent. Small, versioned JSON.
/// </summary>
public sealed record MetricsReport
{
    public const string Queue = "metrics";

    public int V { get; init; } = 1;
    public required string Cluster { get; init; }
    /// <summary>The container instance id: with <see cref="Start"/> it names the report, so a duplicate overwrites itself.</summary>
    public required string InstanceId { get; init; }
    /// <summary>Start of the period (UTC, aligned to <see cref="Seconds"/>).</summary>
    public required DateTimeOffset Start { get; init; }
    public required int Seconds { get; init; }
    /// <summary>The instance's registered CPU units and memory MiB, tasks' reservations and use on it.</summary>
    public required InstanceLoad Instance { get; init; }
    /// <summary>Per service (name without <c>service:</c>), the sums over its tasks on this instance.</summary>
    public required IReadOnlyList<ServiceLoad> Services { get; init; }
}

/// <summary>What an instance offers and what its tasks reserve and use (CPU units, MiB).</summary>
public sealed record InstanceLoad(double CpuRegistered, double MemoryRegistered, double CpuReserved, double MemoryReserved, double CpuUsed, double MemoryUsed);

/// <summary>One service's tasks on one instance in one period: their CPU and memory as <see cref="Ratio"/>s.</summary>
public sealed record ServiceLoad(string Service, Ratio? Cpu, Ratio? Memory);

/// <summary>
/// A utilization's parts: <see cref="Used"/> over <see cref="Capacity"/> summed over <see cref="Count"/>
/// samples, and the lowest and highest single sample in percent. Ratios add: the sum of two is the
/// utilization of both together, which is how ECS computes a service's Average over its tasks.
/// </summary>
public sealed record Ratio(double Used, double Capacity, double Min, double Max, int Count)
{
    public double Percent => Capacity > 0 ? Used * 100 / Capacity : 0;

    public static Ratio Of(double used, double capacity)
    {
        var percent = capacity > 0 ? used * 100 / capacity : 0;
        return new Ratio(used, capacity, percent, percent, 1);
    }

    public Ratio Add(Ratio other)
        => new(Used + other.Used, Capacity + other.Capacity, Math.Min(Min, other.Min), Math.Max(Max, other.Max), Count + other.Count);
}
