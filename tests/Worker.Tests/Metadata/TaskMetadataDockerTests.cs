using System.Text.Json.Nodes;
using Docker.DotNet.Models;
using Serverless.Worker.Metadata;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Metadata;

/// <summary>The task metadata endpoint as a container sees it: real Docker, busybox's wget from inside the task.</summary>
public sealed class TaskMetadataDockerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>, IAsyncLifetime
{
    // Prints its task, itself, what a made-up id gets, its task's stats; then stays.
    private const string Script =
        "wget -q -O- $ECS_CONTAINER_METADATA_URI_V4/task; echo; echo ---; " +
        "wget -q -O- $ECS_CONTAINER_METADATA_URI_V4; echo; echo ---; " +
        "wget -q -O- ${ECS_CONTAINER_METADATA_URI_V4%/*}/0123456789abcdef0123456789abcdef/task || echo refused; echo ---; " +
        "wget -q -O- $ECS_CONTAINER_METADATA_URI_V4/task/stats; echo; echo ---; " +
        "wget -q -O- $ECS_CONTAINER_METADATA_URI/task; echo; echo ---end; sleep 300";

    private WorkerHarness _worker = null!;

    private CancellationToken Token => _worker.Stopping;

    public async Task InitializeAsync()
    {
        _worker = await WorkerHarness.StartAsync(fixture, output, configure: o =>
        {
            o.MetadataPort = 0;
            o.AllowHostNetwork = true;
        });
        await _worker.Get<TaskMetadataServer>().StartAsync(Token);
    }

    public async Task DisposeAsync() => await _worker.DisposeAsync();

    [Fact]
    public async Task A_container_reads_its_own_task_and_no_other()
    {
        var two = await _worker.RegisterAsync($$"""
            {"family": "metadata", "cpu": "256", "memory": "512", "containerDefinitions": [
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "cpu": 64, "stopTimeout": 1,
               "dockerLabels": {"team": "a"}, "command": ["sh", "-c", {{JsonValue.Create(Script).ToJsonString()}}]},
              {"name": "side", "image": "local/busybox:latest", "memory": 16, "stopTimeout": 1, "command": ["sleep", "300"]}]}
            """);
        var one = await _worker.RegisterAsync($$"""
            {"family": "metadata-b", "containerDefinitions": [
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "stopTimeout": 1, "command": ["sh", "-c", {{JsonValue.Create(Script).ToJsonString()}}]}]}
            """);
        var a = _worker.StartCommand(two);
        var b = _worker.StartCommand(one);
        await _worker.Runner.StartAsync(a, redelivered: false, Token);
        await _worker.Runner.StartAsync(b, redelivered: false, Token);
        var runningA = await fixture.Events.WaitForStatusAsync(a.TaskArn, "RUNNING", Token);
        var runningB = await fixture.Events.WaitForStatusAsync(b.TaskArn, "RUNNING", Token);
        var appA = runningA.Containers.Single(c => c.Name == "app").RuntimeId!;
        var sideA = runningA.Containers.Single(c => c.Name == "side").RuntimeId!;
        var appB = Assert.Single(runningB.Containers).RuntimeId!;

        var env = (await _worker.InspectAsync(appA)).Config.Env;
        var uri = Assert.Single(env, e => e.StartsWith("ECS_CONTAINER_METADATA_URI_V4=", StringComparison.Ordinal));
        Assert.Matches("^ECS_CONTAINER_METADATA_URI_V4=http://[0-9.]+:[0-9]+/v4/[0-9a-f]{32}$", uri);
        Assert.Contains(env, e => e.StartsWith("ECS_CONTAINER_METADATA_URI=http://", StringComparison.Ordinal) && e.Contains("/v3/", StringComparison.Ordinal));

        var partsA = await OutputAsync(appA);
        var task = JsonNode.Parse(partsA[0])!;
        Assert.Equal(a.TaskArn, task["TaskARN"]!.GetValue<string>());
        Assert.Equal(_worker.Arns.Cluster(WorkerHarness.Cluster), task["Cluster"]!.GetValue<string>());
        Assert.Equal("metadata", task["Family"]!.GetValue<string>());
        Assert.Equal(two.Revision.ToString(), task["Revision"]!.GetValue<string>());
        Assert.Equal("RUNNING", task["DesiredStatus"]!.GetValue<string>());
        Assert.Equal("EC2", task["LaunchType"]!.GetValue<string>());
        Assert.Equal(0.25, task["Limits"]!["CPU"]!.GetValue<double>());
        Assert.Equal(512, task["Limits"]!["Memory"]!.GetValue<long>());
        Assert.NotNull(task["PullStartedAt"]);
        var containers = task["Containers"]!.AsArray();
        Assert.Equal(new[] { appA, sideA }.Order(), containers.Select(c => c!["DockerId"]!.GetValue<string>()).Order());
        var app = containers.Single(c => c!["Name"]!.GetValue<string>() == "app")!;
        Assert.Equal("local/busybox:latest", app["Image"]!.GetValue<string>());
        Assert.StartsWith("sha256:", app["ImageID"]!.GetValue<string>());
        Assert.StartsWith("ecs-metadata-", app["DockerName"]!.GetValue<string>());
        Assert.Equal("a", app["Labels"]!["team"]!.GetValue<string>());
        Assert.Equal(a.TaskArn, app["Labels"]!["com.amazonaws.ecs.task-arn"]!.GetValue<string>());
        Assert.Null(app["Labels"]![TaskMetadataEndpoint.IdLabel]);
        Assert.Equal("RUNNING", app["KnownStatus"]!.GetValue<string>());
        Assert.Equal(64, app["Limits"]!["CPU"]!.GetValue<long>());
        Assert.Equal(32, app["Limits"]!["Memory"]!.GetValue<long>());
        Assert.Equal("NORMAL", app["Type"]!.GetValue<string>());
        Assert.NotNull(app["CreatedAt"]);
        Assert.NotNull(app["StartedAt"]);
        var network = Assert.Single(app["Networks"]!.AsArray())!;
        Assert.Equal("bridge", network["NetworkMode"]!.GetValue<string>());
        Assert.Matches("^[0-9.]+$", Assert.Single(network["IPv4Addresses"]!.AsArray())!.GetValue<string>());

        var self = JsonNode.Parse(partsA[1])!;
        Assert.Equal(appA, self["DockerId"]!.GetValue<string>());
        Assert.Equal("app", self["Name"]!.GetValue<string>());
        Assert.Equal("refused", partsA[2]);
        var stats = JsonNode.Parse(partsA[3])!.AsObject();
        Assert.Equal(new[] { appA, sideA }.Order(), stats.Select(s => s.Key).Order());
        Assert.NotNull(stats[appA]!["memory_stats"]);
        Assert.NotNull(stats[appA]!["cpu_stats"]);
        Assert.Equal(a.TaskArn, JsonNode.Parse(partsA[4])!["TaskARN"]!.GetValue<string>());

        // The other task's container sees its own task alone: nothing of the first one.
        var partsB = await OutputAsync(appB);
        var taskB = JsonNode.Parse(partsB[0])!;
        Assert.Equal(b.TaskArn, taskB["TaskARN"]!.GetValue<string>());
        Assert.Equal(appB, Assert.Single(taskB["Containers"]!.AsArray())!["DockerId"]!.GetValue<string>());
        Assert.DoesNotContain(a.TaskArn, string.Join("\n", partsB), StringComparison.Ordinal);
        Assert.DoesNotContain(appA, string.Join("\n", partsB), StringComparison.Ordinal);
        Assert.Equal("refused", partsB[2]);

        foreach (var start in new[] { a, b }) await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        foreach (var start in new[] { a, b }) await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Theory]
    [InlineData("awsvpc")]
    [InlineData("host")]
    public async Task The_endpoint_is_reachable_in_every_network_mode(string mode)
    {
        var definition = await _worker.RegisterAsync($$"""
            {"family": "metadata-{{mode}}", "networkMode": "{{mode}}", "containerDefinitions": [
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "stopTimeout": 1,
               "command": ["sh", "-c", "wget -q -O- $ECS_CONTAINER_METADATA_URI_V4; echo; echo ---end; sleep 300"]}]}
            """);
        var start = _worker.StartCommand(definition);
        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var running = await fixture.Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);
        var app = Assert.Single(running.Containers).RuntimeId!;

        var self = JsonNode.Parse((await OutputAsync(app))[0])!;
        Assert.Equal(app, self["DockerId"]!.GetValue<string>());
        var network = Assert.Single(self["Networks"]!.AsArray())!;
        Assert.Equal(mode, network["NetworkMode"]!.GetValue<string>());
        if (mode == "awsvpc") Assert.Equal(running.NetworkInterface!.PrivateIpv4Address, Assert.Single(network["IPv4Addresses"]!.AsArray())!.GetValue<string>());

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task A_restarted_worker_answers_the_URIs_its_containers_were_given()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "metadata-restart", "containerDefinitions": [
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "stopTimeout": 1, "command": ["sleep", "300"]}]}
            """);
        var start = _worker.StartCommand(definition);
        await _worker.InsertTaskRowAsync(start, definition);
        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var app = Assert.Single((await fixture.Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token)).Containers).RuntimeId!;
        var uri = (await _worker.InspectAsync(app)).Config.Env.Single(e => e.StartsWith("ECS_CONTAINER_METADATA_URI_V4=", StringComparison.Ordinal)).Split('=', 2)[1];
        var (instanceId, prefix) = (_worker.Identity.InstanceId, _worker.StoragePrefix);
        await _worker.DisposeAsync();

        _worker = await WorkerHarness.StartAsync(fixture, output, instanceId, prefix);
        await _worker.Get<TaskMetadataServer>().StartAsync(Token);
        await _worker.Adoption.RunAsync(Token);
        using var http = new HttpClient();
        var self = JsonNode.Parse(await http.GetStringAsync(uri, Token))!;
        Assert.Equal(app, self["DockerId"]!.GetValue<string>());
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync(uri[..^32] + new string('0', 32), Token)).StatusCode);

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task TaskWithTags_adds_the_tasks_and_the_instances_tags_and_containers_carry_their_ARN()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "metadata-tags", "containerDefinitions": [
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "stopTimeout": 1, "command": ["sleep", "300"]}]}
            """);
        var start = _worker.StartCommand(definition);
        var row = await _worker.InsertTaskRowAsync(start, definition);
        await _worker.Tasks.UpdateAsync(row.Cluster, row.Id, t => t with { Tags = [new("team", "web"), new("env", "test")] }, Token);
        var instance = await _worker.Registration.RegisterAsync(Token);
        await _worker.Instances.UpdateAsync(instance.Cluster, instance.Id, i => i with { Tags = [new("rack", "r1")] }, Token);
        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var app = Assert.Single((await fixture.Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token)).Containers).RuntimeId!;
        var uri = (await _worker.InspectAsync(app)).Config.Env.Single(e => e.StartsWith("ECS_CONTAINER_METADATA_URI_V4=", StringComparison.Ordinal)).Split('=', 2)[1];
        var containerArn = _worker.Arns.Container(row.Cluster, row.Id, Assert.Single(row.Containers).Id);

        using var http = new HttpClient();
        var tagged = JsonNode.Parse(await http.GetStringAsync(uri + "/taskWithTags", Token))!;
        Assert.Equal(start.TaskArn, tagged["TaskARN"]!.GetValue<string>());
        Assert.Equal("""{"team":"web","env":"test"}""", tagged["TaskTags"]!.ToJsonString());
        Assert.Equal("""{"rack":"r1"}""", tagged["ContainerInstanceTags"]!.ToJsonString());
        Assert.Equal(containerArn, Assert.Single(tagged["Containers"]!.AsArray())!["ContainerARN"]!.GetValue<string>());
        var task = JsonNode.Parse(await http.GetStringAsync(uri + "/task", Token))!.AsObject();
        Assert.False(task.ContainsKey("TaskTags"));
        Assert.Equal(containerArn, JsonNode.Parse(await http.GetStringAsync(uri, Token))!["ContainerARN"]!.GetValue<string>());
        Assert.Equal(instance.Id, _worker.Identity.InstanceId);

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    /// <summary>The container's standard output (<c>docker logs</c>), split at the script's markers once it printed them all.</summary>
    private async Task<string[]> OutputAsync(string dockerId)
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            using var stream = await _worker.Docker.Containers.GetContainerLogsAsync(dockerId, tty: false,
                new ContainerLogsParameters { ShowStdout = true }, Token);
            var (stdout, _) = await stream.ReadOutputToEndAsync(Token);
            if (stdout.Contains("---end", StringComparison.Ordinal))
            {
                output.WriteLine(stdout);
                return stdout.Split("---").Select(p => p.Trim()).ToArray();
            }
            if (DateTimeOffset.UtcNow > deadline) throw new TimeoutException($"{dockerId} printed only: {stdout}");
            await Task.Delay(200, Token);
        }
    }
}
