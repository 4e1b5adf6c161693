using System.Net;
using System.Text;

namespace Serverless.EndToEnd.Tests.LoadBalancing;

/// <summary>
/// The data plane serving what the CLI configured: rules, health checks written back, and a deregistered
/// target drained (no new requests, then stopped) under steady traffic with no failed request.
/// </summary>
[Collection("control plane 4")]
public sealed class DataPlaneTests(ControlPlaneFixture plane)
{
    private Task<CliResult> Elb(params string[] args) => plane.AwsAsync(["elbv2", .. args]);

    [Fact]
    public async Task A_listener_routes_by_rule_checks_health_and_drains_a_deregistered_target_without_failing_a_request()
    {
        await using var balancer = LoadBalancerProcess.Start(plane);
        using var a = new Backend("A");
        using var b = new Backend("B");

        var lbArn = (await Elb("create-load-balancer", "--name", "dp-web")).Json["LoadBalancers"]![0]!["LoadBalancerArn"]!.GetValue<string>();
        var tgArn = (await Elb("create-target-group", "--name", "dp-web-tg", "--protocol", "HTTP", "--port", "80", "--target-type", "ip",
            "--health-check-path", "/health", "--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2",
            "--healthy-threshold-count", "2", "--unhealthy-threshold-count", "2")).Json["TargetGroups"]![0]!["TargetGroupArn"]!.GetValue<string>();
        await Elb("modify-target-group-attributes", "--target-group-arn", tgArn, "--attributes", "Key=deregistration_delay.timeout_seconds,Value=3");
        await Elb("register-targets", "--target-group-arn", tgArn, "--targets", $"Id=127.0.0.1,Port={a.Port}", $"Id=127.0.0.1,Port={b.Port}");
        var port = ControlPlaneFixture.FreePort();
        var listenerArn = (await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", port.ToString(),
            "--default-actions", $"Type=forward,TargetGroupArn={tgArn}")).Json["Listeners"]![0]!["ListenerArn"]!.GetValue<string>();
        await Elb("create-rule", "--listener-arn", listenerArn, "--priority", "1", "--conditions", "Field=path-pattern,Values=/teapot/*",
            "--actions", "Type=fixed-response,FixedResponseConfig={StatusCode=418,ContentType=text/plain,MessageBody=short and stout}");

        await WaitForHealthAsync(tgArn, $"{a.Port}=healthy", $"{b.Port}=healthy");

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var seen = new HashSet<string>();
        for (var i = 0; i < 20; i++) seen.Add(await http.GetStringAsync("/"));
        Assert.Equal(["A", "B"], seen.Order());

        var teapot = await http.GetAsync("/teapot/brew");
        Assert.Equal((HttpStatusCode)418, teapot.StatusCode);
        Assert.Equal("short and stout", await teapot.Content.ReadAsStringAsync());

        // Steady traffic while A is deregistered, drained, and only then stopped, as ECS stops a task.
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var served = 0;
        var loop = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await http.GetAsync("/");
                    if (response.IsSuccessStatusCode) Interlocked.Increment(ref served); else Interlocked.Increment(ref failures);
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref failures);
                }
                await Task.Delay(10);
            }
        });
        await Elb("deregister-targets", "--target-group-arn", tgArn, "--targets", $"Id=127.0.0.1,Port={a.Port}");
        await Task.Delay(TimeSpan.FromSeconds(3));
        var beforeStop = a.Requests;
        a.Dispose();
        await Task.Delay(TimeSpan.FromSeconds(1));
        await stop.CancelAsync();
        await loop;

        Assert.True(failures == 0, $"{failures} of {failures + served} requests failed\n{balancer.Log}");
        Assert.True(served > 50, $"only {served} requests were served");
        // Nothing is logged per request (YARP's forwarder logs two Information lines each unless filtered).
        var logLines = balancer.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        Assert.True(logLines < served / 2, $"{logLines} log lines for {served} requests:\n{balancer.Log}");
        Assert.True(beforeStop > 0);
        for (var i = 0; i < 5; i++) Assert.Equal("B", await http.GetStringAsync("/"));

        // B fails its health checks: DescribeTargetHealth says why.
        b.Healthy = false;
        await WaitForHealthAsync(tgArn, $"{b.Port}=unhealthy");
        var health = (await Elb("describe-target-health", "--target-group-arn", tgArn)).Json["TargetHealthDescriptions"]!.AsArray();
        Assert.Equal("Target.ResponseCodeMismatch", health.Single(h => h!["Target"]!["Port"]!.GetValue<int>() == b.Port)!["TargetHealth"]!["Reason"]!.GetValue<string>());

        await Elb("delete-load-balancer", "--load-balancer-arn", lbArn);
        await Elb("delete-target-group", "--target-group-arn", tgArn);
    }

    [Fact]
    public async Task With_lb_cookie_stickiness_the_AWSALB_cookie_pins_a_client_to_its_target_until_that_target_drains()
    {
        await using var balancer = LoadBalancerProcess.Start(plane);
        using var a = new Backend("A");
        using var b = new Backend("B");

        var lbArn = (await Elb("create-load-balancer", "--name", "dp-sticky")).Json["LoadBalancers"]![0]!["LoadBalancerArn"]!.GetValue<string>();
        var tgArn = (await Elb("create-target-group", "--name", "dp-sticky-tg", "--protocol", "HTTP", "--port", "80", "--target-type", "ip",
            "--health-check-path", "/health", "--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2",
            "--healthy-threshold-count", "2")).Json["TargetGroups"]![0]!["TargetGroupArn"]!.GetValue<string>();
        await Elb("modify-target-group-attributes", "--target-group-arn", tgArn, "--attributes",
            "Key=stickiness.enabled,Value=true", "Key=stickiness.type,Value=lb_cookie", "Key=stickiness.lb_cookie.duration_seconds,Value=600",
            "Key=deregistration_delay.timeout_seconds,Value=0");
        await Elb("register-targets", "--target-group-arn", tgArn, "--targets", $"Id=127.0.0.1,Port={a.Port}", $"Id=127.0.0.1,Port={b.Port}");
        var port = ControlPlaneFixture.FreePort();
        await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", port.ToString(), "--default-actions", $"Type=forward,TargetGroupArn={tgArn}");
        await WaitForHealthAsync(tgArn, $"{a.Port}=healthy", $"{b.Port}=healthy");

        // Without the cookie (a client that keeps none): round robin, and every answer offers a cookie naming the target it came from.
        using var anonymous = new HttpClient(new HttpClientHandler { UseCookies = false }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var cookieOf = new Dictionary<string, string>();
        for (var i = 0; i < 10; i++)
        {
            using var response = await anonymous.GetAsync("/");
            var cookie = response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("AWSALB=", StringComparison.Ordinal));
            Assert.Contains("Path=/", cookie);
            cookieOf[await response.Content.ReadAsStringAsync()] = cookie.Split(';')[0];
        }
        Assert.Equal(["A", "B"], cookieOf.Keys.Order());

        // A client that keeps cookies stays with its target.
        var jar = new CookieContainer();
        using var sticky = new HttpClient(new HttpClientHandler { CookieContainer = jar }) { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var first = await sticky.GetStringAsync("/");
        for (var i = 0; i < 10; i++) Assert.Equal(first, await sticky.GetStringAsync("/"));

        // Its target deregistered: the next request goes to the other one, and the new cookie pins it there.
        var (pinned, other) = first == "A" ? (a, "B") : (b, "A");
        await Elb("deregister-targets", "--target-group-arn", tgArn, "--targets", $"Id=127.0.0.1,Port={pinned.Port}");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (await sticky.GetStringAsync("/") != other)
        {
            Assert.True(DateTime.UtcNow < deadline, "the sticky client still reaches its deregistered target");
            await Task.Delay(100);
        }
        Assert.Equal(cookieOf[other], $"AWSALB={jar.GetCookies(sticky.BaseAddress!)["AWSALB"]!.Value}");
        for (var i = 0; i < 5; i++) Assert.Equal(other, await sticky.GetStringAsync("/"));

        await Elb("delete-load-balancer", "--load-balancer-arn", lbArn);
        await Elb("delete-target-group", "--target-group-arn", tgArn);
    }

    private async Task WaitForHealthAsync(string tgArn, params string[] expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var health = (await Elb("describe-target-health", "--target-group-arn", tgArn)).Json["TargetHealthDescriptions"]!.AsArray()
                .Select(h => $"{h!["Target"]!["Port"]}={h["TargetHealth"]!["State"]}").ToHashSet();
            if (expected.All(health.Contains)) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Targets are {string.Join(", ", health)}, not {string.Join(", ", expected)}");
            await Task.Delay(500);
        }
    }

    /// <summary>A target on loopback: answers its name, and /health with 200 or 500.</summary>
    private sealed class Backend : IDisposable
    {
        private readonly HttpListener _listener = new();
        private int _requests;

        public Backend(string name)
        {
            Port = ControlPlaneFixture.FreePort();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            _listener.Start();
            _ = Task.Run(async () =>
            {
                while (_listener.IsListening)
                {
                    HttpListenerContext context;
                    try { context = await _listener.GetContextAsync(); }
                    catch (Exception) { return; }
                    var health = context.Request.Url!.AbsolutePath == "/health";
                    if (!health) Interlocked.Increment(ref _requests);
                    context.Response.StatusCode = health && !Healthy ? 500 : 200;
                    var body = Encoding.UTF8.GetBytes(name);
                    await context.Response.OutputStream.WriteAsync(body);
                    context.Response.Close();
                }
            });
        }

        public int Port { get; }
        public bool Healthy { get; set; } = true;
        public int Requests => _requests;

        public void Dispose()
        {
            if (_listener.IsListening) _listener.Stop();
            _listener.Close();
        }
    }
}
