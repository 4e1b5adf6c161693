using Docker.DotNet.Models;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Docker;

/// <summary>A worker that restarts finds its containers again and squares them with the task rows.</summary>
public sealed class AdoptionDockerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    private const string Sleeper = """
        {"family": "%FAMILY%", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
        """;

    private TaskEventsProbe Events => fixture.Events;

    private static string Family(string family) => Sleeper.Replace("%FAMILY%", family, StringComparison.Ordinal);

    [Fact]
    public async Task A_restarted_worker_re_adopts_a_running_task_and_stops_one_whose_desired_status_is_STOPPED()
    {
        var first = await WorkerHarness.StartAsync(fixture, output);
        var definition = await first.RegisterAsync(Family("adopt"));
        var keep = first.StartCommand(definition);
        var drop = first.StartCommand(definition);
        await first.InsertTaskRowAsync(keep, definition);
        await first.InsertTaskRowAsync(drop, definition);
        await first.Runner.StartAsync(keep, false, first.Stopping);
        await first.Runner.StartAsync(drop, false, first.Stopping);
        await Events.WaitForStatusAsync(keep.TaskArn, "RUNNING", first.Stopping);
        await Events.WaitForStatusAsync(drop.TaskArn, "RUNNING", first.Stopping);
        var (instanceId, prefix) = (first.Identity.InstanceId, first.StoragePrefix);
        await first.DisposeAsync();

        // While no worker runs, the control plane decides one task should stop.
        await using var second = await WorkerHarness.StartAsync(fixture, output, instanceId, prefix);
        await second.Tasks.UpdateAsync(WorkerHarness.Cluster, TaskRunner.TaskIdOf(drop.TaskArn),
            row => row with { DesiredStatus = "STOPPED", StoppedReason = "Scaled in while the worker was away" }, second.Stopping);
        await second.Adoption.RunAsync(second.Stopping);

        var dropped = await Events.WaitForStatusAsync(drop.TaskArn, "STOPPED", second.Stopping);
        Assert.Equal("Scaled in while the worker was away", dropped.StoppedReason);
        await second.WaitUntilRemovedAsync(drop.TaskArn);

        var reports = await Events.ReportsAsync(keep.TaskArn, second.Stopping);
        Assert.Equal(2, reports.Count(r => r.LastStatus == "RUNNING")); // once by each worker
        var runtimeId = reports.Last().Containers.Single().RuntimeId!;
        Assert.True((await second.InspectAsync(runtimeId)).State.Running);

        // Adopted means watched: its essential container's exit stops it.
        await second.Docker.Containers.KillContainerAsync(runtimeId, new ContainerKillParameters { Signal = "KILL" });
        var stopped = await Events.WaitForStatusAsync(keep.TaskArn, "STOPPED", second.Stopping);
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        Assert.Equal(137, stopped.Containers.Single().ExitCode);
    }

    [Fact]
    public async Task A_task_that_died_while_the_worker_was_down_is_reported_STOPPED_with_its_exit_code()
    {
        var first = await WorkerHarness.StartAsync(fixture, output);
        var definition = await first.RegisterAsync("""
            {"family": "dies-meanwhile", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sh", "-c", "sleep 300"]}]}
            """);
        var start = first.StartCommand(definition);
        await first.InsertTaskRowAsync(start, definition);
        await first.Runner.StartAsync(start, false, first.Stopping);
        var running = await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", first.Stopping);
        var (instanceId, prefix) = (first.Identity.InstanceId, first.StoragePrefix);
        await first.DisposeAsync();

        await fixture.Docker.Containers.KillContainerAsync(running.Containers.Single().RuntimeId!, new ContainerKillParameters { Signal = "KILL" });
        await using var second = await WorkerHarness.StartAsync(fixture, output, instanceId, prefix);
        await second.Tasks.UpdateAsync(WorkerHarness.Cluster, TaskRunner.TaskIdOf(start.TaskArn), row => row with { LastStatus = "RUNNING" }, second.Stopping);
        await second.Adoption.RunAsync(second.Stopping);

        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", second.Stopping);
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        Assert.Equal(137, stopped.Containers.Single().ExitCode);
        await second.WaitUntilRemovedAsync(start.TaskArn);
    }

    /// <summary>A worker that ran a task no row knows of, restarted (its adoption not run yet).</summary>
    private async Task<(WorkerHarness Second, TaskCommand Start)> RestartedWithATaskWithoutRowAsync(string family)
    {
        var first = await WorkerHarness.StartAsync(fixture, output);
        var definition = await first.RegisterAsync(Family(family));
        var start = first.StartCommand(definition);
        await first.Runner.StartAsync(start, false, first.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", first.Stopping);
        var (instanceId, prefix) = (first.Identity.InstanceId, first.StoragePrefix);
        await first.DisposeAsync();
        return (await WorkerHarness.StartAsync(fixture, output, instanceId, prefix), start);
    }

    [Fact]
    public async Task Containers_of_a_task_the_control_plane_does_not_know_are_removed()
    {
        var (second, start) = await RestartedWithATaskWithoutRowAsync("orphan");
        await using var _ = second;
        await second.Adoption.RunAsync(second.Stopping);

        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", second.Stopping);
        Assert.Equal(TaskAdoption.TaskNoLongerExists, stopped.StoppedReason);
        await second.WaitUntilRemovedAsync(start.TaskArn);
    }

    [Fact]
    public async Task A_start_event_seen_before_adoption_leaves_the_container_to_adoption()
    {
        // The restarted worker's event stream begins a second early, so it can show the start of a
        // container from before; no row places that task here, yet the container is adoption's.
        var (second, start) = await RestartedWithATaskWithoutRowAsync("early");
        await using var _ = second;
        var container = (await second.ContainersAsync(start.TaskArn)).Single();
        second.Runner.OnDockerEvent(new Message
        {
            Type = "container",
            Action = "start",
            Actor = new Actor { ID = container.ID, Attributes = new Dictionary<string, string>(container.Labels) },
        });
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Single(await second.ContainersAsync(start.TaskArn));

        await second.Adoption.RunAsync(second.Stopping);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", second.Stopping);
        Assert.Equal(TaskAdoption.TaskNoLongerExists, stopped.StoppedReason);
        await second.WaitUntilRemovedAsync(start.TaskArn);
    }

    [Fact]
    public async Task A_task_placed_here_but_never_started_is_started_and_one_whose_containers_vanished_is_reported_STOPPED()
    {
        await using var worker = await WorkerHarness.StartAsync(fixture, output);
        var definition = await worker.RegisterAsync(Family("placed"));
        var neverStarted = worker.StartCommand(definition);
        var vanished = worker.StartCommand(definition);
        await worker.InsertTaskRowAsync(neverStarted, definition);
        await worker.InsertTaskRowAsync(vanished, definition, lastStatus: "RUNNING");

        await worker.Adoption.RunAsync(worker.Stopping);

        var running = await Events.WaitForStatusAsync(neverStarted.TaskArn, "RUNNING", worker.Stopping);
        Assert.Equal("app", running.Containers.Single().Name);
        var stopped = await Events.WaitForStatusAsync(vanished.TaskArn, "STOPPED", worker.Stopping);
        Assert.Equal(TaskRunner.StoppedWhileWorkerWasDown, stopped.StoppedReason);
        Assert.Equal(TaskRunner.ContainerVanished, stopped.Containers.Single().Reason);
    }

    [Fact]
    public async Task Workers_sharing_an_engine_leave_each_others_containers_alone()
    {
        await using var other = await WorkerHarness.StartAsync(fixture, output);
        var definition = await other.RegisterAsync(Family("neighbour"));
        var start = other.StartCommand(definition);
        await other.InsertTaskRowAsync(start, definition);
        await other.Runner.StartAsync(start, false, other.Stopping);
        var running = await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", other.Stopping);

        // Same tables, different instance: the neighbour's container is not ours to adopt or stop.
        await using var sameTables = await WorkerHarness.StartAsync(fixture, output, storagePrefix: other.StoragePrefix);
        await sameTables.Adoption.RunAsync(sameTables.Stopping);
        await Task.Delay(500);

        Assert.Empty(await sameTables.ContainersAsync());
        Assert.True((await other.InspectAsync(running.Containers.Single().RuntimeId!)).State.Running);
        // Only the owner's own reports: PENDING when its start was slow, then RUNNING, and nothing after.
        var reports = (await Events.ReportsAsync(start.TaskArn, other.Stopping)).Select(r => r.LastStatus).ToList();
        Assert.Equal("RUNNING", reports[^1]);
        Assert.All(reports, status => Assert.Contains(status, new[] { "PENDING", "RUNNING" }));

        await other.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), other.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", other.Stopping);
    }
}
