using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests;

/// <summary>RunTask to STOPPED on a real Docker engine, driven with the AWS CLI.</summary>
[Collection("control plane 2")]
public sealed class TaskLifecycleTests(ControlPlaneFixture plane) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>This test's workers (and their containers) end with it.</summary>
    public Task DisposeAsync() => plane.StopWorkersAsync();

    private const string Image = "local/busybox:latest";

    private async Task<string> ClusterAsync(string name)
    {
        var cluster = $"{name}-{Guid.NewGuid():N}"[..30];
        (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json.ToString();
        return cluster;
    }

    private async Task<string> RegisterAsync(string family, string containers, params string[] extra)
    {
        var result = await plane.EcsAsync(["register-task-definition", "--family", family, "--container-definitions", containers, .. extra]);
        return result.Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
    }

    private async Task<JsonNode> RunAsync(string cluster, string taskDefinition, params string[] extra)
        => (await plane.EcsAsync(["run-task", "--cluster", cluster, "--task-definition", taskDefinition, .. extra])).Json;

    private async Task<JsonNode> DescribeAsync(string cluster, string taskArn)
        => (await plane.EcsAsync("describe-tasks", "--cluster", cluster, "--tasks", taskArn)).Json["tasks"]![0]!;

    private async Task WaitAsync(string waiter, string cluster, params string[] tasks)
    {
        var result = await plane.WaitAsync(waiter, cluster, tasks);
        Assert.True(result.ExitCode == 0, $"wait {waiter} failed: {result.Stderr}");
    }

    private static async Task<JsonNode> InspectAsync(string containerId)
    {
        var (exitCode, stdout) = await Docker.RunAsync("inspect", containerId);
        Assert.Equal(0, exitCode);
        return JsonNode.Parse(stdout)![0]!;
    }

    [Fact]
    public async Task Run_task_starts_a_real_container_that_stop_task_stops()
    {
        var cluster = await ClusterAsync("lifecycle");
        await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("web-server", $$"""
            [{"name":"web","image":"{{Image}}","cpu":128,"memory":64,"essential":true,
              "entryPoint":["sh","-c"],"command":["echo hello > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
              "environment":[{"name":"GREETING","value":"hello"}],
              "portMappings":[{"containerPort":8080,"hostPort":0}]}]
            """);

        var run = await RunAsync(cluster, definition, "--started-by", "e2e");
        Assert.Empty(run["failures"]!.AsArray());
        var taskArn = run["tasks"]![0]!["taskArn"]!.GetValue<string>();
        // ECS answers PENDING for a bridge task on EC2 (PROVISIONING is for tasks waiting for an ENI or capacity).
        Assert.Equal("PENDING", run["tasks"]![0]!["lastStatus"]!.GetValue<string>());

        await WaitAsync("tasks-running", cluster, taskArn);
        var task = await DescribeAsync(cluster, taskArn);
        Assert.Equal(("RUNNING", "RUNNING"), (task["lastStatus"]!.GetValue<string>(), task["desiredStatus"]!.GetValue<string>()));
        Assert.NotNull(task["startedAt"]);
        var container = task["containers"]![0]!;
        var binding = container["networkBindings"]![0]!;
        var hostPort = binding["hostPort"]!.GetValue<int>();
        Assert.True(hostPort > 0);

        var inspected = await InspectAsync(container["runtimeId"]!.GetValue<string>());
        Assert.Equal(64L * 1024 * 1024, inspected["HostConfig"]!["Memory"]!.GetValue<long>());
        Assert.Equal(128, inspected["HostConfig"]!["CpuShares"]!.GetValue<int>());
        Assert.Contains("GREETING=hello", inspected["Config"]!["Env"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Equal(taskArn, inspected["Config"]!["Labels"]!["com.amazonaws.ecs.task-arn"]!.GetValue<string>());
        Assert.Equal(cluster, inspected["Config"]!["Labels"]!["com.amazonaws.ecs.cluster"]!.GetValue<string>());

        using (var http = new HttpClient())
            Assert.Equal("hello", (await http.GetStringAsync($"http://127.0.0.1:{hostPort}/")).Trim());

        var listed = (await plane.EcsAsync("list-tasks", "--cluster", cluster, "--started-by", "e2e")).Json["taskArns"]!.AsArray();
        Assert.Equal(taskArn, Assert.Single(listed)!.GetValue<string>());

        var stopping = (await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", taskArn, "--reason", "done testing")).Json["task"]!;
        Assert.Equal("STOPPED", stopping["desiredStatus"]!.GetValue<string>());
        await WaitAsync("tasks-stopped", cluster, taskArn);
        var stopped = await DescribeAsync(cluster, taskArn);
        Assert.Equal(("STOPPED", "UserInitiated", "done testing"),
            (stopped["lastStatus"]!.GetValue<string>(), stopped["stopCode"]!.GetValue<string>(), stopped["stoppedReason"]!.GetValue<string>()));
        Assert.NotNull(stopped["containers"]![0]!["exitCode"]);
        Assert.NotNull(stopped["stoppedAt"]);
    }

    [Fact]
    public async Task An_essential_container_that_exits_stops_its_task_with_the_ecs_reason()
    {
        var cluster = await ClusterAsync("essential");
        await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("exits", $$"""[{"name":"main","image":"{{Image}}","memory":32,"command":["sh","-c","sleep 1; exit 3"]}]""");
        var taskArn = (await RunAsync(cluster, definition))["tasks"]![0]!["taskArn"]!.GetValue<string>();

        await WaitAsync("tasks-stopped", cluster, taskArn);
        var task = await DescribeAsync(cluster, taskArn);
        Assert.Equal(("EssentialContainerExited", "Essential container in task exited"), (task["stopCode"]!.GetValue<string>(), task["stoppedReason"]!.GetValue<string>()));
        Assert.Equal(3, task["containers"]![0]!["exitCode"]!.GetValue<int>());
    }

    [Fact]
    public async Task An_image_that_cannot_be_pulled_stops_the_task_with_cannot_pull_container_error()
    {
        var cluster = await ClusterAsync("pull");
        await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("unpullable", """[{"name":"main","image":"nonexistent.invalid/none:1","memory":32}]""");
        var taskArn = (await RunAsync(cluster, definition))["tasks"]![0]!["taskArn"]!.GetValue<string>();

        await WaitAsync("tasks-stopped", cluster, taskArn);
        var task = await DescribeAsync(cluster, taskArn);
        Assert.StartsWith("CannotPullContainerError", task["stoppedReason"]!.GetValue<string>());
        Assert.Equal("TaskFailedToStart", task["stopCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_task_that_fits_nowhere_comes_back_as_a_resource_failure()
    {
        var cluster = await ClusterAsync("nofit");
        var worker = await plane.StartWorkerAsync(cluster, memoryMiB: 512);
        var definition = await RegisterAsync("huge", $$"""[{"name":"main","image":"{{Image}}","memory":4096}]""");
        var run = await RunAsync(cluster, definition);
        Assert.Empty(run["tasks"]!.AsArray());
        var failure = Assert.Single(run["failures"]!.AsArray())!;
        Assert.Equal("RESOURCE:MEMORY", failure["reason"]!.GetValue<string>());
        Assert.EndsWith(worker.InstanceId, failure["arn"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_task_that_adds_capabilities_is_placed_only_on_a_worker_that_allows_it()
    {
        var cluster = await ClusterAsync("caps");
        var strict = await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("net-admin", """
            [{"name":"main","image":"local/busybox:latest","memory":32,"command":["sleep","300"],
              "linuxParameters":{"capabilities":{"add":["NET_ADMIN"]}}}]
            """);
        var described = (await plane.EcsAsync("describe-task-definition", "--task-definition", definition)).Json["taskDefinition"]!;
        Assert.Contains(described["requiresAttributes"]!.AsArray(), a => a!["name"]!.GetValue<string>() == "ecs-worker.linux-parameters.capabilities-add");

        // Only a default worker: nowhere to place it.
        var refused = await RunAsync(cluster, definition);
        Assert.Empty(refused["tasks"]!.AsArray());
        var failure = Assert.Single(refused["failures"]!.AsArray())!;
        Assert.Equal("ATTRIBUTE", failure["reason"]!.GetValue<string>());
        Assert.EndsWith(strict.InstanceId, failure["arn"]!.GetValue<string>());

        var allowing = await plane.StartWorkerAsync(cluster, settings: new Dictionary<string, string> { ["Worker__AllowAddedCapabilities"] = "true" });
        var run = await RunAsync(cluster, definition, "--count", "2");
        Assert.Empty(run["failures"]!.AsArray());
        var tasks = run["tasks"]!.AsArray().Select(t => t!["taskArn"]!.GetValue<string>()).ToArray();
        await WaitAsync("tasks-running", cluster, tasks);
        foreach (var taskArn in tasks)
        {
            var task = await DescribeAsync(cluster, taskArn);
            Assert.EndsWith(allowing.InstanceId, task["containerInstanceArn"]!.GetValue<string>());
            var container = await InspectAsync(task["containers"]![0]!["runtimeId"]!.GetValue<string>());
            Assert.Contains("NET_ADMIN", container["HostConfig"]!["CapAdd"]!.AsArray().Select(c => c!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task Depends_on_success_starts_the_app_only_after_init_succeeded()
    {
        var cluster = await ClusterAsync("depends");
        await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("ordered", $$"""
            [{"name":"init","image":"{{Image}}","memory":32,"essential":false,"command":["sh","-c","sleep 2"]},
             {"name":"app","image":"{{Image}}","memory":32,"command":["sleep","300"],
              "dependsOn":[{"containerName":"init","condition":"SUCCESS"}]}]
            """);
        var taskArn = (await RunAsync(cluster, definition))["tasks"]![0]!["taskArn"]!.GetValue<string>();
        await WaitAsync("tasks-running", cluster, taskArn);

        var task = await DescribeAsync(cluster, taskArn);
        var byName = task["containers"]!.AsArray().ToDictionary(c => c!["name"]!.GetValue<string>(), c => c!);
        var init = await InspectAsync(byName["init"]["runtimeId"]!.GetValue<string>());
        var app = await InspectAsync(byName["app"]["runtimeId"]!.GetValue<string>());
        var initFinished = DateTimeOffset.Parse(init["State"]!["FinishedAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        var appStarted = DateTimeOffset.Parse(app["State"]!["StartedAt"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(appStarted >= initFinished, $"app started {appStarted:O} before init finished {initFinished:O}");
        Assert.Equal(0, init["State"]!["ExitCode"]!.GetValue<int>());

        await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", taskArn);
        await WaitAsync("tasks-stopped", cluster, taskArn);
    }

    [Fact]
    public async Task Killing_and_restarting_the_worker_loses_no_task()
    {
        var cluster = await ClusterAsync("restart");
        var worker = await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("durable", $$"""[{"name":"main","image":"{{Image}}","memory":32,"command":["sleep","300"]}]""");
        var run = await RunAsync(cluster, definition, "--count", "2");
        var tasks = run["tasks"]!.AsArray().Select(t => t!["taskArn"]!.GetValue<string>()).ToArray();
        await WaitAsync("tasks-running", cluster, tasks);
        var runtimeIds = new List<string>();
        foreach (var arn in tasks) runtimeIds.Add((await DescribeAsync(cluster, arn))["containers"]![0]!["runtimeId"]!.GetValue<string>());

        await worker.KillAsync();
        // While the worker is down, one task is stopped by the user: the command waits in its queue.
        await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", tasks[1]);
        await worker.StartAsync();

        await WaitAsync("tasks-stopped", cluster, tasks[1]);
        var survivor = await DescribeAsync(cluster, tasks[0]);
        Assert.Equal("RUNNING", survivor["lastStatus"]!.GetValue<string>());
        Assert.Equal(runtimeIds[0], survivor["containers"]![0]!["runtimeId"]!.GetValue<string>());
        var (_, running) = await Docker.RunAsync("inspect", "-f", "{{.State.Running}}", runtimeIds[0]);
        Assert.Equal("true", running);

        // The re-adopted task still answers to StopTask.
        await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", tasks[0]);
        await WaitAsync("tasks-stopped", cluster, tasks[0]);
        var (_, left) = await Docker.RunAsync("ps", "-q", "--filter", $"label=com.amazonaws.ecs.cluster={cluster}");
        Assert.Equal("", left);
    }

    [Fact]
    public async Task Two_workers_of_one_cluster_both_receive_tasks()
    {
        var cluster = await ClusterAsync("two");
        var a = await plane.StartWorkerAsync(cluster);
        var b = await plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("spread", $$"""[{"name":"main","image":"{{Image}}","memory":16,"command":["sleep","300"]}]""");
        var run = await RunAsync(cluster, definition, "--count", "4", "--placement-strategy", "type=spread,field=instanceId");
        var instances = run["tasks"]!.AsArray().Select(t => t!["containerInstanceArn"]!.GetValue<string>()).ToList();
        Assert.Equal(2, instances.Count(i => i.EndsWith(a.InstanceId, StringComparison.Ordinal)));
        Assert.Equal(2, instances.Count(i => i.EndsWith(b.InstanceId, StringComparison.Ordinal)));
        var arns = run["tasks"]!.AsArray().Select(t => t!["taskArn"]!.GetValue<string>()).ToArray();
        await WaitAsync("tasks-running", cluster, arns);
        foreach (var arn in arns) await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", arn);
        await WaitAsync("tasks-stopped", cluster, arns);
    }

    [Fact]
    public async Task Ten_concurrent_run_tasks_place_exactly_as_many_as_fit()
    {
        var cluster = await ClusterAsync("contend");
        await plane.StartWorkerAsync(cluster, memoryMiB: 512);
        await plane.StartWorkerAsync(cluster, memoryMiB: 256);
        var definition = await RegisterAsync("contend", $$"""[{"name":"main","image":"{{Image}}","memory":128,"command":["sleep","300"]}]""");

        var result = await plane.PythonAsync("concurrent_run.py", cluster, definition, "10");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var outcome = JsonNode.Parse(result.Stdout)!;
        Assert.Empty(outcome["errors"]!.AsArray());
        // 512 MiB holds four 128 MiB tasks and 256 MiB two: six fit, four do not.
        Assert.Equal(6, outcome["tasks"]!.AsArray().Count);
        Assert.Equal(4, outcome["failures"]!.AsArray().Count);
        Assert.All(outcome["failures"]!.AsArray(), f => Assert.Equal("RESOURCE:MEMORY", f!.GetValue<string>()));

        var arns = outcome["tasks"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
        await WaitAsync("tasks-running", cluster, arns);
        foreach (var arn in arns) await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", arn);
        await WaitAsync("tasks-stopped", cluster, arns);
    }

    [Fact]
    public async Task Run_task_with_one_client_token_launches_once_however_often_and_concurrently_it_is_sent()
    {
        var cluster = await ClusterAsync("token");
        var worker = await plane.StartWorkerAsync(cluster, memoryMiB: 1024);
        var definition = await RegisterAsync("token", $$"""[{"name":"main","image":"{{Image}}","memory":128,"command":["sleep","300"]}]""");
        var token = Guid.NewGuid().ToString();

        // Eight identical calls at once, then one more afterwards: one pair of tasks, one answer.
        var result = await plane.PythonAsync("concurrent_run.py", cluster, definition, "8", token, "2");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var outcome = JsonNode.Parse(result.Stdout)!;
        Assert.Empty(outcome["errors"]!.AsArray());
        var arns = outcome["tasks"]!.AsArray().Select(t => t!.GetValue<string>()).Distinct().Order().ToArray();
        Assert.Equal(2, arns.Length);
        Assert.Equal(16, outcome["tasks"]!.AsArray().Count);
        var retry = await RunAsync(cluster, definition, "--count", "2", "--client-token", token);
        Assert.Equal(arns, retry["tasks"]!.AsArray().Select(t => t!["taskArn"]!.GetValue<string>()).Order());

        // The same token with other parameters is refused.
        var other = await plane.EcsAsync("run-task", "--cluster", cluster, "--task-definition", definition, "--count", "1", "--client-token", token);
        Assert.NotEqual(0, other.ExitCode);
        Assert.Contains("InvalidParameterException", other.Stderr);

        // Only those two exist, hold resources and run: the losers' placements left nothing behind.
        await WaitAsync("tasks-running", cluster, arns);
        var listed = (await plane.EcsAsync("list-tasks", "--cluster", cluster)).Json["taskArns"]!.AsArray().Select(a => a!.GetValue<string>()).Order();
        Assert.Equal(arns, listed);
        var instance = (await plane.EcsAsync("describe-container-instances", "--cluster", cluster, "--container-instances", worker.InstanceId))
            .Json["containerInstances"]![0]!;
        var memory = instance["remainingResources"]!.AsArray().Single(r => r!["name"]!.GetValue<string>() == "MEMORY")!["integerValue"]!.GetValue<int>();
        var registered = instance["registeredResources"]!.AsArray().Single(r => r!["name"]!.GetValue<string>() == "MEMORY")!["integerValue"]!.GetValue<int>();
        Assert.Equal(registered - 2 * 128, memory);
        var (_, containers) = await Docker.RunAsync("ps", "-q", "--filter", $"label=com.amazonaws.ecs.cluster={cluster}");
        Assert.Equal(2, containers.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        foreach (var arn in arns) await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", arn);
        await WaitAsync("tasks-stopped", cluster, arns);
    }

    [Fact]
    public async Task Run_task_names_a_missing_cluster_before_anything_else_and_an_empty_one_as_having_no_instances()
    {
        var definition = await RegisterAsync("nowhere", $$"""[{"name":"main","image":"{{Image}}","memory":16}]""");
        var missing = $"missing-{Guid.NewGuid():N}"[..30];
        Assert.Equal("ClusterNotFoundException", (await plane.EcsAsync("run-task", "--cluster", missing, "--task-definition", definition)).ErrorCode);
        Assert.Equal("ClusterNotFoundException", (await plane.EcsAsync("run-task", "--cluster", missing, "--task-definition", "no-such-family")).ErrorCode);

        var empty = await ClusterAsync("empty");
        var none = await plane.EcsAsync("run-task", "--cluster", empty, "--task-definition", definition);
        Assert.Equal("InvalidParameterException", none.ErrorCode);
        Assert.Contains("No Container Instances were found in your cluster.", none.Stderr);
        Assert.Equal("ClientException", (await plane.EcsAsync("run-task", "--cluster", empty, "--task-definition", "no-such-family")).ErrorCode);

        await plane.EcsAsync("delete-cluster", "--cluster", empty);
        Assert.Equal("ClusterNotFoundException", (await plane.EcsAsync("run-task", "--cluster", empty, "--task-definition", definition)).ErrorCode);
    }
}
