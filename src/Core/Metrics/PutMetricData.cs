using System.Text.Json.Nodes;
using Serverless.Core.Api;

namespace Serverless.Core.Metrics;

/// <summary>
/// PutMetricData's rules, as a pure reading of the request: a namespace not in <c>AWS/</c>, at most 1000
/// datums, each with one of <c>Value</c>, <c>Values</c> (with optional <c>Counts</c> of the same length,
/// at most 150) or <c>StatisticValues</c>, values CloudWatch can store (finite, 0 or of magnitude
/// 2^-360..2^360), a timestamp no more than two weeks old nor two hours ahead. Every datum reduces to a
/// statistic set (<see cref="CustomSample"/>).
/// </summary>
public static class PutMetricData
{
    public const int MaxDatums = 1000;
    public const int MaxValues = 150;
    private static readonly double Smallest = Math.Pow(2, -360);
    private static readonly double Largest = Math.Pow(2, 360);

    public static IReadOnlyList<(MetricId Metric, CustomSample Sample)> Read(JsonObject request, DateTimeOffset now)
    {
        var ns = request.String("Namespace")!;
        if (ns.StartsWith("AWS/", StringComparison.Ordinal))
            throw CloudWatchException.InvalidParameterValue($"The value {ns} for parameter Namespace is invalid.");
        var datums = (request["MetricData"] as JsonArray ?? []).OfType<JsonObject>()
            .Concat((request["EntityMetricData"] as JsonArray ?? []).OfType<JsonObject>().SelectMany(e => (e["MetricData"] as JsonArray ?? []).OfType<JsonObject>()))
            .ToList();
        if (datums.Count > MaxDatums)
            throw CloudWatchException.InvalidParameterValue($"The collection MetricData must not have a size greater than {MaxDatums}.");
        return [.. datums.Select((datum, i) => Read(ns, datum, $"MetricData.member.{i + 1}", now))];
    }

    private static (MetricId, CustomSample) Read(string ns, JsonObject datum, string path, DateTimeOffset now)
    {
        var timestamp = datum["Timestamp"] is { } t ? AwsJson.FromTimestamp(t.GetValue<double>()) : now;
        if (timestamp < now - TimeSpan.FromDays(14) || timestamp > now + TimeSpan.FromHours(2))
            throw CloudWatchException.InvalidParameterValue($"The parameter {path}.Timestamp must specify a time no more than two weeks in the past and no more than two hours in the future.");
        var unit = datum.String("Unit") ?? "None";
        var forms = new[] { "Value", "Values", "StatisticValues" }.Where(f => datum[f] is not null && datum[f] is not JsonArray { Count: 0 }).ToList();
        if (forms.Count > 1)
            throw CloudWatchException.InvalidParameterCombination($"The parameters {path}.{forms[0]} and {path}.{forms[1]} are mutually exclusive and you have specified both.");
        if (forms.Count == 0) throw CloudWatchException.MissingParameter($"The parameter {path}.Value is required.");
        if (datum["Counts"] is JsonArray { Count: > 0 } && forms[0] != "Values")
            throw CloudWatchException.InvalidParameterCombination($"The parameter {path}.Counts requires {path}.Values.");

        CustomSample sample;
        switch (forms[0])
        {
            case "Value":
                var value = Check(datum["Value"]!.GetValue<double>(), $"{path}.Value");
                sample = new CustomSample(timestamp, value, 1, value, value, unit);
                break;
            case "Values":
                var values = ((JsonArray)datum["Values"]!).Select((v, j) => Check(v!.GetValue<double>(), $"{path}.Values.member.{j + 1}")).ToList();
                var counts = (datum["Counts"] as JsonArray ?? []).Select(c => c!.GetValue<double>()).ToList();
                if (values.Count > MaxValues)
                    throw CloudWatchException.InvalidParameterValue($"The collection {path}.Values must not have a size greater than {MaxValues}.");
                if (counts.Count > 0 && counts.Count != values.Count)
                    throw CloudWatchException.InvalidParameterValue($"The parameters {path}.Values and {path}.Counts must be of the same size.");
                if (counts.Any(c => !double.IsFinite(c) || c < 0))
                    throw CloudWatchException.InvalidParameterValue($"The parameter {path}.Counts must hold non-negative numbers.");
                var weights = counts.Count > 0 ? counts : [.. values.Select(_ => 1.0)];
                var counted = values.Zip(weights).Where(p => p.Second > 0).ToList();
                sample = counted.Count == 0
                    ? new CustomSample(timestamp, 0, 0, 0, 0, unit)
                    : new CustomSample(timestamp, counted.Sum(p => p.First * p.Second), counted.Sum(p => p.Second), counted.Min(p => p.First), counted.Max(p => p.First), unit);
                break;
            default:
                var set = (JsonObject)datum["StatisticValues"]!;
                double Stat(string name) => Check(set[name]!.GetValue<double>(), $"{path}.StatisticValues.{name}");
                sample = new CustomSample(timestamp, Stat("Sum"), Stat("SampleCount"), Stat("Minimum"), Stat("Maximum"), unit);
                if (sample.SampleCount <= 0)
                    throw CloudWatchException.InvalidParameterValue($"The parameter {path}.StatisticValues.SampleCount must be greater than 0.");
                if (sample.Minimum > sample.Maximum)
                    throw CloudWatchException.InvalidParameterValue($"The parameter {path}.StatisticValues.Maximum must be greater than or equal to {path}.StatisticValues.Minimum.");
                break;
        }
        return (MetricId.Of(ns, datum.String("MetricName")!, CloudWatchActions.Dimensions(datum["Dimensions"])), sample);
    }

    /// <summary>CloudWatch rejects NaN, infinities and magnitudes it cannot store (outside 2^-360..2^360, 0 aside).</summary>
    private static double Check(double value, string parameter)
    {
        var magnitude = Math.Abs(value);
        if (!double.IsFinite(value) || (magnitude != 0 && (magnitude < Smallest || magnitude > Largest)))
            throw CloudWatchException.InvalidParameterValue($"The value {value} for parameter {parameter} is invalid.");
        return value;
    }
}
