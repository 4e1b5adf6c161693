namespace Serverless.Core.Metrics;

/// <summary>One stored measurement: a period's ratios of one instance for one service (or cluster).</summary>
public sealed record UsageRow(DateTimeOffset Start, string InstanceId, IReadOnlyDictionary<string, Ratio> Metrics);

/// <summary>A CloudWatch datapoint: the statistics over the samples of one period.</summary>
public sealed record Datapoint(DateTimeOffset Timestamp, double SampleCount, double Average, double Sum, double Minimum, double Maximum, string Unit);

/// <summary>
/// The statistics CloudWatch answers for a metric over stored rows: rows are grouped into periods
/// aligned to the query's start, as GetMetricStatistics aligns them; Average is the ratio of the sums
/// (ECS's formula over every task of the period), Sum is Average × SampleCount so that Sum / SampleCount
/// is the Average as CloudWatch defines it, Minimum and Maximum are single samples.
/// </summary>
public static class MetricStatistics
{
    public const string Percent = "Percent";

    public static IReadOnlyList<Datapoint> Datapoints(IEnumerable<UsageRow> rows, string metric, DateTimeOffset start, DateTimeOffset end, int periodSeconds)
    {
        var buckets = new SortedDictionary<long, Ratio>();
        foreach (var row in rows)
        {
            if (row.Start < start || row.Start >= end || !row.Metrics.TryGetValue(metric, out var ratio) || ratio.Count <= 0) continue;
            var bucket = (long)Math.Floor((row.Start - start).TotalSeconds / periodSeconds);
            buckets[bucket] = buckets.TryGetValue(bucket, out var sum) ? sum.Add(ratio) : ratio;
        }
        return [.. buckets.Where(b => b.Value.Capacity > 0).Select(b => new Datapoint(
            start.AddSeconds(b.Key * periodSeconds), b.Value.Count, b.Value.Percent, b.Value.Percent * b.Value.Count,
            b.Value.Min, b.Value.Max, Percent))];
    }

    /// <summary>A statistic by CloudWatch's name (<c>Average</c>, <c>Sum</c>, <c>SampleCount</c>, <c>Minimum</c>, <c>Maximum</c>).</summary>
    public static double Value(Datapoint datapoint, string statistic) => statistic switch
    {
        "Average" => datapoint.Average,
        "Sum" => datapoint.Sum,
        "SampleCount" => datapoint.SampleCount,
        "Minimum" => datapoint.Minimum,
        "Maximum" => datapoint.Maximum,
        _ => throw new ArgumentOutOfRangeException(nameof(statistic), statistic, "Not a CloudWatch statistic"),
    };
}
