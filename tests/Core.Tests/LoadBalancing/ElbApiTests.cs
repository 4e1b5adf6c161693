using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.Http;
using Serverless.Core.Api.Query;
using Serverless.Core.Tests.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.LoadBalancing;

/// <summary>ELBv2 through the shared endpoint in the query protocol, over Azurite: the XML a client reads.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ElbApiTests(AzuriteFixture azurite) : IDisposable
{
    private static readonly XNamespace Ns = ElbQuery.Ns;
    private readonly ApiHarness _api = new(azurite, TestNames.Unique("elb"));

    public void Dispose() => _api.Dispose();

    private sealed record Answer(int Status, XElement Xml)
    {
        public string? Code => Xml.Name.LocalName == "ErrorResponse" ? Xml.Element(Ns + "Error")!.Element(Ns + "Code")!.Value : null;
        public XElement Result => Xml.Elements().First();
        public string Value(params string[] path)
        {
            var node = Result;
            foreach (var name in path) node = name.All(char.IsDigit) ? node.Elements(Ns + "member").ElementAt(int.Parse(name)) : node.Element(Ns + name)!;
            return node.Value;
        }
    }

    private async Task<Answer> CallAsync(string action, params (string Name, string Value)[] parameters)
    {
        var (status, xml) = await ElbQuery.CallAsync(_api, action, parameters);
        return new Answer(status, xml);
    }

    private async Task<string> TargetGroupAsync(string name, params (string, string)[] more)
    {
        var answer = await CallAsync("CreateTargetGroup", [("Name", name), ("Protocol", "HTTP"), ("Port", "80"), .. more]);
        Assert.True(answer.Status == 200, answer.Xml.ToString() + _api.Errors.Last);
        return answer.Value("TargetGroups", "0", "TargetGroupArn");
    }

    [Fact]
    public async Task A_target_group_gets_AWS_defaults_and_the_answer_is_namespaced_XML_with_a_request_id()
    {
        var answer = await CallAsync("CreateTargetGroup", ("Name", "web"), ("Protocol", "HTTP"), ("Port", "8080"),
            ("HealthCheckIntervalSeconds", "6"), ("Matcher.HttpCode", "200-299"), ("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "blue"));
        Assert.True(answer.Status == 200, answer.Xml.ToString() + _api.Errors.Last);
        Assert.Equal(Ns + "CreateTargetGroupResponse", answer.Xml.Name);
        Assert.Equal(Ns + "CreateTargetGroupResult", answer.Result.Name);
        Assert.NotEmpty(answer.Xml.Element(Ns + "ResponseMetadata")!.Element(Ns + "RequestId")!.Value);
        Assert.Equal("traffic-port", answer.Value("TargetGroups", "0", "HealthCheckPort"));
        Assert.Equal("5", answer.Value("TargetGroups", "0", "HealthCheckTimeoutSeconds"));
        Assert.Equal("5", answer.Value("TargetGroups", "0", "HealthyThresholdCount"));
        Assert.Equal("2", answer.Value("TargetGroups", "0", "UnhealthyThresholdCount"));
        Assert.Equal("/", answer.Value("TargetGroups", "0", "HealthCheckPath"));
        Assert.Equal("true", answer.Value("TargetGroups", "0", "HealthCheckEnabled"));
        Assert.Equal("200-299", answer.Value("TargetGroups", "0", "Matcher", "HttpCode"));
        Assert.Equal("instance", answer.Value("TargetGroups", "0", "TargetType"));
        Assert.Null(answer.Result.Descendants(Ns + "_Attributes").FirstOrDefault());

        var attributes = await CallAsync("DescribeTargetGroupAttributes", ("TargetGroupArn", answer.Value("TargetGroups", "0", "TargetGroupArn")));
        var pairs = attributes.Result.Element(Ns + "Attributes")!.Elements(Ns + "member")
            .ToDictionary(m => m.Element(Ns + "Key")!.Value, m => m.Element(Ns + "Value")!.Value);
        Assert.Equal("300", pairs["deregistration_delay.timeout_seconds"]);
        Assert.Equal("0", pairs["slow_start.duration_seconds"]);
    }

    [Fact]
    public async Task Bad_input_gets_the_query_protocols_ErrorResponse_with_the_models_codes()
    {
        var missing = await CallAsync("CreateTargetGroup", ("Protocol", "HTTP"));
        Assert.Equal(400, missing.Status);
        Assert.Equal(Ns + "ErrorResponse", missing.Xml.Name);
        Assert.Equal("ValidationError", missing.Code);
        Assert.Equal("Sender", missing.Xml.Element(Ns + "Error")!.Element(Ns + "Type")!.Value);
        Assert.NotEmpty(missing.Xml.Element(Ns + "RequestId")!.Value);

        Assert.Equal("ValidationError", (await CallAsync("CreateTargetGroup", ("Name", "x"), ("Protocol", "HTTP"), ("Port", "eighty"))).Code);
        Assert.Equal("ValidationError", (await CallAsync("CreateTargetGroup", ("Name", "x"), ("Protocol", "HTTP"), ("Port", "80"), ("HealthCheckIntervalSeconds", "5"), ("HealthCheckTimeoutSeconds", "5"))).Code);
        Assert.Equal("InvalidAction", (await CallAsync("LaunchRockets")).Code);
        Assert.Equal("TargetGroupNotFound", (await CallAsync("DescribeTargetGroups", ("Names.member.1", "nope"))).Code);

        var arn = await TargetGroupAsync("dup");
        Assert.Equal("DuplicateTargetGroupName", (await CallAsync("CreateTargetGroup", ("Name", "dup"), ("Protocol", "HTTP"), ("Port", "81"))).Code);
        Assert.Equal("ValidationError", (await CallAsync("ModifyTargetGroupAttributes", ("TargetGroupArn", arn),
            ("Attributes.member.1.Key", "deregistration_delay.timeout_seconds"), ("Attributes.member.1.Value", "4000"))).Code);
    }

    [Fact]
    public async Task Listener_ports_and_rule_priorities_are_unique_and_forward_weights_must_not_sum_to_zero()
    {
        var lb = await CallAsync("CreateLoadBalancer", ("Name", "edge"));
        var lbArn = lb.Value("LoadBalancers", "0", "LoadBalancerArn");
        var blue = await TargetGroupAsync("blue");
        var green = await TargetGroupAsync("green");

        var listener = await CallAsync("CreateListener", ("LoadBalancerArn", lbArn), ("Protocol", "HTTP"), ("Port", "18080"),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", blue),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight", "3"),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn", green),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight", "1"));
        Assert.True(listener.Status == 200, listener.Xml.ToString());
        var listenerArn = listener.Value("Listeners", "0", "ListenerArn");
        Assert.Equal("3", listener.Value("Listeners", "0", "DefaultActions", "0", "ForwardConfig", "TargetGroups", "0", "Weight"));

        var other = await CallAsync("CreateLoadBalancer", ("Name", "edge2"));
        Assert.Equal("DuplicateListener", (await CallAsync("CreateListener", ("LoadBalancerArn", other.Value("LoadBalancers", "0", "LoadBalancerArn")),
            ("Port", "18080"), ("DefaultActions.member.1.Type", "fixed-response"), ("DefaultActions.member.1.FixedResponseConfig.StatusCode", "404"))).Code);
        Assert.Equal("TargetGroupAssociationLimit", (await CallAsync("CreateListener", ("LoadBalancerArn", other.Value("LoadBalancers", "0", "LoadBalancerArn")),
            ("Port", "18081"), ("DefaultActions.member.1.Type", "forward"), ("DefaultActions.member.1.TargetGroupArn", blue))).Code);

        Assert.Equal("InvalidLoadBalancerAction", (await CallAsync("ModifyListener", ("ListenerArn", listenerArn),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", blue),
            ("DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight", "0"))).Code);

        (string, string)[] Rule(string priority, string path) =>
        [
            ("ListenerArn", listenerArn), ("Priority", priority), ("Conditions.member.1.Field", "path-pattern"),
            ("Conditions.member.1.Values.member.1", path), ("Actions.member.1.Type", "fixed-response"), ("Actions.member.1.FixedResponseConfig.StatusCode", "200"),
        ];
        var first = await CallAsync("CreateRule", Rule("5", "/a/*"));
        var second = await CallAsync("CreateRule", Rule("6", "/b/*"));
        Assert.Equal("PriorityInUse", (await CallAsync("CreateRule", Rule("5", "/c/*"))).Code);

        // Swapping two priorities is one atomic change.
        var swapped = await CallAsync("SetRulePriorities",
            ("RulePriorities.member.1.RuleArn", first.Value("Rules", "0", "RuleArn")), ("RulePriorities.member.1.Priority", "6"),
            ("RulePriorities.member.2.RuleArn", second.Value("Rules", "0", "RuleArn")), ("RulePriorities.member.2.Priority", "5"));
        Assert.True(swapped.Status == 200, swapped.Xml.ToString());
        var rules = await CallAsync("DescribeRules", ("ListenerArn", listenerArn));
        Assert.Equal(["5", "6", "default"], rules.Result.Element(Ns + "Rules")!.Elements(Ns + "member").Select(r => r.Element(Ns + "Priority")!.Value));
        Assert.Equal("/b/*", rules.Value("Rules", "0", "Conditions", "0", "Values", "0"));
        Assert.Equal("OperationNotPermitted", (await CallAsync("DeleteRule", ("RuleArn", rules.Value("Rules", "2", "RuleArn")))).Code);

        Assert.Equal("ResourceInUse", (await CallAsync("DeleteTargetGroup", ("TargetGroupArn", green))).Code);
        Assert.Equal(200, (await CallAsync("DeleteListener", ("ListenerArn", listenerArn))).Status);
        Assert.Equal(200, (await CallAsync("DeleteTargetGroup", ("TargetGroupArn", green))).Status);
        // The port is free again once its listener is gone.
        Assert.Equal(200, (await CallAsync("CreateListener", ("LoadBalancerArn", lbArn), ("Port", "18080"),
            ("DefaultActions.member.1.Type", "fixed-response"), ("DefaultActions.member.1.FixedResponseConfig.StatusCode", "404"))).Status);
    }

    [Fact]
    public async Task Targets_report_unused_until_a_listener_forwards_to_them_and_draining_after_deregistration()
    {
        var tg = await TargetGroupAsync("pool", ("TargetType", "ip"));
        Assert.Equal("InvalidTarget", (await CallAsync("RegisterTargets", ("TargetGroupArn", tg), ("Targets.member.1.Id", "not-an-ip"))).Code);
        Assert.Equal(200, (await CallAsync("RegisterTargets", ("TargetGroupArn", tg), ("Targets.member.1.Id", "127.0.0.1"), ("Targets.member.1.Port", "9000"))).Status);

        var unused = await CallAsync("DescribeTargetHealth", ("TargetGroupArn", tg));
        Assert.Equal("unused", unused.Value("TargetHealthDescriptions", "0", "TargetHealth", "State"));
        Assert.Equal("Target.NotInUse", unused.Value("TargetHealthDescriptions", "0", "TargetHealth", "Reason"));
        Assert.Equal("9000", unused.Value("TargetHealthDescriptions", "0", "HealthCheckPort"));

        var lb = await CallAsync("CreateLoadBalancer", ("Name", "pool-lb"));
        await CallAsync("CreateListener", ("LoadBalancerArn", lb.Value("LoadBalancers", "0", "LoadBalancerArn")), ("Port", "18090"),
            ("DefaultActions.member.1.Type", "forward"), ("DefaultActions.member.1.TargetGroupArn", tg));
        var initial = await CallAsync("DescribeTargetHealth", ("TargetGroupArn", tg));
        Assert.Equal("initial", initial.Value("TargetHealthDescriptions", "0", "TargetHealth", "State"));
        Assert.Equal("Elb.RegistrationInProgress", initial.Value("TargetHealthDescriptions", "0", "TargetHealth", "Reason"));

        var unknown = await CallAsync("DescribeTargetHealth", ("TargetGroupArn", tg), ("Targets.member.1.Id", "127.0.0.2"), ("Targets.member.1.Port", "9000"));
        Assert.Equal("Target.NotRegistered", unknown.Value("TargetHealthDescriptions", "0", "TargetHealth", "Reason"));
        Assert.Equal("InvalidTarget", (await CallAsync("DeregisterTargets", ("TargetGroupArn", tg), ("Targets.member.1.Id", "127.0.0.2"), ("Targets.member.1.Port", "9000"))).Code);

        Assert.Equal(200, (await CallAsync("DeregisterTargets", ("TargetGroupArn", tg), ("Targets.member.1.Id", "127.0.0.1"), ("Targets.member.1.Port", "9000"))).Status);
        var draining = await CallAsync("DescribeTargetHealth", ("TargetGroupArn", tg));
        Assert.Equal("draining", draining.Value("TargetHealthDescriptions", "0", "TargetHealth", "State"));
    }
}
