using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Metrics;

/// <summary>One custom metric: a namespace, a name and a dimension set (names in ordinal order).</summary>
public sealed record MetricId(string Namespace, string Name, IReadOnlyList<KeyValuePair<string, string>> Dimensions)
{
    public static MetricId Of(string ns, string name, IReadOnlyDictionary<string, string> dimensions)
        => new(ns, name, [.. dimensions.OrderBy(d => d.Key, StringComparer.Ordinal)]);

    /// <summary>
    /// The metric's partition in the <c>Metrics</c> table: <c>M|</c> and a hash of the identity, since a
    /// namespace or dimension value may hold characters a table key may not (<c>/</c>, <c>#</c>, <c>?</c>).
    /// </summary>
    public string Partition
    {
        get
        {
            var identity = JsonSerializer.Serialize(new object[] { Namespace, Name, Dimensions.Select(d => new[] { d.Key, d.Value }) });
            return "M|" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(identity)));
        }
    }
}

/// <summary>One published value set, as a statistic set: what every form of a MetricDatum reduces to.</summary>
public sealed record CustomSample(DateTimeOffset Timestamp, double Sum, double SampleCount, double Minimum, double Maximum, string Unit)
{
    /// <summary>
    /// The statistics of custom samples per period aligned to <paramref name="start"/>, one datapoint per
    /// period and unit (CloudWatch keeps values published with different units apart).
    /// </summary>
    public static IReadOnlyList<Datapoint> Datapoints(IEnumerable<CustomSample> samples, DateTimeOffset start, DateTimeOffset end, int periodSeconds, string? unit)
        => [.. samples
            .Where(s => s.Timestamp >= start && s.Timestamp < end && s.SampleCount > 0 && (unit is null || s.Unit == unit))
            .GroupBy(s => (Bucket: (long)Math.Floor((s.Timestamp - start).TotalSeconds / periodSeconds), s.Unit))
            .OrderBy(g => g.Key.Bucket).ThenBy(g => g.Key.Unit, StringComparer.Ordinal)
            .Select(g =>
            {
                double sum = g.Sum(s => s.Sum), count = g.Sum(s => s.SampleCount);
                return new Datapoint(start.AddSeconds(g.Key.Bucket * periodSeconds), count, sum / count, sum, g.Min(s => s.Minimum), g.Max(s => s.Maximum), g.Key.Unit);
            })];
}

/// <summary>
/// Custom metrics (PutMetricData) in the <c>Metrics</c> table beside the <c>AWS/ECS</c> datapoints: one
/// partition per metric (<see cref="MetricId.Partition"/>), one row per published datum
/// (<c>yyyyMMddHHmmss|id</c>, so <see cref="MetricStore.DeleteBeforeAsync"/> applies the same retention),
/// carrying the metric's identity for ListMetrics.
/// </summary>
public sealed class CustomMetricStore(StorageClients storage)
{
    private const string Table = "Metrics";
    private const int BatchSize = 100;

    /// <summary>Writes the samples, grouped per metric partition in transactions of at most 100 rows.</summary>
    public async Task AddAsync(IReadOnlyList<(MetricId Metric, CustomSample Sample)> samples, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        foreach (var metric in samples.GroupBy(s => s.Metric.Partition))
        {
            foreach (var chunk in metric.Chunk(BatchSize))
                await table.SubmitTransactionAsync(chunk.Select(s => new TableTransactionAction(TableTransactionActionType.Add, ToEntity(s.Metric, s.Sample))), cancellationToken);
        }
    }

    public async Task<IReadOnlyList<CustomSample>> ReadAsync(MetricId metric, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {metric.Partition} and RowKey ge {Key(from)} and RowKey lt {Key(to.AddSeconds(1))}");
        var samples = new List<CustomSample>();
        await foreach (var e in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            var timestamp = e.GetDateTimeOffset("Timestamp_") ?? DateTimeOffset.MinValue;
            samples.Add(new CustomSample(timestamp, e.GetDouble("Sum") ?? 0, e.GetDouble("SampleCount") ?? 0, e.GetDouble("Minimum") ?? 0, e.GetDouble("Maximum") ?? 0, e.GetString("Unit") ?? "None"));
        }
        return samples;
    }

    /// <summary>The custom metrics with a datum newer than <paramref name="since"/>, optionally of one namespace.</summary>
    public async Task<IReadOnlyList<MetricId>> ListAsync(string? ns, DateTimeOffset since, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        var filter = ns is null
            ? TableClient.CreateQueryFilter($"PartitionKey ge {"M|"} and PartitionKey lt {"M}"} and RowKey ge {Key(since)}")
            : TableClient.CreateQueryFilter($"PartitionKey ge {"M|"} and PartitionKey lt {"M}"} and RowKey ge {Key(since)} and Namespace eq {ns}");
        var metrics = new SortedDictionary<string, MetricId>(StringComparer.Ordinal);
        await foreach (var e in table.QueryAsync<TableEntity>(filter, select: ["PartitionKey", "Namespace", "MetricName", "Dimensions"], cancellationToken: cancellationToken))
        {
            if (metrics.ContainsKey(e.PartitionKey)) continue;
            var dimensions = JsonSerializer.Deserialize<string[][]>(e.GetString("Dimensions") ?? "[]") ?? [];
            metrics[e.PartitionKey] = new MetricId(e.GetString("Namespace")!, e.GetString("MetricName")!, [.. dimensions.Select(d => KeyValuePair.Create(d[0], d[1]))]);
        }
        return [.. metrics.Values];
    }

    private static string Key(DateTimeOffset time) => time.UtcDateTime.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);

    private static TableEntity ToEntity(MetricId metric, CustomSample sample) => new(metric.Partition, $"{Key(sample.Timestamp)}|{Guid.NewGuid():N}")
    {
        ["Namespace"] = metric.Namespace,
        ["MetricName"] = metric.Name,
        ["Dimensions"] = JsonSerializer.Serialize(metric.Dimensions.Select(d => new[] { d.Key, d.Value })),
        ["Timestamp_"] = sample.Timestamp,
        ["Sum"] = sample.Sum,
        ["SampleCount"] = sample.SampleCount,
        ["Minimum"] = sample.Minimum,
        ["Maximum"] = sample.Maximum,
        ["Unit"] = sample.Unit,
    };
}
