namespace Serverless.Core.AutoScaling;

/// <summary>What a scalable target's policies may change now.</summary>
/// <param name="Desired">The service's desired count now.</param>
/// <param name="DeploymentInProgress">ECS does not scale in while a deployment is in progress.</param>
public sealed record ScalingState(
    int Min, int Max, int Desired, bool DeploymentInProgress,
    bool ScaleOutSuspended, bool ScaleInSuspended,
    DateTimeOffset? LastScaleOutAt, int? LastScaleOutCapacity, DateTimeOffset? LastScaleInAt,
    TimeSpan ScaleOutCooldown, TimeSpan ScaleInCooldown);

/// <summary>A change of desired count, with what caused it (an activity's Cause).</summary>
public sealed record ScalingChange(int From, int To, bool ScaleOut, string Cause);

/// <summary>
/// How several policies' wants become one change, with Application Auto Scaling's rules: out if any
/// policy wants it (the largest), in only if every policy wants it (the largest of theirs, the most
/// conservative); Min and Max always hold. Cooldowns: during a scale-out cooldown a scale-out happens
/// only if it is larger than the last one's capacity; a scale-out ends a scale-in cooldown (the caller
/// forgets <see cref="ScalingState.LastScaleInAt"/>); no scale-in during a scale-in cooldown, while a
/// deployment is in progress, or while dynamic scale-in is suspended.
/// </summary>
public static class ScalingDecision
{
    public static ScalingChange? Decide(ScalingState state, IReadOnlyList<PolicyWant?> wants, int policyCount, DateTimeOffset now)
    {
        int Clamp(int capacity) => Math.Clamp(capacity, state.Min, Math.Max(state.Min, state.Max));

        var outs = wants.Where(w => w is { ScaleOut: true }).Select(w => w!).ToList();
        if (outs.Count > 0 && !state.ScaleOutSuspended)
        {
            var largest = outs.MaxBy(w => w.Capacity)!;
            var to = Clamp(largest.Capacity);
            var inCooldown = state.LastScaleOutAt is { } at && now < at + state.ScaleOutCooldown;
            if (to > state.Desired && (!inCooldown || to > (state.LastScaleOutCapacity ?? 0)))
                return new ScalingChange(state.Desired, to, true, $"monitor alarm {largest.AlarmName} in state ALARM triggered policy {largest.PolicyName}");
        }

        var ins = wants.Where(w => w is { ScaleOut: false }).Select(w => w!).ToList();
        if (outs.Count == 0 && ins.Count == policyCount && ins.Count > 0 && !state.ScaleInSuspended && !state.DeploymentInProgress
            && !(state.LastScaleInAt is { } last && now < last + state.ScaleInCooldown))
        {
            var largest = ins.MaxBy(w => w.Capacity)!;
            var to = Clamp(largest.Capacity);
            if (to < state.Desired)
                return new ScalingChange(state.Desired, to, false, $"monitor alarm {largest.AlarmName} in state ALARM triggered policy {largest.PolicyName}");
        }

        // Min and Max hold whatever the alarms say (a target registered or updated around the count).
        var bounded = Clamp(state.Desired);
        if (bounded != state.Desired)
            return new ScalingChange(state.Desired, bounded, bounded > state.Desired,
                bounded > state.Desired ? $"minimum capacity was set to {state.Min}" : $"maximum capacity was set to {state.Max}");
        return null;
    }
}
