using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.LoadBalancing;

/// <summary>
/// An ECS service behind a listener on real Docker: its tasks are registered as they come up, and a rolling
/// deployment (100/200 percent) under a steady request loop drains each old task before stopping it.
/// </summary>
[Collection("control plane 5")]
public sealed class ServiceBehindLoadBalancerTests(ControlPlaneFixture plane)
{
    private const string Image = "local/busybox:latest";

    private Task<CliResult> Elb(params string[] args) => plane.AwsAsync(["elbv2", .. args]);

    private static string Web(string version) => $$$"""
        [{"name":"web","image":"{{{Image}}}","memory":32,"essential":true,
          "entryPoint":["sh","-c"],"command":["echo {{{version}}} > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
          "portMappings":[{"containerPort":8080,"hostPort":0}],
          "healthCheck":{"command":["CMD-SHELL","wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1"],"interval":5,"timeout":5,"retries":2,"startPeriod":0}}]
        """;

    [Fact]
    public async Task A_rolling_update_behind_the_load_balancer_fails_no_request()
    {
        var cluster = $"elb-{Guid.NewGuid():N}"[..20];
        (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json.ToString();
        await plane.StartWorkerAsync(cluster);
        await using var balancer = LoadBalancerProcess.Start(plane);
        var v1 = (await plane.EcsAsync("register-task-definition", "--family", $"{cluster}-web", "--container-definitions", Web("v1"))).Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var v2 = (await plane.EcsAsync("register-task-definition", "--family", $"{cluster}-web", "--container-definitions", Web("v2"))).Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();

        var lbArn = (await Elb("create-load-balancer", "--name", cluster)).Json["LoadBalancers"]![0]!["LoadBalancerArn"]!.GetValue<string>();
        var tgArn = (await Elb("create-target-group", "--name", $"{cluster}-tg", "--protocol", "HTTP", "--port", "8080",
            "--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2")).Json["TargetGroups"]![0]!["TargetGroupArn"]!.GetValue<string>();
        await Elb("modify-target-group-attributes", "--target-group-arn", tgArn, "--attributes", "Key=deregistration_delay.timeout_seconds,Value=3");
        var port = ControlPlaneFixture.FreePort();
        await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", port.ToString(), "--default-actions", $"Type=forward,TargetGroupArn={tgArn}");

        (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", v1, "--desired-count", "2",
            "--load-balancers", $"targetGroupArn={tgArn},containerName=web,containerPort=8080")).Json.ToString();
        await WaitForHealthyTargetsAsync(tgArn, 2);

        await using var requests = SteadyRequests.Start(port);

        (await plane.EcsAsync("update-service", "--cluster", cluster, "--service", "web", "--task-definition", v2)).Json.ToString();
        var stable = await plane.WaitAsync("services-stable", cluster, ["web"]);
        Assert.True(stable.ExitCode == 0, stable.Stderr);
        // Every target is a v2 task now: the last old ones drained, then stopped.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            await Task.Delay(1000);
            if (requests.Bodies() is { Count: > 20 } bodies && bodies.TakeLast(20).All(v => v == "v2")) break;
            Assert.True(DateTime.UtcNow < deadline, "traffic never moved to v2 alone");
        }
        await requests.StopAsync();

        requests.AssertNoneFailed(balancer.Log);
        Assert.Contains("v1", requests.Bodies());
        var events = (await plane.DescribeServiceAsync(cluster, "web"))["events"]!.AsArray().Select(e => e!["message"]!.GetValue<string>());
        Assert.Contains(events, e => e.Contains("has begun draining connections", StringComparison.Ordinal));

        (await plane.EcsAsync("delete-service", "--cluster", cluster, "--service", "web", "--force")).Json.ToString();
        await Elb("delete-load-balancer", "--load-balancer-arn", lbArn);
    }

    [Fact]
    public async Task A_task_whose_target_fails_its_health_checks_is_replaced()
    {
        // ECS calls through the in-process client, ELBv2 ones through the CLI (the client speaks JSON only).
        var cluster = $"elbh-{Guid.NewGuid():N}"[..20];
        await plane.Client.EcsOkAsync("CreateCluster", new() { ["clusterName"] = cluster });
        await plane.StartWorkerAsync(cluster);
        await using var balancer = LoadBalancerProcess.Start(plane);
        // No container health check: only the target group finds that /health is missing (404).
        var definition = (await plane.Client.EcsOkAsync("RegisterTaskDefinition", new()
        {
            ["family"] = $"{cluster}-web",
            ["containerDefinitions"] = JsonNode.Parse($$$"""
                [{"name":"web","image":"{{{Image}}}","memory":32,"essential":true,"stopTimeout":2,
                  "entryPoint":["sh","-c"],"command":["echo up > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
                  "portMappings":[{"containerPort":8080,"hostPort":0}]}]
                """),
        }))["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var tgArn = (await Elb("create-target-group", "--name", $"{cluster}-tg", "--protocol", "HTTP", "--port", "8080", "--health-check-path", "/health",
            "--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2", "--unhealthy-threshold-count", "2")).Json["TargetGroups"]![0]!["TargetGroupArn"]!.GetValue<string>();
        await Elb("modify-target-group-attributes", "--target-group-arn", tgArn, "--attributes", "Key=deregistration_delay.timeout_seconds,Value=1");
        var lbArn = (await Elb("create-load-balancer", "--name", cluster)).Json["LoadBalancers"]![0]!["LoadBalancerArn"]!.GetValue<string>();
        // The data plane checks the groups a listener forwards to.
        await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", ControlPlaneFixture.FreePort().ToString(), "--default-actions", $"Type=forward,TargetGroupArn={tgArn}");

        await plane.Client.EcsOkAsync("CreateService", new()
        {
            ["cluster"] = cluster, ["serviceName"] = "web", ["taskDefinition"] = definition, ["desiredCount"] = 1, ["healthCheckGracePeriodSeconds"] = 0,
            ["loadBalancers"] = new JsonArray(new JsonObject { ["targetGroupArn"] = tgArn, ["containerName"] = "web", ["containerPort"] = 8080 }),
        });

        // The target turns unhealthy after two failed checks; the data plane asks the service to reconcile, which
        // drains the task's target and stops it with ECS's reason and event, and starts a replacement.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        JsonNode? stopped = null;
        while (stopped is null)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no task was stopped for its target's health\n{balancer.Log}");
            await Task.Delay(1000);
            var arns = await plane.ListTaskArnsAsync(cluster, "web", "STOPPED");
            stopped = arns.Count == 0 ? null : (await plane.DescribeTasksAsync(cluster, arns)).FirstOrDefault(t => t["stoppedReason"] is not null);
        }
        Assert.Equal($"Task failed ELB health checks in (target-group {tgArn})", stopped["stoppedReason"]!.GetValue<string>());
        var taskId = stopped["taskArn"]!.GetValue<string>().Split('/')[^1];
        var events = (await plane.DescribeServiceAsync(cluster, "web"))["events"]!.AsArray().Select(e => e!["message"]!.GetValue<string>());
        Assert.Contains($"(service web) (task {taskId}) failed ELB health checks in (target-group {tgArn})", events);
        Assert.NotEmpty(await plane.ListTaskArnsAsync(cluster, "web"));

        await plane.Client.EcsOkAsync("DeleteService", new() { ["cluster"] = cluster, ["service"] = "web", ["force"] = true });
        await Elb("delete-load-balancer", "--load-balancer-arn", lbArn);
    }

    [Fact]
    public async Task An_awsvpc_service_is_served_through_ip_targets_and_a_stopped_task_drains_before_it_stops()
    {
        var cluster = $"elbip-{Guid.NewGuid():N}"[..20];
        (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json.ToString();
        await plane.StartWorkerAsync(cluster);
        await using var balancer = LoadBalancerProcess.Start(plane);
        var definition = (await plane.EcsAsync("register-task-definition", "--family", $"{cluster}-web", "--network-mode", "awsvpc",
            "--container-definitions", Web("ip").Replace("\"hostPort\":0", "\"hostPort\":8080", StringComparison.Ordinal)))
            .Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        const string network = "awsvpcConfiguration={subnets=[subnet-0a1b2c3d],securityGroups=[sg-0a1b2c3d]}";

        var lbArn = (await Elb("create-load-balancer", "--name", cluster)).Json["LoadBalancers"]![0]!["LoadBalancerArn"]!.GetValue<string>();
        var instanceGroup = (await Elb("create-target-group", "--name", $"{cluster}-in", "--protocol", "HTTP", "--port", "8080"))
            .Json["TargetGroups"]![0]!["TargetGroupArn"]!.GetValue<string>();
        var tgArn = (await Elb("create-target-group", "--name", $"{cluster}-tg", "--protocol", "HTTP", "--port", "8080", "--target-type", "ip",
            "--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2"))
            .Json["TargetGroups"]![0]!["TargetGroupArn"]!.GetValue<string>();
        await Elb("modify-target-group-attributes", "--target-group-arn", tgArn, "--attributes", "Key=deregistration_delay.timeout_seconds,Value=20");
        var port = ControlPlaneFixture.FreePort();
        await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", port.ToString(), "--default-actions", $"Type=forward,TargetGroupArn={tgArn}");

        // An awsvpc task is an ip target: an instance target group is refused with ECS's words.
        var refused = await plane.AwsAsync(["ecs", "create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", definition,
            "--desired-count", "2", "--network-configuration", network, "--load-balancers", $"targetGroupArn={instanceGroup},containerName=web,containerPort=8080"]);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains($"The provided target group {instanceGroup} has target type instance, which is incompatible with the awsvpc network mode specified in the task definition.", refused.Stderr);

        (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", definition, "--desired-count", "2",
            "--network-configuration", network, "--load-balancers", $"targetGroupArn={tgArn},containerName=web,containerPort=8080")).Json.ToString();
        await WaitForHealthyTargetsAsync(tgArn, 2);
        var tasks = await plane.DescribeTasksAsync(cluster, await plane.ListTaskArnsAsync(cluster, "web"));
        var addresses = tasks.Select(t => t["attachments"]![0]!["details"]!.AsArray().First(d => d!["name"]!.GetValue<string>() == "privateIPv4Address")!["value"]!.GetValue<string>()).ToHashSet();
        var targets = (await Elb("describe-target-health", "--target-group-arn", tgArn)).Json["TargetHealthDescriptions"]!.AsArray()
            .Select(h => (h!["Target"]!["Id"]!.GetValue<string>(), h["Target"]!["Port"]!.GetValue<int>())).ToList();
        Assert.Equal(addresses.Order().Select(a => (a, 8080)), targets.Order());

        await using var requests = SteadyRequests.Start(port);

        // StopTask on a task behind the balancer: DEACTIVATING while its target drains, no request fails, then STOPPED.
        var victim = tasks[0]["taskArn"]!.GetValue<string>();
        var stopping = (await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", victim)).Json["task"]!;
        Assert.Equal("STOPPED", stopping["desiredStatus"]!.GetValue<string>());
        Assert.Equal("DEACTIVATING", stopping["lastStatus"]!.GetValue<string>());
        var draining = (await Elb("describe-target-health", "--target-group-arn", tgArn)).Json["TargetHealthDescriptions"]!.AsArray();
        Assert.Contains(draining, h => h!["TargetHealth"]!["State"]!.GetValue<string>() == "draining");
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while ((await plane.DescribeTasksAsync(cluster, [victim]))[0]["lastStatus"]!.GetValue<string>() != "STOPPED")
        {
            Assert.True(DateTime.UtcNow < deadline, "the stopped task never stopped after its draining");
            await Task.Delay(500);
        }
        var stoppedTask = (await plane.DescribeTasksAsync(cluster, [victim]))[0];
        // Epoch seconds on the wire: the Stop left once the 20 s draining had ended (20 s, so that on a loaded machine the two
        // CLI calls after StopTask still find the target draining).
        Assert.True(stoppedTask["stoppedAt"]!.GetValue<double>() - stoppedTask["stoppingAt"]!.GetValue<double>() >= 7,
            $"stopped before its draining ended: {stoppedTask.ToJsonString()}");
        var stable = await plane.WaitAsync("services-stable", cluster, ["web"]);
        Assert.True(stable.ExitCode == 0, stable.Stderr);
        await requests.StopAsync();
        requests.AssertNoneFailed(balancer.Log);
        Assert.NotEmpty(requests.Bodies());

        (await plane.EcsAsync("delete-service", "--cluster", cluster, "--service", "web", "--force")).Json.ToString();
        await Elb("delete-load-balancer", "--load-balancer-arn", lbArn);
    }

    private async Task WaitForHealthyTargetsAsync(string tgArn, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            var health = (await Elb("describe-target-health", "--target-group-arn", tgArn)).Json["TargetHealthDescriptions"]!.AsArray();
            if (health.Count(h => h!["TargetHealth"]!["State"]!.GetValue<string>() == "healthy") == count) return;
            Assert.True(DateTime.UtcNow < deadline, $"targets: {health.ToJsonString()}");
            await Task.Delay(1000);
        }
    }
}

/// <summary>A steady stream of GETs to a listener on loopback (one every 20 ms), recording each answer's body or failure.</summary>
internal sealed class SteadyRequests : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _bodies = [];
    private readonly List<string> _failures = [];
    private Task _loop = Task.CompletedTask;

    private SteadyRequests(int port) => _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };

    public static SteadyRequests Start(int port)
    {
        var requests = new SteadyRequests(port);
        requests._loop = Task.Run(requests.RunAsync);
        return requests;
    }

    /// <summary>The bodies of the successful answers so far, in order.</summary>
    public List<string> Bodies()
    {
        lock (_bodies) return [.. _bodies];
    }

    public void AssertNoneFailed(string context)
    {
        lock (_bodies)
            Assert.True(_failures.Count == 0, $"{_failures.Count} of {_failures.Count + _bodies.Count} requests failed: {string.Join("; ", _failures.Take(5))}\n{context}");
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var response = await _http.GetAsync("/");
                var body = (await response.Content.ReadAsStringAsync()).Trim();
                lock (_bodies) { if (response.IsSuccessStatusCode) _bodies.Add(body); else _failures.Add($"{(int)response.StatusCode} {body}"); }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                lock (_bodies) _failures.Add(e.Message);
            }
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
        _http.Dispose();
    }
}
