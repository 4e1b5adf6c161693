using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.AutoScaling;
using Serverless.Core.Metrics;

namespace Serverless.Core.Alarms;

/// <summary>An alarm in ALARM whose action names a scaling policy: what the policy needs to choose its step.</summary>
public sealed record ScalingPolicyInvocation(string PolicyArn, string AlarmName, double Threshold, IReadOnlyList<double> Datapoints);

/// <summary>
/// Evaluates the metric alarms created with PutMetricAlarm, on the scaling evaluation's timer: one query lists
/// them, one reads each alarm's metric. A changed state is written conditionally on the alarm's ETag (a plane
/// that loses the race to another one's identical verdict writes nothing) with its history item. Alarm actions
/// here are Application Auto Scaling policies, and as CloudWatch does for Auto Scaling actions they are invoked
/// on every evaluation the alarm stays in the state, not only on the transition; the caller applies them.
/// </summary>
public sealed class MetricAlarmEvaluator(MetricAlarmStore store, MetricReader reader, TimeProvider time, ILogger<MetricAlarmEvaluator> logger)
{
    /// <summary>
    /// How often the alarms are read while the last read found none and this process put or deleted none since:
    /// an alarm put through another control plane is evaluated at most this late the first time.
    /// </summary>
    public static readonly TimeSpan NoAlarmsReadInterval = TimeSpan.FromMinutes(5);

    private DateTimeOffset? _noAlarmsUntil;
    private long _changesSeen = -1;

    public async Task<IReadOnlyList<ScalingPolicyInvocation>> EvaluateAllAsync(CancellationToken cancellationToken)
    {
        var invocations = new List<ScalingPolicyInvocation>();
        // No alarms at the last read, none put here since: an idle evaluation need not read the table every minute.
        var now = time.GetUtcNow();
        var changes = store.LocalChanges;
        if (_noAlarmsUntil is { } until && now < until && changes == _changesSeen) return invocations;
        _changesSeen = changes;
        var alarms = await store.ListAsync(cancellationToken);
        _noAlarmsUntil = alarms.Count == 0 ? now + NoAlarmsReadInterval : null;
        foreach (var alarm in alarms)
        {
            try
            {
                invocations.AddRange(await EvaluateAsync(alarm, cancellationToken));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Evaluation of alarm {AlarmName} failed: {Error}", alarm.Name, e.Message);
            }
        }
        return invocations;
    }

    /// <summary>
    /// The alarm's evaluation range: twice its evaluation periods of complete periods, oldest first, so that with
    /// missing data it can look further back; a missing newest period is left out, its datapoints may still be on their way.
    /// </summary>
    public static IReadOnlyList<double?> Range(IReadOnlyList<Datapoint> datapoints, string statistic, DateTimeOffset start, int period, int periods)
    {
        var byStart = datapoints.ToDictionary(d => d.Timestamp);
        var values = Enumerable.Range(0, periods)
            .Select(i => byStart.TryGetValue(start.AddSeconds(i * period), out var d) ? MetricStatistics.Value(d, statistic) : (double?)null).ToList();
        if (values.Count > 0 && values[^1] is null) values.RemoveAt(values.Count - 1);
        return values;
    }

    private async Task<IReadOnlyList<ScalingPolicyInvocation>> EvaluateAsync(MetricAlarmRecord alarm, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var periods = 2 * alarm.EvaluationPeriods;
        var end = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() / alarm.Period * alarm.Period);
        var start = end.AddSeconds(-periods * alarm.Period);
        var datapoints = await reader.DatapointsAsync(alarm.Namespace, alarm.MetricName, alarm.Dimensions.ToDictionary(d => d.Key, d => d.Value),
            start, end, alarm.Period, alarm.Unit, cancellationToken);
        var verdict = MetricAlarmEvaluation.Evaluate(Range(datapoints, alarm.Statistic, start, alarm.Period, periods),
            alarm.EvaluationPeriods, alarm.DatapointsToAlarm, alarm.ComparisonOperator, alarm.Threshold, alarm.TreatMissingData, alarm.State);
        var current = alarm;
        if (verdict.State != alarm.State)
        {
            current = Transition(alarm, verdict.State, verdict.Reason, ReasonData(alarm, verdict, now), now);
            try
            {
                await store.SaveAsync(current, StateHistory(alarm, current, now), cancellationToken);
            }
            catch (ConcurrentUpdateException)
            {
                return [];      // another plane recorded this evaluation, or the alarm was changed or deleted meanwhile
            }
            logger.LogInformation("Alarm {AlarmName} went from {From} to {To}: {Reason}", alarm.Name, alarm.State, verdict.State, verdict.Reason);
        }
        if (!current.ActionsEnabled || current.State != AlarmState.Alarm || verdict.Datapoints.Count == 0) return [];
        return [.. current.AlarmActions.Where(a => ScalingPolicyArns.Parse(a) is not null).Select(arn => new ScalingPolicyInvocation(arn, alarm.Name, alarm.Threshold, verdict.Datapoints))];
    }

    /// <summary>The alarm in <paramref name="state"/>: its transition time moves only when the state changes.</summary>
    public static MetricAlarmRecord Transition(MetricAlarmRecord alarm, AlarmState state, string reason, string? reasonData, DateTimeOffset now) => alarm with
    {
        State = state,
        StateReason = reason,
        StateReasonData = reasonData,
        StateUpdatedAt = now,
        StateTransitionedAt = state != alarm.State ? now : alarm.StateTransitionedAt,
    };

    /// <summary>The history item CloudWatch writes for a state change, with its old and new state in HistoryData.</summary>
    public static AlarmHistoryRecord StateHistory(MetricAlarmRecord before, MetricAlarmRecord after, DateTimeOffset now)
    {
        static JsonObject State(MetricAlarmRecord a)
        {
            var state = new JsonObject { ["stateValue"] = AlarmActions.StateValue(a.State), ["stateReason"] = a.StateReason };
            if (a.StateReasonData is { } data) state["stateReasonData"] = JsonNode.Parse(data);
            return state;
        }
        var data = new JsonObject { ["version"] = "1.0", ["oldState"] = State(before), ["newState"] = State(after) };
        return new AlarmHistoryRecord(after.Name, now, "StateUpdate",
            $"Alarm updated from {AlarmActions.StateValue(before.State)} to {AlarmActions.StateValue(after.State)}", data.ToJsonString());
    }

    private static string ReasonData(MetricAlarmRecord alarm, AlarmVerdict verdict, DateTimeOffset now) => new JsonObject
    {
        ["version"] = "1.0",
        ["queryDate"] = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff+0000", System.Globalization.CultureInfo.InvariantCulture),
        ["statistic"] = alarm.Statistic,
        ["period"] = alarm.Period,
        ["recentDatapoints"] = verdict.Datapoints.Select(v => (JsonNode)JsonValue.Create(v)).ToJsonArray(),
        ["threshold"] = alarm.Threshold,
    }.ToJsonString();
}
