using Azure;
using Serverless.Core.AutoScaling;

namespace Serverless.Core.Alarms;

/// <summary>A CloudWatch metric alarm created with PutMetricAlarm: its configuration and its state.</summary>
public sealed record MetricAlarmRecord
{
    public required string Name { get; init; }
    public required string Arn { get; init; }
    public string? Description { get; init; }
    public bool ActionsEnabled { get; init; } = true;
    public IReadOnlyList<string> OkActions { get; init; } = [];
    public IReadOnlyList<string> AlarmActions { get; init; } = [];
    public IReadOnlyList<string> InsufficientDataActions { get; init; } = [];
    public required string Namespace { get; init; }
    public required string MetricName { get; init; }
    /// <summary>Name and value pairs in ordinal order of name.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Dimensions { get; init; } = [];
    public required string Statistic { get; init; }
    public required int Period { get; init; }
    public string? Unit { get; init; }
    public required int EvaluationPeriods { get; init; }
    public required int DatapointsToAlarm { get; init; }
    public required double Threshold { get; init; }
    public required string ComparisonOperator { get; init; }
    public string TreatMissingData { get; init; } = MetricAlarmEvaluation.Missing;
    public DateTimeOffset ConfigurationUpdatedAt { get; init; }
    public AlarmState State { get; init; } = AlarmState.InsufficientData;
    public string StateReason { get; init; } = "Unchecked: Initial alarm creation";
    public string? StateReasonData { get; init; }
    public DateTimeOffset StateUpdatedAt { get; init; }
    public DateTimeOffset StateTransitionedAt { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public ETag ETag { get; init; }

    /// <summary>The actions of the alarm's current state.</summary>
    public IReadOnlyList<string> ActionsOf(AlarmState state) => state switch
    {
        AlarmState.Alarm => AlarmActions,
        AlarmState.Ok => OkActions,
        _ => InsufficientDataActions,
    };
}

/// <summary>One alarm history item (DescribeAlarmHistory).</summary>
public sealed record AlarmHistoryRecord(string AlarmName, DateTimeOffset Timestamp, string ItemType, string Summary, string Data);

/// <summary>An evaluation's outcome: the state, CloudWatch's kind of reason, and the real datapoints it looked at (newest last).</summary>
public sealed record AlarmVerdict(AlarmState State, string Reason, IReadOnlyList<double> Datapoints);

/// <summary>
/// How a CloudWatch alarm evaluates, as the CloudWatch guide describes it, over the alarm's evaluation
/// range (complete periods, oldest first, null where a period has no datapoint):
/// with at least EvaluationPeriods real datapoints, the newest EvaluationPeriods of them decide and the
/// missing-data treatment is not needed; otherwise every real datapoint counts and missing ones are filled,
/// as few times as possible, as TreatMissingData says (<c>breaching</c>, <c>notBreaching</c>; <c>missing</c>
/// and <c>ignore</c> fill nothing). ALARM when at least DatapointsToAlarm of the EvaluationPeriods breach,
/// OK when so many do not that ALARM is out of reach; otherwise undetermined: INSUFFICIENT_DATA for
/// <c>missing</c>, the current state kept for <c>ignore</c>.
/// </summary>
public static class MetricAlarmEvaluation
{
    public const string Missing = "missing";
    public const string Ignore = "ignore";
    public const string Breaching = "breaching";
    public const string NotBreaching = "notBreaching";

    public static readonly string[] Treatments = [Missing, Ignore, Breaching, NotBreaching];

    public static readonly string[] Operators = ["GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"];

    public static Func<double, bool> Breaches(string comparison, double threshold) => comparison switch
    {
        "GreaterThanOrEqualToThreshold" => v => v >= threshold,
        "GreaterThanThreshold" => v => v > threshold,
        "LessThanThreshold" => v => v < threshold,
        "LessThanOrEqualToThreshold" => v => v <= threshold,
        _ => throw new ArgumentOutOfRangeException(nameof(comparison), comparison, "not a static threshold comparison"),
    };

    public static AlarmVerdict Evaluate(IReadOnlyList<double?> range, int evaluationPeriods, int datapointsToAlarm,
        string comparison, double threshold, string treatMissing, AlarmState current)
    {
        var breaches = Breaches(comparison, threshold);
        var real = range.Where(v => v is not null).Select(v => v!.Value).ToList();
        var used = real.Count >= evaluationPeriods ? real.TakeLast(evaluationPeriods).ToList() : real;
        var fills = evaluationPeriods - used.Count;
        var breaching = used.Count(breaches) + (treatMissing == Breaching ? fills : 0);
        var notBreaching = used.Count(v => !breaches(v)) + (treatMissing == NotBreaching ? fills : 0);
        var shown = string.Join(", ", used.Select(Show));
        var words = Words(comparison);
        if (breaching >= datapointsToAlarm)
            return new AlarmVerdict(AlarmState.Alarm, used.Count == 0
                ? $"Threshold Crossed: no datapoints were received for {evaluationPeriods} periods and {evaluationPeriods} missing datapoints were treated as [Breaching]."
                : $"Threshold Crossed: {breaching} out of the last {evaluationPeriods} datapoints [{shown}] were {words} the threshold ({Show(threshold)}) (minimum {datapointsToAlarm} datapoints for OK -> ALARM transition).", used);
        if (notBreaching > evaluationPeriods - datapointsToAlarm)
            return new AlarmVerdict(AlarmState.Ok, used.Count == 0
                ? $"Threshold Crossed: no datapoints were received for {evaluationPeriods} periods and {evaluationPeriods} missing datapoints were treated as [NonBreaching]."
                : $"Threshold Crossed: {notBreaching} out of the last {evaluationPeriods} datapoints [{shown}] were not {words} the threshold ({Show(threshold)}) (minimum {evaluationPeriods - datapointsToAlarm + 1} datapoints for ALARM -> OK transition).", used);
        if (treatMissing == Ignore && current != AlarmState.InsufficientData)
            return new AlarmVerdict(current, "", used);
        return new AlarmVerdict(AlarmState.InsufficientData,
            $"Insufficient Data: {fills} datapoint{(fills == 1 ? " was" : "s were")} unknown.", used);
    }

    private static string Words(string comparison) => comparison switch
    {
        "GreaterThanOrEqualToThreshold" => "greater than or equal to",
        "GreaterThanThreshold" => "greater than",
        "LessThanThreshold" => "less than",
        _ => "less than or equal to",
    };

    private static string Show(double value) => value.ToString("0.0###", System.Globalization.CultureInfo.InvariantCulture);
}
