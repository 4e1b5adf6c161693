using Serverless.Core.AutoScaling;

namespace Serverless.Core.Tests.AutoScaling;

public sealed class StepScalingTests
{
    private static StepScalingConfiguration Config(string type, int? minMagnitude = null, params StepAdjustment[] steps)
        => new(type, steps, minMagnitude, null, "Average");

    // The Application Auto Scaling guide's example: threshold 50; 0–10 above: 0, 10–20 above: +10 %, 20 and more: +30 %;
    // 0–10 below: 0, 10–20 below: −10 %, 20 and more below: −30 %.
    private static readonly StepScalingConfiguration GuideOut = Config(StepScaling.PercentChangeInCapacity, null,
        new StepAdjustment(0, 10, 0), new StepAdjustment(10, 20, 10), new StepAdjustment(20, null, 30));
    private static readonly StepScalingConfiguration GuideIn = Config(StepScaling.PercentChangeInCapacity, null,
        new StepAdjustment(-10, 0, 0), new StepAdjustment(-20, -10, -10), new StepAdjustment(null, -20, -30));

    [Fact]
    public void The_guides_worked_example_goes_from_10_to_11_14_13_and_10()
    {
        var capacity = 10;
        foreach (var (metric, config, expected) in new[] { (60.0, GuideOut, 11), (70.0, GuideOut, 14), (40.0, GuideIn, 13), (30.0, GuideIn, 10) })
        {
            var want = StepScaling.Want("p", "a", config, metric, 50, capacity);
            Assert.NotNull(want);
            Assert.Equal(expected, want.Capacity);
            Assert.Equal(expected > capacity, want.ScaleOut);
            capacity = want.Capacity;
        }
    }

    [Theory]
    [InlineData(10.0, 1)]      // lower bound inclusive above the threshold
    [InlineData(9.999, 0)]
    [InlineData(20.0, 2)]      // upper bound exclusive: 20 is the next step's
    [InlineData(-9.999, 0)]
    [InlineData(-10.0, 1)]     // below the threshold the upper bound is inclusive and the lower exclusive: −10 is the −20..−10 step's
    [InlineData(-20.0, 2)]
    [InlineData(-20.5, 2)]
    public void Bounds_are_inclusive_and_exclusive_as_AWS_documents(double breach, int step)
    {
        var steps = new[] { new StepAdjustment(-10, 10, 0), new StepAdjustment(10, 20, 1), new StepAdjustment(20, null, 2),
            new StepAdjustment(-20, -10, 1), new StepAdjustment(null, -20, 2) };
        Assert.Equal(step, StepScaling.Step(steps, breach)!.Adjustment);
    }

    [Theory]
    [InlineData(10, 25, 12)]    // 2.5 rounds down to 2
    [InlineData(2, 25, 3)]      // 0.5 rounds to 1
    [InlineData(2, -25, 1)]     // −0.5 rounds to −1
    [InlineData(10, -25, 8)]    // −2.5 rounds towards zero to −2
    [InlineData(3, -100, 0)]
    public void Percent_changes_round_as_AWS_rounds(int current, int percent, int expected)
        => Assert.Equal(expected, StepScaling.Capacity(Config(StepScaling.PercentChangeInCapacity), new StepAdjustment(0, null, percent), current));

    [Fact]
    public void MinAdjustmentMagnitude_makes_a_small_percent_change_larger()
    {
        var config = Config(StepScaling.PercentChangeInCapacity, 3);
        Assert.Equal(13, StepScaling.Capacity(config, new StepAdjustment(0, null, 10), 10));     // +1 becomes +3
        Assert.Equal(7, StepScaling.Capacity(config, new StepAdjustment(null, 0, -10), 10));     // −1 becomes −3
        Assert.Equal(15, StepScaling.Capacity(config, new StepAdjustment(0, null, 50), 10));     // +5 is already larger
    }

    [Fact]
    public void Change_and_exact_capacity_add_and_set()
    {
        Assert.Equal(13, StepScaling.Capacity(Config(StepScaling.ChangeInCapacity), new StepAdjustment(0, null, 3), 10));
        Assert.Equal(0, StepScaling.Capacity(Config(StepScaling.ChangeInCapacity), new StepAdjustment(null, 0, -30), 10));
        Assert.Equal(4, StepScaling.Capacity(Config(StepScaling.ExactCapacity), new StepAdjustment(0, null, 4), 10));
        Assert.Null(StepScaling.Want("p", "a", Config(StepScaling.ChangeInCapacity, null, new StepAdjustment(0, 10, 1)), 75, 50, 10));   // no step covers +25
    }

    [Theory]
    [InlineData("overlap", "must not overlap")]
    [InlineData("gap", "must not leave gaps")]
    [InlineData("two-unbounded-upper", "unbounded (null) MetricIntervalUpperBound")]
    [InlineData("no-bounds", "must specify MetricIntervalLowerBound, MetricIntervalUpperBound or both")]
    [InlineData("upper-below-lower", "must be greater than MetricIntervalLowerBound")]
    [InlineData("magnitude-with-change", "only supported with AdjustmentType PercentChangeInCapacity")]
    [InlineData("empty", "at least one step adjustment")]
    [InlineData("valid", null)]
    public void Invalid_steps_are_refused_with_what_is_wrong(string case_, string? problem)
    {
        var config = case_ switch
        {
            "overlap" => Config(StepScaling.ChangeInCapacity, null, new StepAdjustment(0, 15, 1), new StepAdjustment(10, null, 2)),
            "gap" => Config(StepScaling.ChangeInCapacity, null, new StepAdjustment(0, 10, 1), new StepAdjustment(15, null, 2)),
            "two-unbounded-upper" => Config(StepScaling.ChangeInCapacity, null, new StepAdjustment(0, null, 1), new StepAdjustment(10, null, 2)),
            "no-bounds" => Config(StepScaling.ChangeInCapacity, null, new StepAdjustment(null, null, 1)),
            "upper-below-lower" => Config(StepScaling.ChangeInCapacity, null, new StepAdjustment(10, 5, 1)),
            "magnitude-with-change" => Config(StepScaling.ChangeInCapacity, 2, new StepAdjustment(0, null, 1)),
            "empty" => Config(StepScaling.ChangeInCapacity),
            _ => Config(StepScaling.PercentChangeInCapacity, 2, new StepAdjustment(null, 0, -10), new StepAdjustment(0, 10, 0), new StepAdjustment(10, null, 20)),
        };
        var found = StepScaling.Problem(config);
        if (problem is null) Assert.Null(found);
        else Assert.Contains(problem, found);
    }

    [Fact]
    public void A_policy_arn_names_its_service_and_policy()
    {
        Assert.Equal(("prod", "web", "step-out"),
            ScalingPolicyArns.Parse("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:4f5c:resource/ecs/service/prod/web:policyName/step-out"));
        Assert.Null(ScalingPolicyArns.Parse("arn:aws:sns:us-east-1:000000000000:topic"));
        Assert.Null(ScalingPolicyArns.Parse("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:4f5c:resource/dynamodb/table/t:policyName/p"));
    }
}
