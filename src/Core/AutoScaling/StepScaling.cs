using System.Globalization;

namespace Serverless.Core.AutoScaling;

/// <summary>One step: a range of the metric's distance from the alarm threshold (null: unbounded) and its adjustment.</summary>
public sealed record StepAdjustment(double? Lower, double? Upper, int Adjustment);

/// <summary>A step scaling policy's configuration (StepScalingPolicyConfiguration).</summary>
public sealed record StepScalingConfiguration(
    string AdjustmentType, IReadOnlyList<StepAdjustment> Steps, int? MinAdjustmentMagnitude, int? Cooldown, string MetricAggregationType);

/// <summary>
/// Step scaling as Application Auto Scaling documents it. Steps are relative to the alarm threshold:
/// above it a step's lower bound is inclusive and its upper bound exclusive, below it the lower bound
/// is exclusive and the upper inclusive. <c>ChangeInCapacity</c> adds the adjustment, <c>ExactCapacity</c>
/// sets it, <c>PercentChangeInCapacity</c> adds that percentage of the current capacity, rounded as AWS
/// rounds: above 1 down, between 0 and 1 to 1, between 0 and −1 to −1, below −1 up (towards zero), and
/// then at least <c>MinAdjustmentMagnitude</c> in size.
/// </summary>
public static class StepScaling
{
    public const string ChangeInCapacity = "ChangeInCapacity";
    public const string ExactCapacity = "ExactCapacity";
    public const string PercentChangeInCapacity = "PercentChangeInCapacity";

    /// <summary>
    /// The configuration's problem, or null when it is valid: steps must not overlap nor leave gaps, only the
    /// lowest may be unbounded below and only the highest unbounded above, each upper bound must be above its
    /// lower bound, and MinAdjustmentMagnitude goes with PercentChangeInCapacity only.
    /// </summary>
    public static string? Problem(StepScalingConfiguration configuration)
    {
        if (configuration.Steps.Count == 0) return "StepAdjustments must contain at least one step adjustment.";
        if (configuration.MinAdjustmentMagnitude is { } magnitude)
        {
            if (configuration.AdjustmentType != PercentChangeInCapacity)
                return $"MinAdjustmentMagnitude is only supported with AdjustmentType {PercentChangeInCapacity}.";
            if (magnitude < 1) return "MinAdjustmentMagnitude must be greater than or equal to 1.";
        }
        if (configuration.Cooldown is < 0) return "Cooldown must be greater than or equal to 0.";
        if (configuration.AdjustmentType == ExactCapacity && configuration.Steps.Any(s => s.Adjustment < 0))
            return "ScalingAdjustment must be greater than or equal to 0 for AdjustmentType ExactCapacity.";
        foreach (var step in configuration.Steps)
        {
            if (step.Lower is null && step.Upper is null)
                return "A step adjustment must specify MetricIntervalLowerBound, MetricIntervalUpperBound or both.";
            if (step.Lower is { } lower && step.Upper is { } upper && upper <= lower)
                return $"MetricIntervalUpperBound ({Show(upper)}) must be greater than MetricIntervalLowerBound ({Show(lower)}).";
        }
        if (configuration.Steps.Count(s => s.Lower is null) > 1)
            return "Only one step adjustment may have an unbounded (null) MetricIntervalLowerBound.";
        if (configuration.Steps.Count(s => s.Upper is null) > 1)
            return "Only one step adjustment may have an unbounded (null) MetricIntervalUpperBound.";
        var ordered = configuration.Steps.OrderBy(s => s.Lower ?? double.NegativeInfinity).ToList();
        for (var i = 1; i < ordered.Count; i++)
        {
            var (previous, next) = (ordered[i - 1].Upper ?? double.PositiveInfinity, ordered[i].Lower ?? double.NegativeInfinity);
            if (previous > next)
                return $"Step adjustments must not overlap: the interval ending at {Show(previous)} overlaps the one starting at {Show(next)}.";
            if (previous < next)
                return $"Step adjustments must not leave gaps: no step adjustment covers the interval from {Show(previous)} to {Show(next)}.";
        }
        return null;
    }

    /// <summary>The step that applies when the metric is <paramref name="breach"/> away from the threshold (metric − threshold), or null.</summary>
    public static StepAdjustment? Step(IReadOnlyList<StepAdjustment> steps, double breach)
        => steps.FirstOrDefault(s => breach >= 0
            ? (s.Lower is not { } lower || breach >= lower) && (s.Upper is not { } upper || breach < upper)
            : (s.Lower is not { } low || breach > low) && (s.Upper is not { } up || breach <= up));

    /// <summary>The capacity the step asks for from <paramref name="current"/> (before Min and Max, which the decision applies).</summary>
    public static int Capacity(StepScalingConfiguration configuration, StepAdjustment step, int current)
    {
        switch (configuration.AdjustmentType)
        {
            case ExactCapacity:
                return step.Adjustment;
            case PercentChangeInCapacity:
                var raw = current * step.Adjustment / 100.0;
                var change = raw switch
                {
                    >= 1 => (int)Math.Floor(raw),
                    > 0 => 1,
                    0 => 0,
                    > -1 => -1,
                    _ => (int)Math.Ceiling(raw),
                };
                if (configuration.MinAdjustmentMagnitude is { } min && change != 0 && Math.Abs(change) < min)
                    change = Math.Sign(change) * min;
                return Math.Max(0, current + change);
            default:
                return Math.Max(0, current + step.Adjustment);
        }
    }

    /// <summary>
    /// What the policy wants when its alarm, on <paramref name="metric"/> against <paramref name="threshold"/>, is in ALARM:
    /// the step's capacity from <paramref name="current"/>, or null when no step covers the metric or the step changes nothing.
    /// </summary>
    public static PolicyWant? Want(string policyName, string alarmName, StepScalingConfiguration configuration, double metric, double threshold, int current)
    {
        if (Step(configuration.Steps, metric - threshold) is not { } step) return null;
        var capacity = Capacity(configuration, step, current);
        return capacity == current ? null : new PolicyWant(policyName, capacity, capacity > current, alarmName, metric);
    }

    /// <summary>The alarm's datapoints reduced as the policy's MetricAggregationType says (Average by default).</summary>
    public static double Aggregate(string aggregation, IReadOnlyList<double> values) => aggregation switch
    {
        "Minimum" => values.Min(),
        "Maximum" => values.Max(),
        _ => values.Average(),
    };

    private static string Show(double value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Application Auto Scaling's policy ARNs, as PutScalingPolicy forms them for an ECS service:
/// <c>arn:aws:autoscaling:region:account:scalingPolicy:id:resource/ecs/service/cluster/service:policyName/name</c>.
/// </summary>
public static class ScalingPolicyArns
{
    /// <summary>The service and policy an ARN names, or null when it is not an ECS service's scaling policy ARN.</summary>
    public static (string Cluster, string Service, string PolicyName)? Parse(string text)
    {
        if (Arn.Parse(text) is not { Service: "autoscaling" } arn) return null;
        var parts = arn.Resource.Split(':');
        if (parts is not ["scalingPolicy", { Length: > 0 }, var resource, var policy]
            || !policy.StartsWith("policyName/", StringComparison.Ordinal)
            || resource.Split('/') is not ["resource", "ecs", "service", { Length: > 0 } cluster, { Length: > 0 } service])
            return null;
        return (cluster, service, policy["policyName/".Length..]);
    }
}
