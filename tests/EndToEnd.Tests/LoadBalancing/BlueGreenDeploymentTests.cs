using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.LoadBalancing;

/// <summary>
/// ECS-native blue/green on real Docker, driven with the AWS CLI: a service behind a production and a test
/// listener is updated under a steady request loop; the deployment pauses at a PAUSE hook with test traffic
/// on the new revision and production on the old one, is continued, and completes with zero failed requests.
/// A second update to a revision whose container health check fails trips the circuit breaker and rolls
/// back, production traffic never leaving the serving revision.
/// </summary>
[Collection("control plane 5")]
public sealed class BlueGreenDeploymentTests(ControlPlaneFixture plane) : IAsyncLifetime
{
    private const string Image = "local/busybox:latest";

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => plane.StopWorkersAsync();

    private Task<CliResult> Elb(params string[] args) => plane.AwsAsync(["elbv2", .. args]);

    private static string Web(string version, string check = "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1") => $$$"""
        [{"name":"web","image":"{{{Image}}}","memory":32,"essential":true,
          "entryPoint":["sh","-c"],"command":["echo {{{version}}} > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
          "portMappings":[{"containerPort":8080,"hostPort":0}],
          "healthCheck":{"command":["CMD-SHELL","{{{check}}}"],"interval":5,"timeout":5,"retries":2,"startPeriod":0}}]
        """;

    private static string Get(CliResult result, params string[] path)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
        JsonNode? node = result.Json;
        foreach (var p in path) node = int.TryParse(p, out var i) ? node![i] : node![p];
        return node!.GetValue<string>();
    }

    [Fact]
    public async Task A_blue_green_update_pauses_for_test_traffic_completes_with_no_failed_request_and_a_failing_one_rolls_back()
    {
        var cluster = $"bg-{Guid.NewGuid():N}"[..20];
        (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json.ToString();
        // The task metadata endpoint is not what this test is about (and needs a bridge gateway Docker may not list).
        await plane.StartWorkerAsync(cluster, settings: new Dictionary<string, string> { ["Worker__MetadataPort"] = "-1" });
        await using var balancer = LoadBalancerProcess.Start(plane);
        string Register(CliResult r) => Get(r, "taskDefinition", "taskDefinitionArn");
        var v1 = Register(await plane.EcsAsync("register-task-definition", "--family", $"{cluster}-web", "--container-definitions", Web("v1")));
        var v2 = Register(await plane.EcsAsync("register-task-definition", "--family", $"{cluster}-web", "--container-definitions", Web("v2")));
        var bad = Register(await plane.EcsAsync("register-task-definition", "--family", $"{cluster}-web", "--container-definitions", Web("v3", "exit 1")));

        var lbArn = Get(await Elb("create-load-balancer", "--name", cluster), "LoadBalancers", "0", "LoadBalancerArn");
        async Task<string> GroupAsync(string name)
        {
            var arn = Get(await Elb("create-target-group", "--name", name, "--protocol", "HTTP", "--port", "8080",
                "--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2"), "TargetGroups", "0", "TargetGroupArn");
            await Elb("modify-target-group-attributes", "--target-group-arn", arn, "--attributes", "Key=deregistration_delay.timeout_seconds,Value=3");
            return arn;
        }
        var blue = await GroupAsync($"{cluster}-b");
        var green = await GroupAsync($"{cluster}-g");
        var forward = $$$"""[{"Type":"forward","ForwardConfig":{"TargetGroups":[{"TargetGroupArn":"{{{blue}}}","Weight":1},{"TargetGroupArn":"{{{green}}}","Weight":0}]}}]""";
        async Task<(int Port, string Rule)> ListenerAsync()
        {
            var port = ControlPlaneFixture.FreePort();
            var listener = Get(await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", port.ToString(), "--default-actions", forward), "Listeners", "0", "ListenerArn");
            return (port, Get(await Elb("describe-rules", "--listener-arn", listener), "Rules", "0", "RuleArn"));
        }
        var (prodPort, prodRule) = await ListenerAsync();
        var (testPort, testRule) = await ListenerAsync();

        var loadBalancers = $$$"""[{"targetGroupArn":"{{{blue}}}","containerName":"web","containerPort":8080,"advancedConfiguration":{"alternateTargetGroupArn":"{{{green}}}","productionListenerRule":"{{{prodRule}}}","testListenerRule":"{{{testRule}}}","roleArn":"arn:aws:iam::000000000000:role/ecs-elb"}}]""";
        const string configuration = """{"strategy":"BLUE_GREEN","bakeTimeInMinutes":0,"deploymentCircuitBreaker":{"enable":true,"rollback":true},"lifecycleHooks":[{"targetType":"PAUSE","lifecycleStages":["POST_TEST_TRAFFIC_SHIFT"]}]}""";
        (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", v1, "--desired-count", "2",
            "--load-balancers", loadBalancers, "--deployment-configuration", configuration)).Json.ToString();
        var created = await plane.WaitAsync("services-stable", cluster, ["web"]);
        Assert.True(created.ExitCode == 0, created.Stderr);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var stop = new CancellationTokenSource();
        var failures = new List<string>();
        var versions = new List<string>();
        var loop = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await http.GetAsync($"http://127.0.0.1:{prodPort}/");
                    var body = (await response.Content.ReadAsStringAsync()).Trim();
                    lock (versions) { if (response.IsSuccessStatusCode) versions.Add(body); else failures.Add($"{(int)response.StatusCode} {body}"); }
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    lock (versions) failures.Add(e.Message);
                }
                await Task.Delay(20);
            }
        });
        await WaitForAsync(() => { lock (versions) return versions.Count > 10; }, "no request succeeded before the deployment");
        Assert.All(versions.ToList(), v => Assert.Equal("v1", v));
        // The load balancer was started with the service: until its first health checks pass, its
        // targets are in their initial state and a request finds none. What counts is the deployment.
        lock (versions) failures.Clear();

        // Blue/green to v2: paused at POST_TEST_TRAFFIC_SHIFT, test traffic on v2 and production on v1.
        (await plane.EcsAsync("update-service", "--cluster", cluster, "--service", "web", "--task-definition", v2)).Json.ToString();
        var deploymentArn = await LatestDeploymentAsync(cluster, v1Count: 1);
        JsonNode? paused = null;
        await WaitForAsync(async () =>
        {
            paused = (await plane.EcsAsync("describe-service-deployments", "--service-deployment-arns", deploymentArn)).Json["serviceDeployments"]![0];
            return paused!["lifecycleHookDetails"]?[0]?["status"]?.GetValue<string>() == "AWAITING_ACTION";
        }, "the deployment never paused at its hook", seconds: 180);
        Assert.Equal("POST_TEST_TRAFFIC_SHIFT", paused!["lifecycleStage"]!.GetValue<string>());
        Assert.Equal("IN_PROGRESS", paused["status"]!.GetValue<string>());
        Assert.Equal("v2", (await http.GetStringAsync($"http://127.0.0.1:{testPort}/")).Trim());
        Assert.Equal("v1", (await http.GetStringAsync($"http://127.0.0.1:{prodPort}/")).Trim());

        var hookId = paused["lifecycleHookDetails"]![0]!["hookId"]!.GetValue<string>();
        Get(await plane.EcsAsync("continue-service-deployment", "--service-deployment-arn", deploymentArn, "--hook-id", hookId), "serviceDeploymentArn");
        await WaitForAsync(async () => await StatusAsync(deploymentArn) == "SUCCESSFUL", "the deployment never completed", seconds: 120);
        await WaitForAsync(() => { lock (versions) return versions.Count > 20 && versions.TakeLast(20).All(v => v == "v2"); }, "production never moved to v2");
        await WaitForAsync(async () => (await plane.ListTaskArnsAsync(cluster, "web")).Count == 2, "blue tasks were not stopped");
        lock (versions) Assert.True(failures.Count == 0, $"{failures.Count} of {failures.Count + versions.Count} requests failed during blue/green: {string.Join("; ", failures.Take(5))}\n{balancer.Log}");

        // A revision whose container health check fails: the breaker rolls back and production stays on v2.
        lock (versions) versions.Clear();
        (await plane.EcsAsync("update-service", "--cluster", cluster, "--service", "web", "--task-definition", bad)).Json.ToString();
        var failing = await LatestDeploymentAsync(cluster, v1Count: 2);
        await WaitForAsync(async () => await StatusAsync(failing) == "ROLLBACK_SUCCESSFUL", "the failing deployment never rolled back", seconds: 240);
        var described = (await plane.EcsAsync("describe-service-deployments", "--service-deployment-arns", failing)).Json["serviceDeployments"]![0]!;
        Assert.Equal("TRIGGERED", described["deploymentCircuitBreaker"]!["status"]!.GetValue<string>());
        Assert.Equal(v2, (await plane.DescribeServiceAsync(cluster, "web"))["taskDefinition"]!.GetValue<string>());
        await stop.CancelAsync();
        await loop;
        Assert.True(failures.Count == 0, $"{failures.Count} requests failed during the rollback: {string.Join("; ", failures.Take(5))}\n{balancer.Log}");
        Assert.All(versions, v => Assert.Equal("v2", v));

        (await plane.EcsAsync("delete-service", "--cluster", cluster, "--service", "web", "--force")).Json.ToString();
        await Elb("delete-load-balancer", "--load-balancer-arn", lbArn);
    }

    /// <summary>The newest service deployment, once the service lists more than <paramref name="v1Count"/> of them.</summary>
    private async Task<string> LatestDeploymentAsync(string cluster, int v1Count)
    {
        string? arn = null;
        await WaitForAsync(async () =>
        {
            var list = (await plane.EcsAsync("list-service-deployments", "--cluster", cluster, "--service", "web")).Json["serviceDeployments"]!.AsArray();
            arn = list.Count > v1Count ? list[0]!["serviceDeploymentArn"]!.GetValue<string>() : null;
            return arn is not null;
        }, "the new service deployment was not listed");
        return arn!;
    }

    private async Task<string> StatusAsync(string deploymentArn)
        => (await plane.EcsAsync("describe-service-deployments", "--service-deployment-arns", deploymentArn)).Json["serviceDeployments"]![0]!["status"]!.GetValue<string>();

    private static Task WaitForAsync(Func<bool> condition, string message, int seconds = 60)
        => WaitForAsync(() => Task.FromResult(condition()), message, seconds);

    private static async Task WaitForAsync(Func<Task<bool>> condition, string message, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, message);
            await Task.Delay(1000);
        }
    }
}
