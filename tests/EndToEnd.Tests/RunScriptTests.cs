using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Serverless.EndToEnd.Tests;

/// <summary>
/// <c>scripts/run.sh</c> as a user runs it — <c>--detach</c>, <c>--stop</c>, <c>--detach</c> again —
/// on its own state directory and free ports, with the build the tests already made. Across the
/// restart it must keep the clusters, services and tasks, and leave no container without a task.
/// </summary>
public sealed partial class RunScriptTests : IAsyncLifetime
{
    // Short enough that the restart below stays down longer than it: a control plane that came back
    // before the worker would take the instance for lost and stop its tasks.
    private const int AgentLostAfterSeconds = 8;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    private readonly string _stateDirectory = Directory.CreateTempSubdirectory("ecs-run-").FullName;
    private readonly HashSet<string> _instanceIds = [];
    private string _endpoint = "";

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await RunScriptAsync("--stop", "--fresh");
        // In case the script itself failed: nothing this test started outlives it.
        foreach (var id in _instanceIds) await Docker.RemoveByLabelAsync($"ecs-worker.instance-id={id}");
        try { Directory.Delete(_stateDirectory, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Stop_then_start_keeps_clusters_services_and_tasks_and_leaves_no_container_without_a_task()
    {
        await StartAsync();
        var instanceId = InstanceId();
        await CreateServiceAsync("kept", desiredCount: 2);
        var tasks = await ServiceTasksAsync("kept");
        Assert.Equal(2, tasks.Count);

        await StopAsync();
        // Stopping leaves the task containers running, as stopping the ECS agent does...
        Assert.Equal(tasks.Order(), (await RunningContainerTasksAsync(instanceId)).Order());
        // ...and stays down longer than the control plane waits for a silent agent.
        await Task.Delay(TimeSpan.FromSeconds(AgentLostAfterSeconds + 2));
        await StartAsync();

        Assert.Equal(instanceId, InstanceId());
        var services = (await EcsAsync("list-services")).Json["serviceArns"]!.AsArray().Select(a => a!.GetValue<string>());
        Assert.Equal(["arn:aws:ecs:us-east-1:000000000000:service/default/kept"], services);
        await EventuallyAsync("the same two tasks RUNNING in a stable service, each with its running container", async () =>
        {
            var service = (await EcsAsync("describe-services", "--services", "kept")).Json["services"]![0]!;
            return service["runningCount"]!.GetValue<int>() == 2 && service["deployments"]!.AsArray().Count == 1
                && (await ServiceTasksAsync("kept")).SetEquals(tasks)
                && (await RunningContainerTasksAsync(instanceId)).SetEquals(tasks);
        });
        await AssertEveryContainerHasItsTaskAsync(instanceId);
    }

    [Fact]
    public async Task A_fresh_start_forgets_the_old_state_and_removes_its_task_containers()
    {
        await StartAsync();
        var oldInstanceId = InstanceId();
        await CreateServiceAsync("forgotten", desiredCount: 1);
        await StopAsync();
        Assert.Single(await RunningContainerTasksAsync(oldInstanceId));

        await StartAsync("--fresh");

        var (_, left) = await Docker.RunAsync("ps", "-aq", "--filter", $"label=ecs-worker.instance-id={oldInstanceId}");
        Assert.Equal("", left);
        Assert.Empty((await EcsAsync("list-services")).Json["serviceArns"]!.AsArray());
        Assert.Empty((await EcsAsync("list-task-definitions")).Json["taskDefinitionArns"]!.AsArray());
        Assert.NotEqual(oldInstanceId, InstanceId());
    }

    private async Task StartAsync(params string[] options)
    {
        var output = await RunScriptAsync(["--detach", .. options]);
        _endpoint = RunningAt().Match(output) is { Success: true } match ? match.Groups[1].Value : throw new InvalidOperationException(output);
        Assert.True(File.Exists(Path.Combine(_stateDirectory, "worker", "instance-id")), $"run.sh returned before its worker was ready:\n{output}\n{Logs()}");
        _instanceIds.Add(InstanceId());
    }

    private async Task StopAsync() => await RunScriptAsync("--stop");

    private async Task CreateServiceAsync(string name, int desiredCount)
    {
        await EcsAsync("register-task-definition", "--family", name, "--container-definitions",
            """[{"name":"main","image":"local/busybox:latest","memory":32,"essential":true,"command":["sleep","3600"]}]""");
        await EcsAsync("create-service", "--service-name", name, "--task-definition", name, "--desired-count", $"{desiredCount}");
        await EventuallyAsync($"{name} running {desiredCount} task(s)", async () =>
        {
            var service = (await EcsAsync("describe-services", "--services", name)).Json["services"]![0]!;
            return service["runningCount"]!.GetValue<int>() == desiredCount;
        });
    }

    /// <summary>The service's tasks whose last status is RUNNING.</summary>
    private async Task<HashSet<string>> ServiceTasksAsync(string service)
    {
        var arns = (await EcsAsync("list-tasks", "--service-name", service)).Json["taskArns"]!.AsArray().Select(a => a!.GetValue<string>()).ToArray();
        if (arns.Length == 0) return [];
        var tasks = (await EcsAsync(["describe-tasks", "--tasks", .. arns])).Json["tasks"]!.AsArray();
        return [.. tasks.Where(t => t!["lastStatus"]!.GetValue<string>() == "RUNNING").Select(t => t!["taskArn"]!.GetValue<string>())];
    }

    /// <summary>The task ARNs on the running containers of the instance.</summary>
    private static async Task<HashSet<string>> RunningContainerTasksAsync(string instanceId)
    {
        var (_, stdout) = await Docker.RunAsync("ps", "--filter", $"label=ecs-worker.instance-id={instanceId}",
            "--format", "{{.Label \"com.amazonaws.ecs.task-arn\"}}");
        return [.. stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    /// <summary>Every container of the instance, running or not, belongs to a task that should run and does.</summary>
    private async Task AssertEveryContainerHasItsTaskAsync(string instanceId)
    {
        var (_, stdout) = await Docker.RunAsync("ps", "-a", "--filter", $"label=ecs-worker.instance-id={instanceId}",
            "--format", "{{.Label \"com.amazonaws.ecs.task-arn\"}} {{.State}}");
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var (taskArn, state) = (line.Split(' ')[0], line.Split(' ')[1]);
            var task = (await EcsAsync("describe-tasks", "--tasks", taskArn)).Json["tasks"]!.AsArray().SingleOrDefault();
            Assert.True(task is not null, $"container of {taskArn} ({state}) has no task");
            Assert.Equal(("RUNNING", "RUNNING", "running"),
                (task["lastStatus"]!.GetValue<string>(), task["desiredStatus"]!.GetValue<string>(), state));
        }
    }

    private string InstanceId() => File.ReadAllText(Path.Combine(_stateDirectory, "worker", "instance-id")).Trim();

    private async Task<CliResult> EcsAsync(params string[] args)
    {
        var result = await ControlPlaneFixture.AwsCliAsync(_endpoint, ["ecs", .. args]);
        Assert.True(result.ExitCode == 0, $"aws ecs {args[0]} failed: {result.Stderr}");
        return result;
    }

    private async Task EventuallyAsync(string what, Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Not within {Bound.TotalSeconds} s: {what}\n{Logs()}");
            await Task.Delay(500);
        }
    }

    /// <summary>Runs <c>scripts/run.sh</c> with this test's state directory; returns its output, or fails with it.</summary>
    private async Task<string> RunScriptAsync(params string[] args)
    {
        var output = Path.Combine(_stateDirectory, $"run-{Guid.NewGuid():N}.out");
        // Into a file, not a pipe: the processes a --detach run leaves behind must not hold our pipe open.
        var start = new ProcessStartInfo("bash", ["-c", "exec bash \"$0\" \"$@\" >\"$RUN_OUTPUT\" 2>&1", Script(), .. args]);
        start.Environment["RUN_OUTPUT"] = output;
        start.Environment["ECS_STATE_DIR"] = _stateDirectory;
        start.Environment["ECS_PORT"] = $"{ControlPlaneFixture.FreePort()}";
        start.Environment["ECS_AZURITE_PORTS"] = "0 0 0";
        start.Environment["ECS_SKIP_BUILD"] = "1";
        start.Environment["Ecs__AgentDisconnectedAfterSeconds"] = "4";
        start.Environment["Ecs__AgentLostAfterSeconds"] = $"{AgentLostAfterSeconds}";
        start.Environment["Worker__HeartbeatSeconds"] = "1";
        start.Environment["Worker__ContainerStopTimeoutSeconds"] = "2";
        using var process = Process.Start(start)!;
        await process.WaitForExitAsync();
        var text = await File.ReadAllTextAsync(output);
        Assert.True(process.ExitCode == 0, $"run.sh {string.Join(' ', args)} exited with {process.ExitCode}:\n{text}\n{Logs()}");
        return text;
    }

    private string Logs()
    {
        var run = Path.Combine(_stateDirectory, "run");
        return string.Join('\n', new[] { "worker.log", "control-plane.log" }
            .Select(name => Path.Combine(run, name))
            .Where(File.Exists)
            .Select(path => $"--- {path} (tail)\n{string.Join('\n', File.ReadLines(path).TakeLast(60))}"));
    }

    private static string Script()
    {
        // tests/EndToEnd.Tests/bin/<Configuration>/net10.0 → the repository root
        var root = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        return Path.Combine(root, "scripts", "run.sh");
    }

    [GeneratedRegex(@"The ECS control plane is running at (http://\S+)")]
    private static partial Regex RunningAt();
}
