using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.LoadBalancing;

/// <summary>
/// The ELBv2 API through the unchanged <c>aws elbv2</c> CLI: query protocol in, XML out, AWS's errors. Kept to the
/// README's commands; the shapes, defaults and errors in detail are Core tests (ElbApiTests).
/// </summary>
[Collection("control plane 3")]
public sealed class ElbV2CliTests(ControlPlaneFixture plane)
{
    private Task<CliResult> Elb(params string[] args) => plane.AwsAsync(["elbv2", .. args]);

    [Fact]
    public async Task A_load_balancer_with_a_listener_rules_and_targets_is_created_described_and_deleted_with_the_cli()
    {
        var lb = (await Elb("create-load-balancer", "--name", "cli-web", "--tags", "Key=team,Value=blue")).Json["LoadBalancers"]![0]!;
        var lbArn = lb["LoadBalancerArn"]!.GetValue<string>();
        Assert.StartsWith("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/cli-web/", lbArn);
        Assert.Equal("active", lb["State"]!["Code"]!.GetValue<string>());
        Assert.Equal("application", lb["Type"]!.GetValue<string>());

        var tg = (await Elb("create-target-group", "--name", "cli-web-tg", "--protocol", "HTTP", "--port", "8080",
            "--health-check-path", "/health", "--health-check-interval-seconds", "6", "--matcher", "HttpCode=200-299")).Json["TargetGroups"]![0]!;
        var tgArn = tg["TargetGroupArn"]!.GetValue<string>();
        Assert.Equal("instance", tg["TargetType"]!.GetValue<string>());
        Assert.Equal("traffic-port", tg["HealthCheckPort"]!.GetValue<string>());
        Assert.Equal(6, tg["HealthCheckIntervalSeconds"]!.GetValue<int>());
        Assert.Equal(5, tg["HealthCheckTimeoutSeconds"]!.GetValue<int>());
        Assert.Equal("200-299", tg["Matcher"]!["HttpCode"]!.GetValue<string>());

        var port = ControlPlaneFixture.FreePort();
        var listener = (await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", port.ToString(),
            "--default-actions", $"Type=forward,TargetGroupArn={tgArn}")).Json["Listeners"]![0]!;
        var listenerArn = listener["ListenerArn"]!.GetValue<string>();
        var forward = listener["DefaultActions"]![0]!;
        Assert.Equal(tgArn, forward["TargetGroupArn"]!.GetValue<string>());
        Assert.Equal(1, forward["ForwardConfig"]!["TargetGroups"]![0]!["Weight"]!.GetValue<int>());

        var duplicate = await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", port.ToString(),
            "--default-actions", "Type=fixed-response,FixedResponseConfig={StatusCode=404}");
        Assert.Equal("DuplicateListener", duplicate.ErrorCode);

        var rule = (await Elb("create-rule", "--listener-arn", listenerArn, "--priority", "10",
            "--conditions", "Field=path-pattern,Values=/api/*",
            "--actions", "Type=fixed-response,FixedResponseConfig={StatusCode=200,ContentType=text/plain,MessageBody=hi}")).Json["Rules"]![0]!;
        Assert.Equal("10", rule["Priority"]!.GetValue<string>());
        Assert.Equal("/api/*", rule["Conditions"]![0]!["PathPatternConfig"]!["Values"]![0]!.GetValue<string>());
        var rules = (await Elb("describe-rules", "--listener-arn", listenerArn)).Json["Rules"]!.AsArray();
        Assert.Equal(["10", "default"], rules.Select(r => r!["Priority"]!.GetValue<string>()));
        Assert.True(rules[1]!["IsDefault"]!.GetValue<bool>());

        Assert.Equal(0, (await Elb("register-targets", "--target-group-arn", tgArn, "--targets", "Id=i-0abc,Port=9001", "Id=i-0abc,Port=9002")).ExitCode);
        var health = (await Elb("describe-target-health", "--target-group-arn", tgArn)).Json["TargetHealthDescriptions"]!.AsArray();
        Assert.Equal(2, health.Count);
        // No data plane runs in this test: nothing has checked them yet.
        Assert.All(health, h => Assert.Equal("Elb.RegistrationInProgress", h!["TargetHealth"]!["Reason"]!.GetValue<string>()));
        var inUse = (await Elb("describe-target-groups", "--names", "cli-web-tg")).Json["TargetGroups"]![0]!;
        Assert.Equal(lbArn, inUse["LoadBalancerArns"]![0]!.GetValue<string>());

        var tags = (await Elb("describe-tags", "--resource-arns", lbArn)).Json["TagDescriptions"]![0]!["Tags"]!.AsArray();
        Assert.Equal("blue", tags.Single(t => t!["Key"]!.GetValue<string>() == "team")!["Value"]!.GetValue<string>());

        Assert.Equal(0, (await Elb("delete-load-balancer", "--load-balancer-arn", lbArn)).ExitCode);
        Assert.Equal("ListenerNotFound", (await Elb("describe-listeners", "--listener-arns", listenerArn)).ErrorCode);
        Assert.Equal(0, (await Elb("delete-target-group", "--target-group-arn", tgArn)).ExitCode);
        Assert.Equal("LoadBalancerNotFound", (await Elb("describe-load-balancers", "--names", "cli-web")).ErrorCode);
    }
}
