namespace Serverless.Core.Metrics;

/// <summary>One metric's datapoints, wherever it is stored: the <c>AWS/ECS</c> partitions or a custom metric's.</summary>
public sealed class MetricReader(MetricStore store, CustomMetricStore custom)
{
    /// <summary>The datapoints of one metric per period from <paramref name="start"/>, or none when nothing is stored under that namespace and dimension set.</summary>
    public async Task<IReadOnlyList<Datapoint>> DatapointsAsync(
        string ns, string metric, IReadOnlyDictionary<string, string> dimensions, DateTimeOffset start, DateTimeOffset end, int period, string? unit, CancellationToken cancellationToken)
    {
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
