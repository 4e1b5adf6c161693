using System.Text.Json;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;

namespace Serverless.Core.Metrics;

/// <summary>
/// Stores workers' <see cref="MetricsReport"/>s. A malformed report, or one older than the retention,
/// is dropped with a log line: it can only be wrong, and retrying would not make it right. A duplicate
/// writes the same rows again (<see cref="MetricStore"/>), so nothing is counted twice.
/// </summary>
public sealed class MetricsIngest(MetricStore store, MetricsOptions options, TimeProvider time, ILogger<MetricsIngest> logger)
{
    public async Task ApplyAsync(string message, CancellationToken cancellationToken)
    {
        MetricsReport? report;
        try
        {
            report = JsonSerializer.Deserialize<MetricsReport>(message, TaskMessages.Json);
        }
        catch (JsonException e)
        {
            logger.LogWarning("Dropped a malformed metrics message: {Error}", e.Message);
            return;
        }
        var problem = report is null ? "empty" : Problem(report);
        if (problem is not null)
        {
            logger.LogWarning("Dropped a metrics report: {Problem}", problem);
            return;
        }
        if (report!.Start < time.GetUtcNow() - TimeSpan.FromDays(options.RetentionDays))
        {
            logger.LogInformation("Dropped a metrics report of {Start} from {InstanceId}: older than the retention", report.Start, report.InstanceId);
            return;
        }
        await store.SaveAsync(report, cancellationToken);
    }

    /// <summary>What makes a report unusable, or null. Names become table keys, so they keep ECS's name rules.</summary>
    public static string? Problem(MetricsReport report)
    {
        if (!IsName(report.Cluster)) return $"cluster name '{report.Cluster}'";
        if (string.IsNullOrEmpty(report.InstanceId) || !report.InstanceId.All(char.IsAsciiLetterOrDigit)) return $"instance id '{report.InstanceId}'";
        if (report.Seconds <= 0 || report.Instance is null || report.Services is null) return "missing period, instance or services";
        var i = report.Instance;
        if (!AllValid(i.CpuRegistered, i.MemoryRegistered, i.CpuReserved, i.MemoryReserved, i.CpuUsed, i.MemoryUsed)) return "instance usage is not a set of non-negative numbers";
        foreach (var service in report.Services)
        {
            if (service is null || !IsName(service.Service)) return $"service name '{service?.Service}'";
            foreach (var ratio in new[] { service.Cpu, service.Memory })
            {
                if (ratio is not null && (!AllValid(ratio.Used, ratio.Capacity, ratio.Min, ratio.Max) || ratio.Count <= 0 || ratio.Min > ratio.Max))
                    return $"usage of service '{service.Service}'";
            }
        }
        return null;
    }

    private static bool IsName(string? name)
        => !string.IsNullOrEmpty(name) && name.Length <= 255 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private static bool AllValid(params double[] values) => values.All(v => double.IsFinite(v) && v >= 0);
}

/// <summary>
/// Deletes datapoints older than <see cref="MetricsOptions.RetentionDays"/> (CloudWatch keeps 1-minute data 15 days)
/// and alarm history older than CloudWatch keeps it (two weeks).
/// </summary>
public sealed class MetricRetention(MetricStore store, Alarms.MetricAlarmStore alarms, MetricsOptions options, TimeProvider time, ILogger<MetricRetention> logger)
{
    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        var deleted = await store.DeleteBeforeAsync(time.GetUtcNow() - TimeSpan.FromDays(options.RetentionDays), cancellationToken);
        if (deleted > 0) logger.LogInformation("Metric retention: deleted {Rows} datapoint row(s)", deleted);
        var history = await alarms.DeleteHistoryBeforeAsync(time.GetUtcNow() - Alarms.MetricAlarmStore.HistoryRetention, cancellationToken);
        if (history > 0) logger.LogInformation("Alarm history retention: deleted {Items} item(s)", history);
    }
}
