using System.Globalization;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Metrics;

/// <summary>
/// The <c>AWS/ECS</c> datapoints (table <c>Metrics</c>). One partition per service
/// (<c>ECS|cluster|service</c>) and one per cluster (<c>ECS|cluster</c>), so a service's statistics
/// read one small partition. A row is one instance's period (<c>yyyyMMddHHmmss|instanceId</c>) and is
/// written whole with an upsert: a duplicated or late report writes the same row again, never adds.
/// </summary>
public sealed class MetricStore(StorageClients storage)
{
    private const string Table = "Metrics";
    private const string TimeFormat = "yyyyMMddHHmmss";

    public static string ServicePartition(string cluster, string service) => $"ECS|{cluster}|{service}";

    public static string ClusterPartition(string cluster) => $"ECS|{cluster}";

    /// <summary>Writes a report: one row in each of its services' partitions and one in the cluster's.</summary>
    public async Task SaveAsync(MetricsReport report, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        var row = new UsageRow(report.Start, report.InstanceId, EcsUtilization.Cluster(report.Instance));
        await table.UpsertEntityAsync(ToEntity(ClusterPartition(report.Cluster), report.Seconds, row), TableUpdateMode.Replace, cancellationToken);
        foreach (var service in report.Services)
        {
            var metrics = EcsUtilization.Service(service);
            if (metrics.Count == 0) continue;
            await table.UpsertEntityAsync(
                ToEntity(ServicePartition(report.Cluster, service.Service), report.Seconds, new UsageRow(report.Start, report.InstanceId, metrics)),
                TableUpdateMode.Replace, cancellationToken);
        }
    }

    /// <summary>The rows of one partition whose period starts in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public async Task<IReadOnlyList<UsageRow>> ReadAsync(string partition, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {partition} and RowKey ge {Key(from)} and RowKey lt {Key(to)}");
        var rows = new List<UsageRow>();
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            rows.Add(FromEntity(entity));
        return rows;
    }

    /// <summary>The partitions that hold a row newer than <paramref name="since"/>, for ListMetrics: one scan of keys.</summary>
    public async Task<IReadOnlyList<string>> PartitionsAsync(DateTimeOffset since, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        var partitions = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var entity in table.QueryAsync<TableEntity>(
                           TableClient.CreateQueryFilter($"RowKey ge {Key(since)}"), select: ["PartitionKey"], cancellationToken: cancellationToken))
            partitions.Add(entity.PartitionKey);
        return [.. partitions];
    }

    /// <summary>Deletes every row older than <paramref name="before"/>; returns how many.</summary>
    public async Task<int> DeleteBeforeAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        return await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"RowKey lt {Key(before)}"), cancellationToken);
    }

    private static string Key(DateTimeOffset time) => time.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture);

    private static TableEntity ToEntity(string partition, int seconds, UsageRow row)
    {
        var entity = new TableEntity(partition, $"{Key(row.Start)}|{row.InstanceId}") { ["Seconds"] = seconds };
        foreach (var (metric, ratio) in row.Metrics)
        {
            entity[$"{metric}_Used"] = ratio.Used;
            entity[$"{metric}_Capacity"] = ratio.Capacity;
            entity[$"{metric}_Min"] = ratio.Min;
            entity[$"{metric}_Max"] = ratio.Max;
            entity[$"{metric}_Count"] = ratio.Count;
        }
        return entity;
    }

    private static UsageRow FromEntity(TableEntity entity)
    {
        var bar = entity.RowKey.IndexOf('|');
        var start = DateTime.ParseExact(entity.RowKey[..bar], TimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
        var metrics = new Dictionary<string, Ratio>(StringComparer.Ordinal);
        foreach (var name in entity.Keys.Where(k => k.EndsWith("_Count", StringComparison.Ordinal)))
        {
            var metric = name[..^"_Count".Length];
            metrics[metric] = new Ratio(
                entity.GetDouble($"{metric}_Used") ?? 0, entity.GetDouble($"{metric}_Capacity") ?? 0,
                entity.GetDouble($"{metric}_Min") ?? 0, entity.GetDouble($"{metric}_Max") ?? 0, entity.GetInt32(name) ?? 0);
        }
        return new UsageRow(new DateTimeOffset(start, TimeSpan.Zero), entity.RowKey[(bar + 1)..], metrics);
    }
}
