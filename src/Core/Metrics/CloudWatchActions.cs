using System.Text.Json.Nodes;
using Serverless.Core.Api;

namespace Serverless.Core.Metrics;

/// <summary>
/// CloudWatch's metrics: PutMetricData for custom namespaces, and GetMetricStatistics, GetMetricData
/// (MetricStat queries) and ListMetrics over them and the <c>AWS/ECS</c> datapoints, whose dimensions
/// are ECS's: <c>ClusterName</c>, and <c>ClusterName</c> + <c>ServiceName</c>. A metric that was never
/// published simply has no datapoints, as in CloudWatch.
/// </summary>
public sealed class CloudWatchActions(MetricStore store, CustomMetricStore custom, MetricReader reader, MetricsOptions options, TimeProvider time) : IActionSource
{
    public static readonly ServiceModel Model = ServiceModel.Load("cloudwatch");

    private static readonly string[] Statistics = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("GetMetricStatistics", GetMetricStatisticsAsync, Model.TargetPrefix);
        registry.Map("GetMetricData", GetMetricDataAsync, Model.TargetPrefix);
        registry.Map("ListMetrics", ListMetricsAsync, Model.TargetPrefix);
        registry.Map("PutMetricData", PutMetricDataAsync, Model.TargetPrefix);
    }

    private async Task<JsonObject> PutMetricDataAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        await custom.AddAsync(PutMetricData.Read(request, time.GetUtcNow()), cancellationToken);
        return [];
    }

    private async Task<JsonObject> GetMetricStatisticsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var statistics = request.Strings("Statistics").ToList();
        if (request["ExtendedStatistics"] is JsonArray { Count: > 0 })
            throw CloudWatchException.InvalidParameterValue("Percentile statistics (ExtendedStatistics) are not kept here.");
        if (statistics.Count == 0)
            throw CloudWatchException.MissingParameter("Must specify either Statistics or ExtendedStatistics.");
        var (start, end) = Range(request);
        var period = CheckPeriod(request.Int("Period")!.Value);
        var name = request.String("MetricName")!;
        var unit = request.String("Unit");
        var datapoints = await reader.DatapointsAsync(request.String("Namespace")!, name, Dimensions(request["Dimensions"]), start, end, period, unit, cancellationToken);
        return new JsonObject
        {
            ["Label"] = name,
            ["Datapoints"] = datapoints.Select(d =>
            {
                var point = new JsonObject { ["Timestamp"] = AwsJson.Timestamp(d.Timestamp) };
                foreach (var statistic in Statistics.Where(statistics.Contains)) point[statistic] = MetricStatistics.Value(d, statistic);
                point["Unit"] = d.Unit;
                return (JsonNode)point;
            }).ToJsonArray(),
        };
    }

    private async Task<JsonObject> GetMetricDataAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (start, end) = Range(request);
        var queries = (JsonArray)request["MetricDataQueries"]!;
        if (queries.Count > 500) throw CloudWatchException.InvalidParameterValue("The collection MetricDataQueries must not have a size greater than 500.");
        var newestFirst = request.String("ScanBy") != "TimestampAscending";
        var results = new JsonArray();
        foreach (var query in queries.OfType<JsonObject>())
        {
            var id = query.String("Id")!;
            if (query["Expression"] is not null)
                throw CloudWatchException.InvalidParameterValue($"The value {id} for parameter MetricDataQueries.Id has an Expression: metric math is not supported here; use MetricStat.");
            if (query["MetricStat"] is not JsonObject stat)
                throw CloudWatchException.MissingParameter($"The parameter MetricDataQueries.member.MetricStat is required for query {id}.");
            if (query.Bool("ReturnData") == false) continue;
            var metric = (JsonObject)stat["Metric"]!;
            var statistic = stat.String("Stat")!;
            if (!Statistics.Contains(statistic))
                throw CloudWatchException.InvalidParameterValue($"The value {statistic} for parameter MetricDataQueries.member.MetricStat.Stat is not supported here.");
            var name = metric.String("MetricName") ?? throw CloudWatchException.MissingParameter("The parameter MetricDataQueries.member.MetricStat.Metric.MetricName is required.");
            var ns = metric.String("Namespace") ?? throw CloudWatchException.MissingParameter("The parameter MetricDataQueries.member.MetricStat.Metric.Namespace is required.");
            var datapoints = await reader.DatapointsAsync(ns, name, Dimensions(metric["Dimensions"]), start, end, CheckPeriod(stat.Int("Period")!.Value), stat.String("Unit"), cancellationToken);
            var ordered = newestFirst ? datapoints.Reverse() : datapoints;
            results.Add(new JsonObject
            {
                ["Id"] = id,
                ["Label"] = query.String("Label") ?? name,
                ["Timestamps"] = ordered.Select(d => (JsonNode)AwsJson.Timestamp(d.Timestamp)).ToJsonArray(),
                ["Values"] = ordered.Select(d => (JsonNode)JsonValue.Create(MetricStatistics.Value(d, statistic))).ToJsonArray(),
                ["StatusCode"] = "Complete",
            });
        }
        return new JsonObject { ["MetricDataResults"] = results, ["Messages"] = new JsonArray() };
    }

    private async Task<JsonObject> ListMetricsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var ns = request.String("Namespace");
        var name = request.String("MetricName");
        var filters = (request["Dimensions"] as JsonArray ?? []).OfType<JsonObject>()
            .Select(f => (Name: f.String("Name")!, Value: f.String("Value"))).ToList();
        // RecentlyActive PT3H lists what had a datapoint in the last three hours; otherwise the retention.
        var since = time.GetUtcNow() - (request.String("RecentlyActive") == "PT3H" ? TimeSpan.FromHours(3) : TimeSpan.FromDays(options.RetentionDays));
        var metrics = new JsonArray();
        if (ns is null or EcsUtilization.Namespace)
        {
            foreach (var partition in await store.PartitionsAsync(since, cancellationToken))
            {
                if (!partition.StartsWith("ECS|", StringComparison.Ordinal)) continue;
                var parts = partition.Split('|');
                var dimensions = parts.Length == 3
                    ? new List<(string Name, string Value)> { ("ClusterName", parts[1]), ("ServiceName", parts[2]) }
                    : [("ClusterName", parts[1])];
                if (!filters.All(f => dimensions.Any(d => d.Name == f.Name && (f.Value is null || d.Value == f.Value)))) continue;
                foreach (var metric in parts.Length == 3 ? EcsUtilization.ServiceMetrics : EcsUtilization.ClusterMetrics)
                {
                    if (name is not null && name != metric) continue;
                    metrics.Add(new JsonObject
                    {
                        ["Namespace"] = EcsUtilization.Namespace,
                        ["MetricName"] = metric,
                        ["Dimensions"] = dimensions.Select(d => (JsonNode)new JsonObject { ["Name"] = d.Name, ["Value"] = d.Value }).ToJsonArray(),
                    });
                }
            }
        }
        if (ns != EcsUtilization.Namespace)
        {
            foreach (var metric in await custom.ListAsync(ns, since, cancellationToken))
            {
                if ((name is not null && name != metric.Name)
                    || !filters.All(f => metric.Dimensions.Any(d => d.Key == f.Name && (f.Value is null || d.Value == f.Value)))) continue;
                metrics.Add(new JsonObject
                {
                    ["Namespace"] = metric.Namespace,
                    ["MetricName"] = metric.Name,
                    ["Dimensions"] = metric.Dimensions.Select(d => (JsonNode)new JsonObject { ["Name"] = d.Key, ["Value"] = d.Value }).ToJsonArray(),
                });
            }
        }
        return new JsonObject { ["Metrics"] = metrics };
    }

    public static IReadOnlyDictionary<string, string> Dimensions(JsonNode? node)
    {
        var dimensions = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var dimension in (node as JsonArray ?? []).OfType<JsonObject>())
        {
            var name = dimension.String("Name")!;
            if (!dimensions.TryAdd(name, dimension.String("Value")!))
                throw CloudWatchException.InvalidParameterValue($"The dimension {name} is specified more than once.");
        }
        return dimensions;
    }

    private static (DateTimeOffset Start, DateTimeOffset End) Range(JsonObject request)
    {
        var start = AwsJson.FromTimestamp(request["StartTime"]!.GetValue<double>());
        var end = AwsJson.FromTimestamp(request["EndTime"]!.GetValue<double>());
        if (start >= end) throw CloudWatchException.InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.");
        return (start, end);
    }

    /// <summary>CloudWatch's rule: a period of 1, 5, 10, 20, 30 s, or a multiple of 60.</summary>
    private static int CheckPeriod(int period)
    {
        if (period is 1 or 5 or 10 or 20 or 30 || (period >= 60 && period % 60 == 0)) return period;
        throw CloudWatchException.InvalidParameterValue("The parameter Period must be 1, 5, 10, 20, 30, or a multiple of 60.");
    }
}
