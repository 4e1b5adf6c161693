using Azure.Storage.Queues;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Worker.Reporting;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Commands;

/// <summary>Commands through the instance's real queue (Azurite), tasks on the real engine.</summary>
public sealed class CommandLoopTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    private TaskEventsProbe Events => fixture.Events;

    private static async Task<QueueClient> CommandQueueAsync(WorkerHarness worker)
    {
        var queue = new QueueServiceClient(worker.ConnectionString, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None })
            .GetQueueClient(TaskMessages.CommandQueue(worker.Identity.InstanceId));
        await queue.CreateIfNotExistsAsync();
        return queue;
    }

    [Fact]
    public async Task Start_and_stop_commands_run_and_stop_the_task_and_leave_the_queue_empty()
    {
        await using var worker = await WorkerHarness.StartAsync(fixture, output);
        var definition = await worker.RegisterAsync("""
            {"family": "queued", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        var queue = await CommandQueueAsync(worker);
        var loop = worker.Commands.RunAsync(worker.Stopping);

        var start = worker.StartCommand(definition);
        await queue.SendMessageAsync(TaskMessages.Serialize(start));
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", worker.Stopping);
        await queue.SendMessageAsync(TaskMessages.Serialize(WorkerHarness.StopCommand(start.TaskArn, "Done")));
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);

        Assert.Equal("Done", stopped.StoppedReason);
        await WaitUntilEmptyAsync(queue);
        Assert.False(loop.IsCompleted);
    }

    [Fact]
    public async Task A_wake_from_the_control_plane_brings_a_command_in_without_waiting_for_the_next_poll()
    {
        // A clock that never moves: once idle, the loop would wait for its next poll forever.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var worker = await WorkerHarness.StartAsync(fixture, output, time: time);
        var endpoint = worker.Get<QueueWake>().Listen(0, "127.0.0.1");
        var definition = await worker.RegisterAsync("""
            {"family": "woken", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        var queue = await CommandQueueAsync(worker);
        _ = worker.Commands.RunAsync(worker.Stopping);
        await Task.Delay(500); // the first poll finds nothing, and the loop settles into its wait

        var start = worker.StartCommand(definition) with { ReportWake = "127.0.0.1:9" };
        await queue.SendMessageAsync(TaskMessages.Serialize(start));
        using var controlPlane = new QueueWake(NullLogger<QueueWake>.Instance);
        controlPlane.Send(endpoint, queue.Name);

        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", worker.Stopping);
        // And the reports of the command's task will wake the control plane that sent it.
        Assert.Equal("127.0.0.1:9", worker.Get<TaskStateReporter>().ReportWake);
        await worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), worker.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);
    }

    [Fact]
    public async Task A_command_delivered_too_often_is_given_up_and_its_task_reported_STOPPED()
    {
        await using var worker = await WorkerHarness.StartAsync(fixture, output, configure: o => o.MaxCommandDequeueCount = 2);
        var definition = await worker.RegisterAsync("""
            {"family": "poison", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32}]}
            """);
        var queue = await CommandQueueAsync(worker);
        var start = worker.StartCommand(definition);
        await queue.SendMessageAsync(TaskMessages.Serialize(start));
        // Two deliveries that went nowhere (a worker that crashed while handling it, twice).
        for (var i = 0; i < 2; i++)
        {
            Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(1))).Value);
            await Task.Delay(1100);
        }

        _ = worker.Commands.RunAsync(worker.Stopping);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);

        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.Equal("The worker could not handle the Start command after 2 attempts", stopped.StoppedReason);
        await WaitUntilEmptyAsync(queue);
        Assert.Empty(await worker.ContainersAsync(start.TaskArn));
    }

    [Fact]
    public async Task An_unreadable_command_is_deleted_and_does_not_block_the_next()
    {
        await using var worker = await WorkerHarness.StartAsync(fixture, output);
        var definition = await worker.RegisterAsync("""
            {"family": "after-garbage", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        var queue = await CommandQueueAsync(worker);
        await queue.SendMessageAsync("this is not a command");
        var start = worker.StartCommand(definition);
        await queue.SendMessageAsync(TaskMessages.Serialize(start));

        _ = worker.Commands.RunAsync(worker.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", worker.Stopping);
        await WaitUntilEmptyAsync(queue);

        await worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), worker.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);
    }

    private static async Task WaitUntilEmptyAsync(QueueClient queue)
    {
        for (var i = 0; i < 100; i++)
        {
            if ((await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0) return;
            await Task.Delay(100);
        }
        Assert.Fail($"Queue {queue.Name} still holds messages");
    }
}
