using System.Text.Json.Nodes;
using Serverless.Core.LoadBalancing;

namespace Serverless.Core.Tests.LoadBalancing;

public sealed class RoutingTests
{
    private static RouteRequest Request(string path = "/", string host = "example.com", Dictionary<string, string[]>? headers = null, params (string, string)[] query)
        => new(host, path, name => headers?.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value ?? [], () => query);

    private static RouteCondition Condition(string field, params string[] values) => new(field, null, values.Select(v => ((string?)null, v)).ToList());

    private static readonly RouteAction Fixed = new FixedResponseAction(200, null, null);

    [Theory]
    [InlineData("/api/*", "/api/users", true)]
    [InlineData("/api/*", "/API/users", false)]
    [InlineData("/img/?.png", "/img/a.png", true)]
    [InlineData("/img/?.png", "/img/ab.png", false)]
    [InlineData("/exact", "/exact/more", false)]
    public void Path_patterns_match_whole_paths_case_sensitively_with_wildcards(string pattern, string path, bool matches)
        => Assert.Equal(matches, Routing.Matches(Condition("path-pattern", pattern), Request(path)));

    [Fact]
    public void Host_headers_match_without_the_port_and_ignoring_case()
    {
        Assert.True(Routing.Matches(Condition("host-header", "*.Example.com"), Request(host: "api.example.com:8080")));
        Assert.False(Routing.Matches(Condition("host-header", "*.example.com"), Request(host: "example.org")));
    }

    [Fact]
    public void Http_header_and_query_string_conditions_match_any_of_their_values()
    {
        var header = new RouteCondition("http-header", "X-Env", [(null, "blue"), (null, "gr*")]);
        Assert.True(Routing.Matches(header, Request(headers: new() { ["x-env"] = ["green"] })));
        Assert.False(Routing.Matches(header, Request(headers: new() { ["x-env"] = ["red"] })));
        Assert.False(Routing.Matches(header, Request()));

        var query = new RouteCondition("query-string", null, [("version", "v2"), (null, "beta")]);
        Assert.True(Routing.Matches(query, Request(query: ("version", "V2"))));
        Assert.True(Routing.Matches(query, Request(query: ("anything", "beta"))));
        Assert.False(Routing.Matches(query, Request(query: ("version", "v1"))));
    }

    [Fact]
    public void The_lowest_priority_rule_whose_conditions_all_match_wins_and_the_default_rule_catches_the_rest()
    {
        var api = new RouteRule(5, [Condition("path-pattern", "/api/*"), Condition("host-header", "a.example")], Fixed);
        var anyApi = new RouteRule(10, [Condition("path-pattern", "/api/*")], Fixed);
        var fallback = new RouteRule(int.MaxValue, [], Fixed);
        var listener = new RouteListener("l", 80, [api, anyApi, fallback]);

        Assert.Same(api, Routing.Match(listener, Request("/api/x", "a.example")));
        Assert.Same(anyApi, Routing.Match(listener, Request("/api/x", "b.example")));
        Assert.Same(fallback, Routing.Match(listener, Request("/web")));
    }

    [Fact]
    public void A_weighted_forward_splits_by_weight_and_never_picks_a_zero_weight_group()
    {
        var forward = new ForwardAction([("blue", 3), ("green", 1), ("grey", 0)]);
        Assert.Equal("blue", Routing.PickGroup(forward, 0.0));
        Assert.Equal("blue", Routing.PickGroup(forward, 0.74));
        Assert.Equal("green", Routing.PickGroup(forward, 0.75));
        Assert.Equal("green", Routing.PickGroup(forward, 0.9999));
    }

    private static TargetRow Target(string id, bool draining = false)
        => new("tg", id, 80, null, DateTimeOffset.UnixEpoch, draining ? DateTimeOffset.UnixEpoch : null, null, null, null);

    [Fact]
    public void Draining_targets_get_no_new_requests_and_with_none_healthy_the_rest_all_do()
    {
        var healthy = Target("a");
        var sick = Target("b");
        var draining = Target("c", draining: true);
        Assert.Equal([healthy], Routing.Eligible([healthy, sick, draining], t => t.Id == "a" ? "healthy" : "unhealthy"));
        Assert.Equal([healthy, sick], Routing.Eligible([healthy, sick, draining], _ => "unhealthy"));
        Assert.Empty(Routing.Eligible([draining], _ => "healthy"));
    }

    [Fact]
    public void A_redirect_fills_in_the_requests_parts()
    {
        var redirect = new RedirectAction("HTTPS", "443", "#{host}", "/new/#{path}", "#{query}", 301);
        Assert.Equal("https://example.com:443/new/old/page?a=1", Routing.RedirectLocation(redirect, "http", "example.com:8080", 8080, "/old/page", "?a=1"));
    }

    [Fact]
    public void Health_turns_after_the_thresholds_of_results_in_a_row()
    {
        var state = TargetHealthState.Initial;
        state = HealthChecks.Next(state, HealthCheckResult.Pass, healthyThreshold: 2, unhealthyThreshold: 2);
        Assert.Equal("initial", state.State);
        state = HealthChecks.Next(state, HealthCheckResult.Pass, 2, 2);
        Assert.Equal("healthy", state.State);
        state = HealthChecks.Next(state, HealthCheckResult.Mismatch(500), 2, 2);
        Assert.Equal("healthy", state.State);
        state = HealthChecks.Next(state, HealthCheckResult.Pass, 2, 2);
        state = HealthChecks.Next(state, HealthCheckResult.Timeout, 2, 2);
        state = HealthChecks.Next(state, HealthCheckResult.Timeout, 2, 2);
        Assert.Equal(("unhealthy", "Target.Timeout"), (state.State, state.Reason));
    }

    [Fact]
    public void The_routing_table_is_built_from_the_stored_configuration()
    {
        JsonObject Forward(string arn) => new() { ["Type"] = "forward", ["ForwardConfig"] = new JsonObject { ["TargetGroups"] = new JsonArray(new JsonObject { ["TargetGroupArn"] = arn, ["Weight"] = 1 }) } };
        var group = new JsonObject
        {
            ["TargetGroupArn"] = "tg-arn", ["TargetType"] = "ip", ["Port"] = 80, ["HealthCheckEnabled"] = true, ["HealthCheckPath"] = "/", ["HealthCheckPort"] = "traffic-port",
            ["HealthCheckIntervalSeconds"] = 30, ["HealthCheckTimeoutSeconds"] = 5, ["HealthyThresholdCount"] = 5, ["UnhealthyThresholdCount"] = 2,
            ["Matcher"] = new JsonObject { ["HttpCode"] = "200" }, [ElbDocs.Id] = "g1", [ElbDocs.Attributes] = new JsonObject { ["deregistration_delay.timeout_seconds"] = "7" },
        };
        var rows = new List<ElbRow>
        {
            new("tg|web", group, [], default),
            new("listener|l1", new JsonObject { ["ListenerArn"] = "l-arn", ["Port"] = 8080 }, [], default),
            new("rule|l1|default", new JsonObject { ["IsDefault"] = true, ["Priority"] = "default", ["Conditions"] = new JsonArray(), ["Actions"] = new JsonArray(Forward("tg-arn")), [ElbDocs.ListenerArn] = "l-arn" }, [], default),
            new("rule|l1|r1", new JsonObject
            {
                ["IsDefault"] = false, ["Priority"] = "3", [ElbDocs.ListenerArn] = "l-arn",
                ["Conditions"] = new JsonArray(new JsonObject { ["Field"] = "path-pattern", ["PathPatternConfig"] = new JsonObject { ["Values"] = new JsonArray("/x") } }),
                ["Actions"] = new JsonArray(new JsonObject { ["Type"] = "fixed-response", ["FixedResponseConfig"] = new JsonObject { ["StatusCode"] = "404" } }),
            }, [], default),
        };
        var table = Routing.Build(rows, id => id == "g1" ? [Target("10.0.0.1")] : []);
        var listener = Assert.Single(table.Listeners);
        Assert.Equal(8080, listener.Port);
        Assert.Equal([3, int.MaxValue], listener.Rules.Select(r => r.Priority));
        Assert.Equal(7, table.TargetGroups["tg-arn"].DeregistrationDelaySeconds);
        Assert.IsType<FixedResponseAction>(Routing.Match(listener, Request("/x"))!.Action);
        Assert.IsType<ForwardAction>(Routing.Match(listener, Request("/y"))!.Action);
    }
}
