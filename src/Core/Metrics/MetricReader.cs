namespace Serverless.Core.Metrics;

/// <summary>
/// One metric's datapoints, wherever it is stored: the <c>AWS/ECS</c> partitions, a container instance's
/// share of its cluster's (Container Insights' instance-level metrics), or a custom metric's.
/// </summary>
public sealed class MetricReader(MetricStore store, CustomMetricStore custom)
{
    /// <summary>Container Insights' namespace, whose instance-level metrics are read from the instances' own rows.</summary>
    public const string ContainerInsightsNamespace = "ECS/ContainerInsights";

    /// <summary>
    /// Container Insights' instance metrics (percent of what the instance registered) and the <c>AWS/ECS</c>
    /// cluster metric each instance's row already holds for it: the same measurement, for one instance.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> InstanceMetrics = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["instance_cpu_utilization"] = EcsUtilization.CpuUtilization,
        ["instance_memory_utilization"] = EcsUtilization.MemoryUtilization,
        ["instance_cpu_reserved_capacity"] = EcsUtilization.CpuReservation,
        ["instance_memory_reserved_capacity"] = EcsUtilization.MemoryReservation,
    };

    /// <summary>The datapoints of one metric per period from <paramref name="start"/>, or none when nothing is stored under that namespace and dimension set.</summary>
    public async Task<IReadOnlyList<Datapoint>> DatapointsAsync(
        string ns, string metric, IReadOnlyDictionary<string, string> dimensions, DateTimeOffset start, DateTimeOffset end, int period, string? unit, CancellationToken cancellationToken)
    {
        if (ns == ContainerInsightsNamespace && InstanceMetrics.TryGetValue(metric, out var clusterMetric)
            && dimensions.Count == 2 && dimensions.TryGetValue("ClusterName", out var clusterName) && dimensions.TryGetValue("ContainerInstanceId", out var instanceId))
        {
            // Each row of the cluster's partition is one instance's period, keyed by its container instance id.
            var own = (await store.ReadAsync(MetricStore.ClusterPartition(clusterName), start, end, cancellationToken)).Where(r => r.InstanceId == instanceId);
            return [.. MetricStatistics.Datapoints(own, clusterMetric, start, end, period).Where(d => unit is null || unit == d.Unit)];
        }
        if (ns != EcsUtilization.Namespace)
            return CustomSample.Datapoints(await custom.ReadAsync(MetricId.Of(ns, metric, dimensions), start, end, cancellationToken), start, end, period, unit);
        if (Partition(dimensions) is not { } partition) return [];
        var rows = await store.ReadAsync(partition, start, end, cancellationToken);
        return [.. MetricStatistics.Datapoints(rows, metric, start, end, period).Where(d => unit is null || unit == d.Unit)];
    }

    /// <summary>An <c>AWS/ECS</c> dimension set's partition: ClusterName alone, or with ServiceName.</summary>
    private static string? Partition(IReadOnlyDictionary<string, string> dimensions)
    {
        if (!dimensions.TryGetValue("ClusterName", out var cluster)) return null;
        if (dimensions.Count == 1) return MetricStore.ClusterPartition(cluster);
        return dimensions.Count == 2 && dimensions.TryGetValue("ServiceName", out var service) ? MetricStore.ServicePartition(cluster, service) : null;
    }
}
