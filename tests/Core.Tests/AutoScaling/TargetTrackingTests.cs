using Serverless.Core.AutoScaling;

namespace Serverless.Core.Tests.AutoScaling;

public sealed class TargetTrackingTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);

    private static double?[] Values(params double?[] values) => values;

    private static double?[] Repeat(double value, int count) => [.. Enumerable.Repeat<double?>(value, count)];

    [Theory]
    [InlineData(new double[] { 80, 80, 80 }, AlarmState.Alarm)]
    [InlineData(new double[] { 40, 80, 80, 80 }, AlarmState.Alarm)]       // only the last 3 count
    [InlineData(new double[] { 80, 50, 80 }, AlarmState.Ok)]              // 50 is not above a target of 50
    [InlineData(new double[] { 80, 80 }, AlarmState.InsufficientData)]    // 2 of 3 datapoints is not enough to alarm
    [InlineData(new double[] { }, AlarmState.InsufficientData)]
    public void AlarmHigh_needs_3_of_3_datapoints_above_the_target(double[] values, AlarmState expected)
        => Assert.Equal(expected, TargetTracking.High([.. values.Select(v => (double?)v)], target: 50));

    [Fact]
    public void AlarmLow_needs_15_of_15_datapoints_below_90_percent_of_the_target()
    {
        Assert.Equal(AlarmState.Alarm, TargetTracking.Low(Repeat(44.9, 15), 50));
        Assert.Equal(AlarmState.Ok, TargetTracking.Low(Repeat(45, 15), 50));                  // 45 is not below 90 % of 50
        Assert.Equal(AlarmState.InsufficientData, TargetTracking.Low(Repeat(10, 14), 50));
        Assert.Equal(AlarmState.Ok, TargetTracking.Low([.. Repeat(10, 14), 60], 50));
    }

    [Fact]
    public void Missing_periods_are_missing_so_the_alarm_looks_further_back_for_its_datapoints()
    {
        Assert.Equal(AlarmState.InsufficientData, TargetTracking.High(Values(null, null, null), 50));
        Assert.Equal(AlarmState.InsufficientData, TargetTracking.High(Values(80, null, 80), 50));
        Assert.Equal(AlarmState.Alarm, TargetTracking.High(Values(80, null, 80, null, 80, null), 50));
        Assert.Equal(AlarmState.Alarm, TargetTracking.High(Values(10, 80, null, 80, null, 80), 50));   // 10 is older than the newest 3
        Assert.Equal(AlarmState.Ok, TargetTracking.High(Values(null, 10, null), 50));
        Assert.Equal(AlarmState.Ok, TargetTracking.High(Values(80, 80, 10, null), 50));
    }

    [Theory]
    [InlineData(2, 75, 50, 3)]      // 2 × 75 / 50 = 3
    [InlineData(2, 60, 50, 3)]      // 2.4 rounds up when scaling out
    [InlineData(1, 400, 50, 8)]
    [InlineData(0, 400, 50, 1)]     // from nothing running, at least one
    public void Scale_out_is_proportional_and_rounds_up(int current, double metric, double target, int expected)
    {
        var want = TargetTracking.Want("p", "high", "low", target, false, Repeat(metric, 3), current);
        Assert.Equal(expected, want!.Capacity);
        Assert.True(want.ScaleOut);
        Assert.Equal("high", want.AlarmName);
    }

    [Theory]
    [InlineData(10, 20, 50, 4)]
    [InlineData(3, 0, 50, 0)]
    [InlineData(5, 44, 50, 4)]      // 4.4 rounds down when scaling in
    public void Scale_in_is_proportional_and_rounds_down(int current, double metric, double target, int expected)
    {
        var want = TargetTracking.Want("p", "high", "low", target, false, Repeat(metric, 16), current);
        Assert.Equal(expected, want!.Capacity);
        Assert.False(want.ScaleOut);
        Assert.Equal("low", want.AlarmName);
    }

    [Fact]
    public void DisableScaleIn_keeps_the_low_alarm_from_acting_and_the_ok_band_does_nothing()
    {
        Assert.Null(TargetTracking.Want("p", "h", "l", 50, disableScaleIn: true, Repeat(10, 16), 4));
        Assert.Null(TargetTracking.Want("p", "h", "l", 50, false, Repeat(48, 16), 4));   // between 45 and 50: neither alarm
        Assert.Null(TargetTracking.Want("p", "h", "l", 50, false, Values(null, null), 4));
    }
}

public sealed class ScalingDecisionTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);

    private static ScalingState State(int desired = 2, int min = 1, int max = 10, bool deploying = false, bool outSuspended = false, bool inSuspended = false,
        DateTimeOffset? lastOut = null, int? lastOutCapacity = null, DateTimeOffset? lastIn = null)
        => new(min, max, desired, deploying, outSuspended, inSuspended, lastOut, lastOutCapacity, lastIn, TimeSpan.FromSeconds(300), TimeSpan.FromSeconds(300));

    private static PolicyWant Out(int capacity, string name = "cpu") => new(name, capacity, true, $"{name}-AlarmHigh", 90);

    private static PolicyWant In(int capacity, string name = "cpu") => new(name, capacity, false, $"{name}-AlarmLow", 10);

    [Fact]
    public void Out_if_any_policy_wants_it_taking_the_largest()
    {
        var change = ScalingDecision.Decide(State(), [Out(4, "cpu"), In(1, "memory"), Out(6, "memory")], 3, Now);
        Assert.Equal(new ScalingChange(2, 6, true, "monitor alarm memory-AlarmHigh in state ALARM triggered policy memory"), change);
    }

    [Fact]
    public void In_only_if_every_policy_wants_it_taking_the_largest()
    {
        Assert.Null(ScalingDecision.Decide(State(desired: 5), [In(2, "cpu"), null], 2, Now));
        Assert.Equal(3, ScalingDecision.Decide(State(desired: 5), [In(2, "cpu"), In(3, "memory")], 2, Now)!.To);
    }

    [Fact]
    public void Min_and_max_always_hold()
    {
        Assert.Equal(10, ScalingDecision.Decide(State(), [Out(50)], 1, Now)!.To);
        Assert.Equal(1, ScalingDecision.Decide(State(desired: 5), [In(0)], 1, Now)!.To);
        Assert.Equal(new ScalingChange(12, 10, false, "maximum capacity was set to 10"), ScalingDecision.Decide(State(desired: 12), [], 0, Now));
        Assert.Equal(new ScalingChange(0, 1, true, "minimum capacity was set to 1"), ScalingDecision.Decide(State(desired: 0), [], 0, Now));
        Assert.Null(ScalingDecision.Decide(State(desired: 10), [Out(12)], 1, Now));
    }

    [Fact]
    public void During_a_scale_out_cooldown_only_a_larger_scale_out_happens()
    {
        var cooling = State(desired: 4, lastOut: Now.AddSeconds(-60), lastOutCapacity: 4);
        Assert.Null(ScalingDecision.Decide(cooling with { Desired = 3 }, [Out(4)], 1, Now));
        Assert.Equal(6, ScalingDecision.Decide(cooling, [Out(6)], 1, Now)!.To);
        var cooled = State(desired: 3, lastOut: Now.AddSeconds(-301), lastOutCapacity: 4);
        Assert.Equal(4, ScalingDecision.Decide(cooled, [Out(4)], 1, Now)!.To);
    }

    [Fact]
    public void A_scale_in_cooldown_blocks_scale_in_but_not_scale_out()
    {
        var cooling = State(desired: 5, lastIn: Now.AddSeconds(-10));
        Assert.Null(ScalingDecision.Decide(cooling, [In(3)], 1, Now));
        Assert.Equal(7, ScalingDecision.Decide(cooling, [Out(7)], 1, Now)!.To);
        Assert.Equal(3, ScalingDecision.Decide(cooling with { LastScaleInAt = Now.AddSeconds(-300) }, [In(3)], 1, Now)!.To);
    }

    [Fact]
    public void No_scale_in_during_a_deployment_or_when_suspended_and_no_scale_out_when_suspended()
    {
        Assert.Null(ScalingDecision.Decide(State(desired: 5, deploying: true), [In(3)], 1, Now));
        Assert.Null(ScalingDecision.Decide(State(desired: 5, inSuspended: true), [In(3)], 1, Now));
        Assert.Null(ScalingDecision.Decide(State(outSuspended: true), [Out(5)], 1, Now));
        Assert.Equal(5, ScalingDecision.Decide(State(deploying: true), [Out(5)], 1, Now)!.To);
    }

    [Fact]
    public void Nothing_happens_without_an_alarm()
    {
        Assert.Null(ScalingDecision.Decide(State(), [null, null], 2, Now));
        Assert.Null(ScalingDecision.Decide(State(), [], 0, Now));
    }
}
