using Serverless.Core.Alarms;
using Serverless.Core.AutoScaling;

namespace Serverless.Core.Tests.Alarms;

/// <summary>CloudWatch's evaluation of a static-threshold alarm: M out of N, and how missing data is treated.</summary>
public sealed class MetricAlarmEvaluationTests
{
    private static AlarmState State(double?[] range, int n, int m, string treat = MetricAlarmEvaluation.Missing, AlarmState current = AlarmState.Ok)
        => MetricAlarmEvaluation.Evaluate(range, n, m, "GreaterThanThreshold", 50, treat, current).State;

    [Fact]
    public void M_of_N_breaching_datapoints_alarm_and_fewer_are_OK()
    {
        Assert.Equal(AlarmState.Alarm, State([60, 10, 70], 3, 2));
        Assert.Equal(AlarmState.Ok, State([60, 10, 10], 3, 2));
        Assert.Equal(AlarmState.Ok, State([60, 50, 70], 3, 3));            // 50 is not greater than 50
        Assert.Equal(AlarmState.Alarm, State([10, 10, 60, 70, 80], 3, 3)); // the newest 3 decide
    }

    [Fact]
    public void With_enough_real_datapoints_in_the_range_missing_data_is_not_needed()
        => Assert.Equal(AlarmState.Alarm, State([60, null, 70, null, 80], 3, 3, MetricAlarmEvaluation.NotBreaching));

    [Theory]
    [InlineData(MetricAlarmEvaluation.Missing, AlarmState.InsufficientData)]
    [InlineData(MetricAlarmEvaluation.Breaching, AlarmState.Alarm)]
    [InlineData(MetricAlarmEvaluation.NotBreaching, AlarmState.Ok)]
    [InlineData(MetricAlarmEvaluation.Ignore, AlarmState.Ok)]           // keeps the current state
    public void No_datapoint_at_all_is_judged_by_TreatMissingData(string treat, AlarmState expected)
        => Assert.Equal(expected, State([null, null, null], 3, 3, treat));

    [Fact]
    public void Missing_datapoints_are_filled_as_few_times_as_possible()
    {
        // One real breaching datapoint of 3 needed: breaching fills make ALARM, notBreaching fills make OK.
        Assert.Equal(AlarmState.Alarm, State([null, 60, null], 3, 3, MetricAlarmEvaluation.Breaching));
        Assert.Equal(AlarmState.Ok, State([null, 60, null], 3, 3, MetricAlarmEvaluation.NotBreaching));
        Assert.Equal(AlarmState.InsufficientData, State([null, 60, null], 3, 3));
        Assert.Equal(AlarmState.Alarm, State([null, 60, null], 3, 3, MetricAlarmEvaluation.Ignore, AlarmState.Alarm));
        // A real non-breaching datapoint makes ALARM unreachable whatever the rest: OK.
        Assert.Equal(AlarmState.Ok, State([null, 10, null], 3, 3));
        // 1 of 3 is enough to alarm: one real breaching datapoint does it.
        Assert.Equal(AlarmState.Alarm, State([null, 60], 3, 1));
    }

    [Fact]
    public void Every_static_comparison_operator_compares_as_named()
    {
        AlarmState One(string op, double v) => MetricAlarmEvaluation.Evaluate([v], 1, 1, op, 50, MetricAlarmEvaluation.Missing, AlarmState.Ok).State;
        Assert.Equal(AlarmState.Alarm, One("GreaterThanOrEqualToThreshold", 50));
        Assert.Equal(AlarmState.Ok, One("GreaterThanThreshold", 50));
        Assert.Equal(AlarmState.Alarm, One("LessThanThreshold", 49));
        Assert.Equal(AlarmState.Alarm, One("LessThanOrEqualToThreshold", 50));
        Assert.Equal(AlarmState.Ok, One("LessThanThreshold", 50));
    }

    [Fact]
    public void The_reason_names_the_datapoints_and_the_threshold()
    {
        var verdict = MetricAlarmEvaluation.Evaluate([60, 70, 80], 3, 2, "GreaterThanThreshold", 50, MetricAlarmEvaluation.Missing, AlarmState.Ok);
        Assert.Equal("Threshold Crossed: 3 out of the last 3 datapoints [60.0, 70.0, 80.0] were greater than the threshold (50.0) (minimum 2 datapoints for OK -> ALARM transition).", verdict.Reason);
        Assert.Equal([60.0, 70, 80], verdict.Datapoints);
    }
}
