namespace Serverless.Core.AutoScaling;

/// <summary>A CloudWatch alarm's state.</summary>
public enum AlarmState { Ok, Alarm, InsufficientData }

/// <summary>What one target tracking policy wants, and why (the alarm that fired).</summary>
public sealed record PolicyWant(string PolicyName, int Capacity, bool ScaleOut, string AlarmName, double Metric);

/// <summary>
/// Target tracking as Application Auto Scaling documents it, over the metric's per-period values
/// (oldest first; null where a period has no datapoint). The policy owns two alarms: AlarmHigh, 3 of 3
/// datapoints above the target, and AlarmLow, 15 of 15 below 90 % of it. In ALARM the new capacity is
/// proportional to reach the target: current × metric / target, rounded up when scaling out and down
/// when scaling in.
/// </summary>
public static class TargetTracking
{
    public const int HighDatapoints = 3;
    public const int LowDatapoints = 15;
    public const double LowFraction = 0.9;

    /// <summary>
    /// An alarm of N datapoints out of N (<paramref name="datapoints"/>). Missing data is treated as
    /// missing, CloudWatch's default: periods without a datapoint are skipped and the alarm looks further
    /// back for its N datapoints within what it was given. With no datapoint at all the state is
    /// INSUFFICIENT_DATA; a non-breaching datapoint among the newest N makes it OK; it is ALARM only with
    /// N datapoints, all breaching.
    /// </summary>
    public static AlarmState Evaluate(IReadOnlyList<double?> values, int datapoints, Func<double, bool> breaching)
    {
        var present = values.Where(v => v is not null).Select(v => v!.Value).ToList();
        var newest = present.Skip(Math.Max(0, present.Count - datapoints)).ToList();
        if (newest.Count == 0) return AlarmState.InsufficientData;
        if (newest.Any(v => !breaching(v))) return AlarmState.Ok;
        return newest.Count >= datapoints ? AlarmState.Alarm : AlarmState.InsufficientData;
    }

    public static AlarmState High(IReadOnlyList<double?> values, double target) => Evaluate(values, HighDatapoints, v => v > target);

    public static AlarmState Low(IReadOnlyList<double?> values, double target) => Evaluate(values, LowDatapoints, v => v < target * LowFraction);

    /// <summary>
    /// The policy's two alarms after an evaluation of <paramref name="values"/>: an alarm whose state is
    /// unchanged keeps its time and reason, one that changed gets <paramref name="now"/> and CloudWatch's
    /// kind of reason.
    /// </summary>
    public static TargetTrackingAlarms Alarms(ScalingPolicyRecord policy, IReadOnlyList<double?> values, DateTimeOffset now)
    {
        AlarmStatus Next(AlarmStatus? previous, string name, AlarmState state, int datapoints, double threshold, string comparison)
        {
            if (previous is not null && previous.Name == name && previous.State == state) return previous;
            var present = values.Where(v => v is not null).Select(v => v!.Value).TakeLast(datapoints).ToList();
            var shown = string.Join(", ", present.Select(v => v.ToString("0.0###", System.Globalization.CultureInfo.InvariantCulture)));
            var limit = threshold.ToString("0.0###", System.Globalization.CultureInfo.InvariantCulture);
            var reason = state switch
            {
                AlarmState.Alarm => $"Threshold Crossed: {present.Count} datapoints [{shown}] were {comparison} the threshold ({limit}).",
                AlarmState.Ok => $"Threshold Crossed: {present.Count} datapoints [{shown}] were not all {comparison} the threshold ({limit}).",
                _ => $"Insufficient Data: {datapoints - present.Count} of the {datapoints} datapoints to alarm were unknown.",
            };
            return new AlarmStatus(name, state, now, reason);
        }
        return new TargetTrackingAlarms(
            Next(policy.Alarms?.High, policy.HighAlarmName, High(values, policy.TargetValue), HighDatapoints, policy.TargetValue, "greater than"),
            Next(policy.Alarms?.Low, policy.LowAlarmName, Low(values, policy.TargetValue), LowDatapoints, policy.TargetValue * LowFraction, "less than"));
    }

    /// <summary>
    /// What the policy wants from <paramref name="current"/> (the running count), or null: nothing while
    /// neither alarm is in ALARM, nor a scale-in when <paramref name="disableScaleIn"/>.
    /// </summary>
    public static PolicyWant? Want(string policyName, string highAlarm, string lowAlarm, double target, bool disableScaleIn, IReadOnlyList<double?> values, int current)
    {
        var latest = values.LastOrDefault(v => v is not null);
        if (latest is not { } metric || target <= 0) return null;
        if (High(values, target) == AlarmState.Alarm)
            return new PolicyWant(policyName, Math.Max(current + (current == 0 ? 1 : 0), (int)Math.Ceiling(current * metric / target - 1e-9)), true, highAlarm, metric);
        if (!disableScaleIn && Low(values, target) == AlarmState.Alarm)
            return new PolicyWant(policyName, (int)Math.Floor(current * metric / target + 1e-9), false, lowAlarm, metric);
        return null;
    }
}
