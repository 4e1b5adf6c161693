using Serverless.Core.Logs;
using Serverless.Worker.Docker;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Logs;

/// <summary>The awslogs driver with real Docker and storage: what a container prints lands in the stream ECS names.</summary>
public sealed class AwsLogsDockerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    private TaskEventsProbe Events => fixture.Events;

    private static string Definition(string family, string command, string extraOptions = "") => $$$"""
        {"family": "{{{family}}}", "containerDefinitions": [{
          "name": "app", "image": "local/busybox:latest", "memory": 32, "stopTimeout": 1,
          "command": ["sh", "-c", "{{{command}}}"],
          "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/{{{family}}}", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web",
            "awslogs-create-group": "true"{{{extraOptions}}}
        """ + "}}}]}";

    private static async Task<List<string>> MessagesAsync(WorkerHarness worker, string group, string stream)
    {
        var store = worker.Get<LogStore>();
        var found = await store.GetStreamAsync(await store.GetGroupAsync(group, worker.Stopping), stream, worker.Stopping);
        var messages = new List<string>();
        await foreach (var e in worker.Get<LogEventStore>().ReadForwardAsync(found, 0, long.MaxValue / 2, null, worker.Stopping)) messages.Add(e.Message);
        return messages;
    }

    /// <summary>The test's output, with the lines written to it kept.</summary>
    private sealed class Captured(ITestOutputHelper inner) : ITestOutputHelper
    {
        private readonly List<string> _lines = [];
        public bool Any(string text) { lock (_lines) return _lines.Any(l => l.Contains(text, StringComparison.Ordinal)); }
        public void WriteLine(string message) { lock (_lines) _lines.Add(message); inner.WriteLine(message); }
        public void WriteLine(string format, params object[] args) => WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
    }

    [Fact]
    public async Task Stdout_and_stderr_reach_the_stream_ECS_names_in_order_and_outlive_the_container()
    {
        var captured = new Captured(output);
        await using var worker = await WorkerHarness.StartAsync(fixture, captured);
        var definition = await worker.RegisterAsync(Definition("shipped",
            "echo one; sleep 0.1; echo two >&2; sleep 0.1; printf 'Traceback\\n  at x\\n'; sleep 0.1; echo; echo three",
            extraOptions: """, "awslogs-multiline-pattern": "^[A-Za-z]" """));
        var start = worker.StartCommand(definition);

        await worker.Runner.StartAsync(start, redelivered: false, worker.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);
        await worker.WaitUntilRemovedAsync(start.TaskArn);

        var stream = $"web/app/{TaskRunner.TaskIdOf(start.TaskArn)}";
        Assert.Equal(["one", "two", "Traceback\n  at x", "three"], await MessagesAsync(worker, "/ecs/shipped", stream));
        // On the engine's host, as root: from Docker's json-file, not through its API.
        Assert.True(captured.Any("(Docker's log read from its json-file)"));
    }

    [Fact]
    public async Task A_worker_restarted_while_a_container_prints_neither_loses_nor_repeats_a_line()
    {
        var first = await WorkerHarness.StartAsync(fixture, output);
        var definition = await first.RegisterAsync(Definition("restarted", "i=0; while [ $i -lt 150 ]; do echo line-$i; i=$((i+1)); sleep 0.02; done"));
        var start = first.StartCommand(definition);
        await first.InsertTaskRowAsync(start, definition);
        await first.Runner.StartAsync(start, false, first.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", first.Stopping);
        await Task.Delay(1500);
        var (instanceId, prefix) = (first.Identity.InstanceId, first.StoragePrefix);
        await first.DisposeAsync();

        var captured = new Captured(output);
        await using var second = await WorkerHarness.StartAsync(fixture, captured, instanceId, prefix);
        await second.Adoption.RunAsync(second.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", second.Stopping);
        await second.WaitUntilRemovedAsync(start.TaskArn);

        var messages = await MessagesAsync(second, "/ecs/restarted", $"web/app/{TaskRunner.TaskIdOf(start.TaskArn)}");
        Assert.Equal(Enumerable.Range(0, 150).Select(i => $"line-{i}"), messages);
        Assert.True(captured.Any("(Docker's log read from its json-file)"));
    }

    [Fact]
    public async Task A_container_whose_log_group_does_not_exist_does_not_start_as_with_Dockers_driver()
    {
        await using var worker = await WorkerHarness.StartAsync(fixture, output);
        var definition = await worker.RegisterAsync(Definition("nogroup", "echo never").Replace("\"awslogs-create-group\": \"true\"", "\"awslogs-create-group\": \"false\""));
        var start = worker.StartCommand(definition);

        await worker.Runner.StartAsync(start, redelivered: false, worker.Stopping);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);

        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.Contains("ResourceNotFoundException: The specified log group does not exist.", Assert.Single(stopped.Containers).Reason);
    }
}
