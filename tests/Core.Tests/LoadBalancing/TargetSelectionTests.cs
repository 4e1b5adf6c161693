using Serverless.Core.LoadBalancing;

namespace Serverless.Core.Tests.LoadBalancing;

/// <summary>ALB's target choice: round robin, slow start's linear ramp, and the lb_cookie that pins a client.</summary>
public sealed class TargetSelectionTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static TargetRow Target(string id, int port = 80) => new("tg1", id, port, null, T0, null, "healthy", null, null);

    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(15, 0.25)]
    [InlineData(30, 0.5)]
    [InlineData(60, 1.0)]
    [InlineData(600, 1.0)]
    public void A_target_in_slow_start_takes_a_share_that_grows_linearly_over_the_duration(int elapsedSeconds, double share)
        => Assert.Equal(share, TargetSelection.Share(T0, 60, T0.AddSeconds(elapsedSeconds)), 6);

    [Fact]
    public void A_target_enters_slow_start_only_when_another_takes_a_full_share_and_it_was_not_serving_before()
    {
        Assert.True(TargetSelection.EntersSlowStart(30, anotherTakesFullShare: true, wasServing: false));
        Assert.False(TargetSelection.EntersSlowStart(0, anotherTakesFullShare: true, wasServing: false));
        Assert.False(TargetSelection.EntersSlowStart(30, anotherTakesFullShare: false, wasServing: false));
        Assert.False(TargetSelection.EntersSlowStart(30, anotherTakesFullShare: true, wasServing: true));
    }

    [Fact]
    public void With_full_shares_the_pick_is_round_robin()
    {
        IReadOnlyList<TargetRow> targets = [Target("a"), Target("b"), Target("c")];
        Assert.Equal(["a", "b", "c", "a"], Enumerable.Range(0, 4).Select(i => TargetSelection.Pick(targets, [1, 1, 1], i, 0.99).Id));
    }

    [Fact]
    public void A_ramping_target_gets_requests_in_proportion_to_its_share()
    {
        IReadOnlyList<TargetRow> targets = [Target("old"), Target("new")];
        // A quarter of the way through slow start: the new target's weight is 0.25 against the old one's 1, a fifth of the requests.
        var picks = Enumerable.Range(0, 1000).Select(i => TargetSelection.Pick(targets, [1, 0.25], i, (i + 0.5) / 1000).Id).ToList();
        Assert.Equal(800, picks.Count(p => p == "old"));
        Assert.Equal(200, picks.Count(p => p == "new"));
        // Just entered: nothing yet.
        Assert.All(Enumerable.Range(0, 100), i => Assert.Equal("old", TargetSelection.Pick(targets, [1, 0], i, i / 100.0).Id));
    }

    [Fact]
    public void The_cookie_pins_a_client_to_its_target_while_that_one_may_take_requests()
    {
        var a = Target("10.0.0.1");
        var b = Target("10.0.0.2");
        var cookie = TargetSelection.CookieValue("tg1", b);
        Assert.DoesNotContain("10.0.0.2", cookie);
        Assert.Same(b, TargetSelection.Sticky(cookie, "tg1", [a, b]));
        // b drained or unhealthy (no longer eligible), another group's cookie, no cookie: a new pick.
        Assert.Null(TargetSelection.Sticky(cookie, "tg1", [a]));
        Assert.Null(TargetSelection.Sticky(cookie, "tg2", [a, b]));
        Assert.Null(TargetSelection.Sticky(null, "tg1", [a, b]));
        Assert.Null(TargetSelection.Sticky("garbage", "tg1", [a, b]));
    }

    [Fact]
    public void The_cookie_is_set_as_ALB_sets_AWSALB_and_AWSALBCORS_expiring_after_the_duration()
    {
        var cookies = TargetSelection.SetCookies("tg1", Target("i-1", 32768), 86400, T0);
        var value = TargetSelection.CookieValue("tg1", Target("i-1", 32768));
        Assert.Equal([$"AWSALB={value}; Expires=Fri, 02 Jan 2026 00:00:00 GMT; Path=/",
                      $"AWSALBCORS={value}; Expires=Fri, 02 Jan 2026 00:00:00 GMT; Path=/; SameSite=None; Secure"], cookies);
    }

    [Fact]
    public void The_stored_attributes_decide_slow_start_and_stickiness()
    {
        var group = new System.Text.Json.Nodes.JsonObject { [ElbDocs.Attributes] = ElbRules.DefaultAttributes() };
        Assert.Equal(0, ElbRules.SlowStartSeconds(group));
        Assert.Null(ElbRules.LbCookieSeconds(group));
        group[ElbDocs.Attributes]!["slow_start.duration_seconds"] = "45";
        group[ElbDocs.Attributes]!["stickiness.enabled"] = "true";
        group[ElbDocs.Attributes]!["stickiness.lb_cookie.duration_seconds"] = "120";
        Assert.Equal(45, ElbRules.SlowStartSeconds(group));
        Assert.Equal(120, ElbRules.LbCookieSeconds(group));
    }
}
