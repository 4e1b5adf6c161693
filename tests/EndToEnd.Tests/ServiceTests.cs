using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests;

/// <summary>Services on real Docker, driven with the AWS CLI and its waiters.</summary>
[Collection("control plane")]
public sealed class ServiceTests(ControlPlaneFixture plane) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>This test's workers (and their containers) end with it.</summary>
    public Task DisposeAsync() => plane.StopWorkersAsync();

    private const string Image = "local/busybox:latest";

    private async Task<string> ClusterAsync(string name)
    {
        var cluster = $"{name}-{Guid.NewGuid():N}"[..30];
        _ = (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json;
        return cluster;
    }

    // A long-running command runs under a shell that ends on SIGTERM, so stopping its task does not
    // wait out the stop timeout (a bare sleep as PID 1 ignores SIGTERM).
    private async Task<string> RegisterAsync(string family, string command = "sleep 600", int memory = 32)
        => (await plane.EcsAsync("register-task-definition", "--family", family, "--container-definitions",
            $$"""[{"name":"main","image":"{{Image}}","memory":{{memory}},"entryPoint":["sh","-c"],"command":["{{(command.StartsWith("sleep", StringComparison.Ordinal) ? $"trap 'exit 0' TERM; {command} & wait" : command)}}"]}]"""))
            .Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();

    private Task<JsonNode> DescribeAsync(string cluster, string service) => plane.DescribeServiceAsync(cluster, service);

    private async Task WaitStableAsync(string cluster, string service)
    {
        var result = await plane.WaitAsync("services-stable", cluster, [service]);
        Assert.True(result.ExitCode == 0, $"services-stable failed: {result.Stderr}\n{(await DescribeAsync(cluster, service)).ToJsonString()}");
    }

    private async Task<List<JsonNode>> RunningTasksAsync(string cluster, string service)
    {
        var arns = await plane.ListTaskArnsAsync(cluster, service);
        if (arns.Count == 0) return [];
        return (await plane.DescribeTasksAsync(cluster, arns)).Where(t => t["lastStatus"]!.GetValue<string>() == "RUNNING").ToList();
    }

    private async Task DeleteAsync(string cluster, string service)
    {
        _ = (await plane.EcsAsync("delete-service", "--cluster", cluster, "--service", service, "--force")).Json;
        var result = await plane.WaitAsync("services-inactive", cluster, [service]);
        Assert.True(result.ExitCode == 0, result.Stderr);
    }

    [Fact]
    public async Task A_service_reaches_its_desired_count_replaces_a_killed_task_and_deletes_cleanly()
    {
        var cluster = await ClusterAsync("svc");
        await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("svc-web");
        var created = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "web",
            "--task-definition", definition, "--desired-count", "3")).Json["service"]!;
        Assert.Equal("ACTIVE", created["status"]!.GetValue<string>());

        await WaitStableAsync(cluster, "web");
        var tasks = await RunningTasksAsync(cluster, "web");
        Assert.Equal(3, tasks.Count);
        // Steady once its newest task has run Rollout.SteadyAfter (10 s): the waiter only checks the counts.
        await WaitForAsync(async () => (await DescribeAsync(cluster, "web"))["events"]!.AsArray()
            .Any(e => e!["message"]!.GetValue<string>() == "(service web) has reached a steady state."), "the steady-state event");

        // docker kill one task's container: the service replaces it and is stable again.
        var victim = tasks[0]["containers"]![0]!["runtimeId"]!.GetValue<string>();
        await Docker.RunAsync("kill", victim);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        List<JsonNode> after;
        do
        {
            await Task.Delay(1000);
            after = await RunningTasksAsync(cluster, "web");
        }
        while ((after.Count != 3 || after.Any(t => t["containers"]![0]!["runtimeId"]!.GetValue<string>() == victim)) && DateTime.UtcNow < deadline);
        Assert.Equal(3, after.Count);
        Assert.DoesNotContain(after, t => t["containers"]![0]!["runtimeId"]!.GetValue<string>() == victim);
        await WaitStableAsync(cluster, "web");

        await DeleteAsync(cluster, "web");
        Assert.Empty(await RunningTasksAsync(cluster, "web"));
        var (_, left) = await Docker.RunAsync("ps", "-q", "--filter", $"label=com.amazonaws.ecs.cluster={cluster}");
        Assert.Equal("", left);
    }

    [Fact]
    public async Task A_new_revision_rolls_out_within_minimum_healthy_and_maximum_percent()
    {
        var cluster = await ClusterAsync("roll");
        await plane.StartWorkerAsync(cluster);
        var v1 = await RegisterAsync("roll");
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "api", "--task-definition", v1,
            "--desired-count", "4", "--deployment-configuration", "minimumHealthyPercent=50,maximumPercent=150")).Json;
        await WaitStableAsync(cluster, "api");

        var v2 = await RegisterAsync("roll", "sleep 601");
        _ = (await plane.EcsAsync("update-service", "--cluster", cluster, "--service", "api", "--task-definition", v2)).Json;

        // Observe the rollout: never more than 150% of 4 tasks alive, never fewer than 50% running.
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            var arns = await plane.ListTaskArnsAsync(cluster, "api");
            Assert.True(arns.Count <= 6, $"{arns.Count} tasks alive during the rollout");
            var described = await plane.DescribeTasksAsync(cluster, arns);
            var running = described.Count(t => t!["lastStatus"]!.GetValue<string>() == "RUNNING" && t["desiredStatus"]!.GetValue<string>() == "RUNNING");
            Assert.True(running >= 2, $"only {running} tasks running during the rollout");
            var service = await DescribeAsync(cluster, "api");
            if (service["deployments"]!.AsArray().Count == 1 && service["runningCount"]!.GetValue<int>() == 4
                && service["deployments"]![0]!["taskDefinition"]!.GetValue<string>() == v2) break;
            await Task.Delay(500);
        }
        await WaitStableAsync(cluster, "api");
        // COMPLETED once the newest task has run Rollout.SteadyAfter (10 s): the waiter only checks the counts.
        await WaitForAsync(async () => (await DescribeAsync(cluster, "api"))["deployments"]![0]!["rolloutState"]!.GetValue<string>() == "COMPLETED",
            "the new deployment to complete");
        var final = await DescribeAsync(cluster, "api");
        Assert.Equal(v2, final["taskDefinition"]!.GetValue<string>());
        Assert.Equal("COMPLETED", final["deployments"]![0]!["rolloutState"]!.GetValue<string>());
        Assert.All(await RunningTasksAsync(cluster, "api"), t => Assert.Equal(v2, t["taskDefinitionArn"]!.GetValue<string>()));
        await DeleteAsync(cluster, "api");
    }

    [Fact]
    public async Task A_revision_that_exits_at_once_trips_the_circuit_breaker_and_rolls_back()
    {
        var cluster = await ClusterAsync("breaker");
        await plane.StartWorkerAsync(cluster);
        var good = await RegisterAsync("breaker");
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "svc", "--task-definition", good,
            "--desired-count", "2", "--deployment-configuration", "deploymentCircuitBreaker={enable=true,rollback=true}")).Json;
        await WaitStableAsync(cluster, "svc");
        // The breaker rolls back to the last COMPLETED deployment, as ECS's does: the first one must be
        // marked so before the bad revision arrives (steady and marked can be a reconcile apart).
        await WaitForAsync(async () => (await DescribeAsync(cluster, "svc"))["deployments"]![0]!["rolloutState"]!.GetValue<string>() == "COMPLETED",
            "the first deployment to complete");

        var bad = await RegisterAsync("breaker", "exit 1");
        _ = (await plane.EcsAsync("update-service", "--cluster", cluster, "--service", "svc", "--task-definition", bad)).Json;

        var deadline = DateTime.UtcNow.AddSeconds(150);
        JsonNode service;
        do
        {
            await Task.Delay(1000);
            service = await DescribeAsync(cluster, "svc");
        }
        while (!service["events"]!.AsArray().Any(e => e!["message"]!.GetValue<string>().Contains("deployment failed")) && DateTime.UtcNow < deadline);
        Assert.True(service["events"]!.AsArray().Any(e => e!["message"]!.GetValue<string>().Contains("rolling back to deployment")),
            $"no rollback within 150 s.\nservice: {service.ToJsonString()}\ncontrol plane:\n{plane.LogLinesMentioning(cluster)}\n{plane.WorkerLogTails()}");

        await WaitStableAsync(cluster, "svc");
        service = await DescribeAsync(cluster, "svc");
        Assert.Equal(good, service["taskDefinition"]!.GetValue<string>());
        Assert.Equal(2, service["runningCount"]!.GetValue<int>());
        await DeleteAsync(cluster, "svc");
    }

    [Fact]
    public async Task Binpack_fills_one_instance_before_the_next_and_spread_alternates()
    {
        var cluster = await ClusterAsync("place");
        var a = await plane.StartWorkerAsync(cluster, memoryMiB: 1024);
        var b = await plane.StartWorkerAsync(cluster, memoryMiB: 1024);
        var definition = await RegisterAsync("place", memory: 256);

        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "packed", "--task-definition", definition,
            "--desired-count", "3", "--placement-strategy", "type=binpack,field=memory")).Json;
        await WaitStableAsync(cluster, "packed");
        var packed = (await RunningTasksAsync(cluster, "packed")).GroupBy(t => t["containerInstanceArn"]!.GetValue<string>()).ToList();
        Assert.Single(packed);

        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "spread", "--task-definition", definition,
            "--desired-count", "2", "--placement-strategy", "type=spread,field=instanceId")).Json;
        await WaitStableAsync(cluster, "spread");
        var spread = (await RunningTasksAsync(cluster, "spread")).Select(t => t["containerInstanceArn"]!.GetValue<string>()).ToList();
        Assert.Contains(spread, i => i.EndsWith(a.InstanceId, StringComparison.Ordinal));
        Assert.Contains(spread, i => i.EndsWith(b.InstanceId, StringComparison.Ordinal));

        await DeleteAsync(cluster, "packed");
        await DeleteAsync(cluster, "spread");
    }

    [Fact]
    public async Task A_daemon_service_follows_instances_that_join_and_drain()
    {
        var cluster = await ClusterAsync("daemon");
        var a = await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("daemon");
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "agent", "--task-definition", definition,
            "--scheduling-strategy", "DAEMON")).Json;
        await WaitForAsync(async () => (await RunningTasksAsync(cluster, "agent")).Count == 1, "the daemon's first task");
        await WaitStableAsync(cluster, "agent");

        var b = await plane.StartWorkerAsync(cluster);
        await WaitForAsync(async () => (await RunningTasksAsync(cluster, "agent")).Count == 2, "a task on the instance that joined");

        _ = (await plane.EcsAsync("update-container-instances-state", "--cluster", cluster, "--container-instances", a.InstanceId, "--status", "DRAINING")).Json;
        await WaitForAsync(async () => (await RunningTasksAsync(cluster, "agent")) is [var only] && only["containerInstanceArn"]!.GetValue<string>().EndsWith(b.InstanceId, StringComparison.Ordinal),
            "the draining instance's task to stop");
        await DeleteAsync(cluster, "agent");
    }

    [Fact]
    public async Task A_killed_worker_mid_rollout_has_its_tasks_replaced_and_runs_none_twice_when_it_returns()
    {
        var cluster = await ClusterAsync("lost");
        var a = await plane.StartWorkerAsync(cluster);
        var b = await plane.StartWorkerAsync(cluster);
        var v1 = await RegisterAsync("lost");
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", v1,
            "--desired-count", "4", "--placement-strategy", "type=spread,field=instanceId")).Json;
        await WaitStableAsync(cluster, "web");

        var v2 = await RegisterAsync("lost", "sleep 601");
        _ = (await plane.EcsAsync("update-service", "--cluster", cluster, "--service", "web", "--task-definition", v2)).Json;
        await a.KillAsync();

        // Within the grace period plus a reconcile, the service runs its 4 tasks on the other worker.
        await WaitForAsync(async () =>
        {
            var running = await RunningTasksAsync(cluster, "web");
            return running.Count == 4 && running.All(t => t["containerInstanceArn"]!.GetValue<string>().EndsWith(b.InstanceId, StringComparison.Ordinal));
        }, "all tasks on the surviving worker", seconds: 150);
        await WaitStableAsync(cluster, "web");

        // The killed worker comes back: it must stop the containers of the tasks that were replaced.
        await a.StartAsync();
        await WaitForAsync(async () =>
        {
            var (_, ids) = await Docker.RunAsync("ps", "-q", "--filter", $"label=ecs-worker.instance-id={a.InstanceId}");
            return ids.Length == 0;
        }, "the returning worker to stop its replaced containers", seconds: 90);

        // No container without a task record, and no slot running twice.
        var (_, all) = await Docker.RunAsync("ps", "--format", "{{.Label \"com.amazonaws.ecs.task-arn\"}}", "--filter", $"label=com.amazonaws.ecs.cluster={cluster}");
        var containerTasks = all.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var runningArns = (await RunningTasksAsync(cluster, "web")).Select(t => t["taskArn"]!.GetValue<string>()).ToList();
        Assert.Equal(runningArns.Order(), containerTasks.Order());
        Assert.Equal(4, runningArns.Count);
        await DeleteAsync(cluster, "web");
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what, int seconds = 90)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Timed out waiting for {what}");
            await Task.Delay(1000);
        }
    }
}
