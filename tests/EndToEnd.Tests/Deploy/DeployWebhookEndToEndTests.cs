using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.Deploy;

/// <summary>
/// One service on real Docker that both tests deploy to (its cluster, worker and first rollout cost
/// more than the tests themselves), and the images they made, removed at the end.
/// </summary>
public sealed class DeployScenario : IAsyncLifetime
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ControlPlaneFixture? _plane;
    private string? _cluster;

    public string Run { get; } = Guid.NewGuid().ToString("N")[..8];

    public List<string> Images { get; } = [];

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>The cluster of service <c>web</c> (one task of local/busybox:latest, circuit breaker with rollback), created on first use.</summary>
    public async Task<string> ClusterAsync(ControlPlaneFixture plane, Func<string, Task<string>> create)
    {
        await _gate.WaitAsync();
        try
        {
            _plane = plane;
            return _cluster ??= await create($"hook-{Run}");
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task DisposeAsync()
    {
        if (_plane is not null) await _plane.StopWorkersAsync();
        foreach (var image in Images) await Docker.RunAsync("rmi", image);
    }
}

/// <summary>
/// The deploy webhook on real Docker, driven as a CI job drives it: <c>scripts/deploy.sh</c> (curl and
/// openssl, as the README's snippet) and plain curl. The images are local tags of
/// <c>local/busybox:latest</c> made by the test and removed after it. Either test may run first:
/// they assert on what their own deliveries change.
/// </summary>
[Collection("control plane 3")]
public sealed class DeployWebhookEndToEndTests(ControlPlaneFixture plane, DeployScenario scenario) : IClassFixture<DeployScenario>
{
    private const string Base = "local/busybox:latest";
    private const string Label = "serverless-test=deploy-webhook";

    /// <summary>Another name for the busybox image: to Docker and the worker, a new image to deploy.</summary>
    private async Task<string> TagAsync(string suffix)
    {
        var image = $"local/busybox:webhook-{scenario.Run}-{suffix}";
        var (exit, _) = await Docker.RunAsync("tag", Base, image);
        Assert.Equal(0, exit);
        scenario.Images.Add(image);
        return image;
    }

    /// <summary>busybox without <c>sh</c>: every container of the service's task definition exits at once (127).</summary>
    private async Task<string> BrokenImageAsync()
    {
        var image = $"local/busybox:webhook-{scenario.Run}-broken";
        scenario.Images.Add(image);
        var build = new ProcessStartInfo("docker", ["build", "-q", "--label", Label, "-t", image, "-"]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(build)!;
        await process.StandardInput.WriteAsync($"FROM {Base}\nRUN [\"/bin/busybox\", \"rm\", \"-f\", \"/bin/sh\"]\n");
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEndAsync();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"docker build exited {process.ExitCode}: {output} {await error}");
        return image;
    }

    private async Task<JsonNode> ServiceAsync(string cluster)
        => (await plane.Client.EcsOkAsync("DescribeServices", new JsonObject { ["cluster"] = cluster, ["services"] = new JsonArray("web") }))["services"]![0]!;

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(300);
        }
    }

    private Task<string> ClusterAsync() => scenario.ClusterAsync(plane, CreateServiceAsync);

    private async Task<string> CreateServiceAsync(string cluster)
    {
        _ = (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json;
        await plane.StartWorkerAsync(cluster);
        var definition = (await plane.EcsAsync("register-task-definition", "--family", cluster, "--container-definitions",
            $$"""[{"name":"main","image":"{{Base}}","memory":32,"entryPoint":["sh","-c"],"command":["trap 'exit 0' TERM; sleep 600 & wait"]}]"""))
            .Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", definition,
            "--desired-count", "1", "--deployment-configuration", "deploymentCircuitBreaker={enable=true,rollback=true}")).Json;
        // Steady, and its deployment COMPLETED: the breaker rolls back to the last COMPLETED deployment.
        await WaitUntilAsync(async () => await ServiceAsync(cluster) is var service
            && service["runningCount"]!.GetValue<int>() == 1 && service["deployments"]![0]!["rolloutState"]!.GetValue<string>() == "COMPLETED",
            "the first deployment to complete");
        return cluster;
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> BashAsync(string script, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("bash", ["-c", script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs scripts/deploy.sh, the README's CI step, against the fixture's control plane.</summary>
    private Task<(int ExitCode, string Stdout, string Stderr)> DeployScriptAsync(string cluster, string image, string delivery)
        => BashAsync($"bash {Path.Combine(RepositoryRoot(), "scripts", "deploy.sh")} {cluster} web {image}", new Dictionary<string, string>
        {
            ["DEPLOY_URL"] = plane.Endpoint,
            ["DEPLOY_SECRET"] = ControlPlaneFixture.WebhookSecret,
            ["DEPLOY_DELIVERY_ID"] = delivery,
            ["DEPLOY_POLL_SECONDS"] = "0.5",
            ["DEPLOY_TIMEOUT"] = "150",
        });

    private static string Sign(string body)
        => "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(ControlPlaneFixture.WebhookSecret), Encoding.UTF8.GetBytes(body)));

    /// <summary>curl of <c>POST /deploy</c>, <paramref name="copies"/> times at once; the HTTP status of each, one per line.</summary>
    private async Task<string[]> CurlAsync(string body, string delivery, string signature, int copies = 1)
    {
        var file = Path.GetTempFileName();
        await File.WriteAllTextAsync(file, body);
        try
        {
            var (_, stdout, stderr) = await BashAsync(
                $"seq {copies} | xargs -P {copies} -I{{}} curl -s -o /dev/null -w '%{{http_code}}\\n' -X POST '{plane.Endpoint}/deploy' " +
                $"-H 'X-GitHub-Delivery: {delivery}' -H 'X-Hub-Signature-256: {signature}' --data-binary @{file}");
            var codes = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(codes.Length == copies, stderr);
            return codes;
        }
        finally
        {
            File.Delete(file);
        }
    }

    private async Task<int> RevisionsAsync(string cluster)
        => (await plane.EcsAsync("list-task-definitions", "--family-prefix", cluster)).Json["taskDefinitionArns"]!.AsArray().Count;

    private async Task<string> RunningImageAsync(string cluster)
    {
        var tasks = await plane.DescribeTasksAsync(cluster, await plane.ListTaskArnsAsync(cluster, "web"));
        var definition = Assert.Single(tasks, t => t["lastStatus"]!.GetValue<string>() == "RUNNING")["taskDefinitionArn"]!.GetValue<string>();
        return (await plane.EcsAsync("describe-task-definition", "--task-definition", definition)).Json["taskDefinition"]!["containerDefinitions"]![0]!["image"]!.GetValue<string>();
    }

    [Fact]
    public async Task A_signed_delivery_rolls_the_service_to_the_new_image_once_however_often_it_is_sent()
    {
        var cluster = await ClusterAsync();
        var revisions = await RevisionsAsync(cluster);
        var v2 = await TagAsync("v2");
        var delivery = Guid.NewGuid().ToString();

        var deployed = await DeployScriptAsync(cluster, v2, delivery);
        Assert.True(deployed.ExitCode == 0, $"{deployed.Stdout}\n{deployed.Stderr}");
        var answer = JsonNode.Parse(deployed.Stdout.Split('\n')[0])!;
        Assert.Contains("\"rolloutState\":\"COMPLETED\"", deployed.Stdout);
        Assert.Equal(v2, await RunningImageAsync(cluster));
        Assert.Equal(revisions + 1, await RevisionsAsync(cluster));

        // The same delivery again (a GitHub retry, a re-run): the same answer, nothing registered.
        var again = await DeployScriptAsync(cluster, v2, delivery);
        Assert.Equal(0, again.ExitCode);
        Assert.Equal(answer.ToJsonString(), JsonNode.Parse(again.Stdout.Split('\n')[0])!.ToJsonString());
        Assert.Equal(revisions + 1, await RevisionsAsync(cluster));

        // 50 identical deliveries at once: one revision, every one answered as the first.
        var v3 = await TagAsync("v3");
        var body = $$"""{"cluster":"{{cluster}}","service":"web","image":"{{v3}}"}""";
        var codes = await CurlAsync(body, Guid.NewGuid().ToString(), Sign(body), copies: 50);
        Assert.All(codes, c => Assert.Equal("202", c));
        Assert.Equal(revisions + 2, await RevisionsAsync(cluster));

        // Refusals, each with its status and nothing registered.
        Assert.Equal("401", (await CurlAsync(body, Guid.NewGuid().ToString(), Sign(body + " ")))[0]);
        var unknown = $$"""{"cluster":"{{cluster}}","service":"nope","image":"{{v3}}"}""";
        Assert.Equal("404", (await CurlAsync(unknown, Guid.NewGuid().ToString(), Sign(unknown)))[0]);
        var invalid = $$"""{"cluster":"{{cluster}}","service":"web","image":"Not A Reference"}""";
        Assert.Equal("400", (await CurlAsync(invalid, Guid.NewGuid().ToString(), Sign(invalid)))[0]);
        var large = new string(' ', 1024 * 1024) + body;
        Assert.Equal("413", (await CurlAsync(large, Guid.NewGuid().ToString(), Sign(large)))[0]);
        Assert.Equal(revisions + 2, await RevisionsAsync(cluster));
    }

    [Fact]
    public async Task A_delivery_whose_image_exits_at_once_ends_failed_after_the_circuit_breaker_rolls_back()
    {
        var cluster = await ClusterAsync();
        var broken = await BrokenImageAsync();
        var before = (await ServiceAsync(cluster))["taskDefinition"]!.GetValue<string>();

        var deployed = await DeployScriptAsync(cluster, broken, Guid.NewGuid().ToString());

        Assert.True(deployed.ExitCode == 1, $"{deployed.Stdout}\n{deployed.Stderr}");
        var status = JsonNode.Parse(deployed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!;
        Assert.Equal("FAILED", status["rolloutState"]!.GetValue<string>());
        Assert.Contains("deployment failed: tasks failed to start.", status["rolloutStateReason"]!.GetValue<string>());
        Assert.Contains("rolling back to deployment", status["rolloutStateReason"]!.GetValue<string>());
        // Rolled back to the last completed deployment: the service no longer runs the broken revision.
        var failedRevision = status["taskDefinitionArn"]!.GetValue<string>();
        Assert.NotEqual(before, failedRevision);
        await WaitUntilAsync(async () => await ServiceAsync(cluster) is var service && service["runningCount"]!.GetValue<int>() == 1
            && service["deployments"]!.AsArray().Count == 1 && service["taskDefinition"]!.GetValue<string>() != failedRevision, "the rollback to finish");
        Assert.NotEqual(broken, await RunningImageAsync(cluster));
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Serverless.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new InvalidOperationException("Serverless.sln not found above the test output");
    }
}
