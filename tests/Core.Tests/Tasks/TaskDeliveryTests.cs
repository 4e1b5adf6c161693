using Serverless.Core.Api;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// Commands that go missing between the control plane and a worker: a lost Stop, a Start never
/// sent or never acknowledged, a reservation without its task. Real tables and queues, no worker.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskDeliveryTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    [Fact]
    public async Task A_bridge_task_on_EC2_is_PENDING_from_placement_as_ECS_shows_it()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);

        var launched = await _world.Launcher.LaunchAsync(_world.Launch(definition), _token);

        Assert.Equal(EcsTaskStatus.Pending, Assert.Single(launched.Tasks).LastStatus);
        Assert.Equal(EcsTaskStatus.Pending, (await _world.TaskNowAsync(launched.Tasks[0].Id, _token)).LastStatus);
        Assert.Equal(TaskCommand.Start, Assert.Single(await _world.CommandsAsync(instance.Id, _token)).Type);
    }

    [Fact]
    public async Task An_awsvpc_tasks_Start_names_the_subnet_its_attachment_got_so_the_worker_joins_that_subnets_network()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var network = new Serverless.Core.Capacity.AwsVpcConfiguration(["subnet-0a1b2c3d", "subnet-0e0f"], [], "DISABLED");

        var launched = await _world.Launcher.LaunchAsync(_world.Launch(definition) with { Network = network }, _token);

        var start = Assert.Single(await _world.CommandsAsync(instance.Id, _token));
        Assert.Equal(TaskCommand.Start, start.Type);
        Assert.Equal(launched.Tasks[0].Attachment!.SubnetId, start.SubnetId);
        Assert.Equal("subnet-0a1b2c3d", start.SubnetId);
    }

    [Fact]
    public async Task A_task_placed_whose_Start_never_went_out_is_stopped_at_the_start_deadline_and_frees_its_reservation()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        // RunTask interrupted after placement: the row and the reservation exist, no Start was sent.
        var placed = Assert.Single((await _world.Launcher.PlaceAsync(_world.Launch(definition), null, _token)).Tasks);

        _world.Time.Advance(TaskDeadlines.StartDeadline - TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        Assert.Equal(EcsTaskStatus.Pending, (await _world.TaskNowAsync(placed.Id, _token)).LastStatus);
        Assert.True((await _world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(placed.Id));

        _world.Time.Advance(TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);

        var task = await _world.TaskNowAsync(placed.Id, _token);
        Assert.Equal((EcsTaskStatus.Stopped, EcsTaskStatus.Stopped, "TaskFailedToStart"), (task.LastStatus, task.DesiredStatus, task.StopCode));
        Assert.Equal(TaskDeadlines.StartDeadlineReason, task.StoppedReason);
        Assert.False((await _world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(placed.Id));
        // A worker that got the Start after all is told to stop it.
        var stop = Assert.Single(await _world.CommandsAsync(instance.Id, _token));
        Assert.Equal((TaskCommand.Stop, _world.Arns.Task(_world.Cluster, placed.Id)), (stop.Type, stop.TaskArn));
    }

    [Fact]
    public async Task A_task_its_worker_acknowledged_is_not_stopped_by_the_start_deadline()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var launched = Assert.Single((await _world.Launcher.LaunchAsync(_world.Launch(definition), _token)).Tasks);
        await _world.CommandsAsync(instance.Id, _token);
        var applier = new TaskStateApplier(_world.Tasks, _world.Instances, _world.Launcher, _world.Reconcile, _world.Arns, _world.Time,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<TaskStateApplier>.Instance);
        // The worker's first report: PENDING, what the row already says, and still its acknowledgement.
        await applier.ApplyAsync([new TaskStateChange
        {
            Cluster = _world.Cluster, TaskArn = _world.Arns.Task(_world.Cluster, launched.Id),
            ContainerInstanceArn = _world.Arns.ContainerInstance(_world.Cluster, instance.Id),
            LastStatus = EcsTaskStatus.Pending, ObservedAt = _world.Time.GetUtcNow(),
        }], _token);

        _world.Time.Advance(TaskDeadlines.StartDeadline + TimeSpan.FromMinutes(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);

        Assert.Equal((EcsTaskStatus.Pending, EcsTaskStatus.Running), ((await _world.TaskNowAsync(launched.Id, _token)).LastStatus, (await _world.TaskNowAsync(launched.Id, _token)).DesiredStatus));
        Assert.True((await _world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(launched.Id));
        Assert.Empty(await _world.CommandsAsync(instance.Id, _token));
    }

    [Fact]
    public async Task A_Stop_that_was_never_delivered_is_sent_again_by_the_sweep_once_due_and_not_before()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var launched = Assert.Single((await _world.Launcher.LaunchAsync(_world.Launch(definition), _token)).Tasks);
        await _world.CommandsAsync(instance.Id, _token);
        var now = _world.Time.GetUtcNow();
        // StopTask marked it (and recorded the attempt), then the send to the queue failed.
        await _world.Tasks.UpdateAsync(_world.Cluster, launched.Id, t => t with
        {
            LastStatus = EcsTaskStatus.Running, ObservedAt = now, DesiredStatus = EcsTaskStatus.Stopped, StoppingAt = now, StopSentAt = now, StoppedReason = "Task stopped by user",
        }, _token);

        _world.Time.Advance(TaskDeadlines.StopResendAfter - TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        Assert.Empty(await _world.CommandsAsync(instance.Id, _token));

        _world.Time.Advance(TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);   // twice at once: sent once

        var stop = Assert.Single(await _world.CommandsAsync(instance.Id, _token));
        Assert.Equal((TaskCommand.Stop, "Task stopped by user"), (stop.Type, stop.Reason));
        Assert.Equal(_world.Time.GetUtcNow(), (await _world.TaskNowAsync(launched.Id, _token)).StopSentAt);
    }

    [Fact]
    public async Task A_Stop_held_back_while_the_tasks_targets_drain_is_first_sent_when_the_draining_ends()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var launched = Assert.Single((await _world.Launcher.LaunchAsync(_world.Launch(definition), _token)).Tasks);
        await _world.CommandsAsync(instance.Id, _token);
        var now = _world.Time.GetUtcNow();
        await _world.Tasks.UpdateAsync(_world.Cluster, launched.Id, t => t with { LastStatus = EcsTaskStatus.Running, ObservedAt = now }, _token);
        // StopTask on a task behind a load balancer: desired STOPPED, DEACTIVATING, no Stop until its 30 s draining ends.
        var drained = now.AddSeconds(30);
        var asked = await _world.Tasks.UpdateAsync(_world.Cluster, launched.Id, t => t.RequestStop("UserInitiated", "Task stopped by user", now, drained), _token);
        Assert.True(asked!.IsDeactivating);
        Assert.Null(asked.StopSentAt);
        Assert.Equal(drained, TaskDeadlines.NextStopAt(asked));

        _world.Time.Advance(TimeSpan.FromSeconds(29));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        Assert.Empty(await _world.CommandsAsync(instance.Id, _token));

        _world.Time.Advance(TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        var stop = Assert.Single(await _world.CommandsAsync(instance.Id, _token));
        Assert.Equal((TaskCommand.Stop, "Task stopped by user"), (stop.Type, stop.Reason));
        var sent = await _world.TaskNowAsync(launched.Id, _token);
        Assert.False(sent.IsDeactivating);
        Assert.Equal(_world.Time.GetUtcNow() + TaskDeadlines.StopResendAfter, TaskDeadlines.NextStopAt(sent));   // then resent as any Stop
    }

    [Fact]
    public async Task A_draining_service_sends_a_lost_Stop_again_when_it_reconciles_and_looks_again_when_the_next_is_due()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var launched = Assert.Single((await _world.Launcher.LaunchAsync(_world.Launch(definition, "service:web"), _token)).Tasks);
        await _world.CommandsAsync(instance.Id, _token);
        var now = _world.Time.GetUtcNow();
        Assert.True(await _world.Services.TryInsertAsync(new ServiceRecord
        {
            Cluster = _world.Cluster, Name = "web", Status = ServiceRecord.Draining, TaskDefinitionArn = definition.Arn,
            Deployments = [new Deployment { Id = "ecs-svc/1", Status = DeploymentStatus.Primary, TaskDefinitionArn = definition.Arn, CreatedAt = now, UpdatedAt = now }],
        }, _token));
        // DeleteService's reconcile asked the task to stop, and the Stop never reached the queue.
        await _world.Tasks.UpdateAsync(_world.Cluster, launched.Id, t => t with
        {
            LastStatus = EcsTaskStatus.Running, ObservedAt = now, DesiredStatus = EcsTaskStatus.Stopped, StoppingAt = now,
        }, _token);

        _world.Time.Advance(TaskDeadlines.StopResendAfter);
        var result = await _world.Reconciler.ReconcileAsync(new ServiceKey(_world.Cluster, "web"), _token);

        var stop = Assert.Single(await _world.CommandsAsync(instance.Id, _token));
        Assert.Equal((TaskCommand.Stop, _world.Arns.Task(_world.Cluster, launched.Id)), (stop.Type, stop.TaskArn));
        Assert.Equal(TaskDeadlines.StopResendAfter, result.RequeueAfter);
        Assert.Equal(ServiceRecord.Draining, (await _world.Services.FindAsync(_world.Cluster, "web", _token))!.Status);
    }

    /// <summary>
    /// Two RUNNING tasks on one instance, which holds a reservation for the first only: as a row
    /// inserted beside a reservation that never landed (its control plane died), then started by a
    /// worker that restarted (it starts what was placed on it), leaves it.
    /// </summary>
    private async Task<(ContainerInstanceRecord Instance, TaskRecord Kept, TaskRecord Unreserved)> RunningWithOneUnreservedAsync()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var launched = (await _world.Launcher.LaunchAsync(_world.Launch(definition) with { Count = 2 }, _token)).Tasks;
        await _world.Instances.ReleaseAsync(_world.Cluster, instance.Id, launched[1].Id, _token);
        foreach (var task in launched)
            await _world.Tasks.UpdateAsync(_world.Cluster, task.Id, t => t with { LastStatus = EcsTaskStatus.Running, ObservedAt = _world.Time.GetUtcNow() }, _token);
        _ = await _world.CommandsAsync(instance.Id, _token);
        return (instance, launched[0], launched[1]);
    }

    [Fact]
    public async Task A_running_task_whose_instance_holds_no_reservation_for_it_is_stopped_by_a_full_sweep_after_the_grace_period()
    {
        var (instance, kept, unreserved) = await RunningWithOneUnreservedAsync();

        _world.Time.Advance(TaskDeadlines.OrphanReservationGrace - TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        Assert.Equal(EcsTaskStatus.Running, (await _world.TaskNowAsync(unreserved.Id, _token)).LastStatus);

        _world.Time.Advance(TaskDeliverySweep.FullSweepEvery);
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);

        var stopped = await _world.TaskNowAsync(unreserved.Id, _token);
        Assert.Equal((EcsTaskStatus.Stopped, "TaskFailedToStart", TaskDeliverySweep.UnreservedReason), (stopped.LastStatus, stopped.StopCode, stopped.StoppedReason));
        var stop = Assert.Single(await _world.CommandsAsync(instance.Id, _token));
        Assert.Equal((TaskCommand.Stop, _world.Arns.Task(_world.Cluster, unreserved.Id)), (stop.Type, stop.TaskArn));
        Assert.Equal(EcsTaskStatus.Running, (await _world.TaskNowAsync(kept.Id, _token)).LastStatus);
        Assert.True((await _world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(kept.Id));
    }

    [Fact]
    public async Task Between_full_sweeps_an_unreserved_running_task_is_found_when_its_worker_reports_more_tasks_than_are_reserved()
    {
        var (instance, kept, unreserved) = await RunningWithOneUnreservedAsync();
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);   // the process's full sweep, inside the grace period

        // Past the grace period, not yet an hour on: the worker's count matching the reservations leaves the tasks unread.
        _world.Time.Advance(TaskDeadlines.OrphanReservationGrace);
        await _world.Instances.HeartbeatAsync(_world.Cluster, instance.Id, runningTasksCount: 1, pendingTasksCount: 0, _token);
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        Assert.Equal(EcsTaskStatus.Running, (await _world.TaskNowAsync(unreserved.Id, _token)).LastStatus);

        // The worker reports both: the instance's tasks are read, and the one without a reservation stopped.
        await _world.Instances.HeartbeatAsync(_world.Cluster, instance.Id, runningTasksCount: 2, pendingTasksCount: 0, _token);
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        var stopped = await _world.TaskNowAsync(unreserved.Id, _token);
        Assert.Equal((EcsTaskStatus.Stopped, TaskDeliverySweep.UnreservedReason), (stopped.LastStatus, stopped.StoppedReason));
        var stop = Assert.Single(await _world.CommandsAsync(instance.Id, _token));
        Assert.Equal((TaskCommand.Stop, _world.Arns.Task(_world.Cluster, unreserved.Id)), (stop.Type, stop.TaskArn));
        Assert.Equal(EcsTaskStatus.Running, (await _world.TaskNowAsync(kept.Id, _token)).LastStatus);
    }

    [Fact]
    public async Task A_reservation_whose_task_row_never_appeared_is_released_after_the_grace_period()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var running = Assert.Single((await _world.Launcher.LaunchAsync(_world.Launch(definition), _token)).Tasks);
        var orphan = TaskIds.New("family:web");
        // A control plane that died between reserving and inserting.
        instance = (await _world.Instances.TryReserveAsync(await _world.InstanceNowAsync(instance.Id, _token),
            new Reservation(orphan, 0, 128, [], []) { ReservedAt = _world.Time.GetUtcNow() }, _token))!;
        var acknowledged = _world.Time.GetUtcNow();
        await _world.Tasks.UpdateAsync(_world.Cluster, running.Id, t => t with { LastStatus = EcsTaskStatus.Running, ObservedAt = acknowledged }, _token);

        _world.Time.Advance(TaskDeadlines.OrphanReservationGrace - TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);
        Assert.True((await _world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(orphan));

        _world.Time.Advance(TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);

        var after = await _world.InstanceNowAsync(instance.Id, _token);
        Assert.False(after.HoldsReservationFor(orphan));
        Assert.True(after.HoldsReservationFor(running.Id));
    }
}

/// <summary>A Start whose send had no clear answer: the worker may have it, so nothing is decided until the start deadline.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class UncertainStartTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    [Fact]
    public async Task A_Start_that_may_or_may_not_be_queued_leaves_the_task_desired_RUNNING_and_holding_its_reservation()
    {
        await using var endpoint = new UnansweredQueueEndpoint();
        var world = new TaskWorld(azurite, endpoint.ConnectionString(azurite));
        var definition = await world.InitializeAsync(_token);
        var instance = await world.InstanceAsync(_token);

        var launched = await world.Launcher.LaunchAsync(world.Launch(definition), _token);

        Assert.True(endpoint.Sends > 0);
        var task = await world.TaskNowAsync(Assert.Single(launched.Tasks).Id, _token);
        Assert.Equal((EcsTaskStatus.Pending, EcsTaskStatus.Running, null), (task.LastStatus, task.DesiredStatus, task.StopCode));
        Assert.True((await world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(task.Id));
    }
}

/// <summary>RunTask whose client goes away once its tasks are placed.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunTaskInterruptedTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    [Fact]
    public async Task A_client_gone_while_its_Start_is_sent_still_gets_the_task_started_not_left_holding_a_reservation()
    {
        await using var tap = new QueueSendTap(azurite);
        var world = new TaskWorld(azurite, tap.ConnectionString(azurite));
        await world.InitializeAsync(_token);
        var instance = await world.InstanceAsync(_token);
        var actions = new TaskActions(world.Clusters, world.Instances, world.Definitions, world.Tasks, world.Launcher,
            new ClientTokens(world.Storage, world.Time), new TaskJson(world.Arns), world.Arns, world.Time, world.Services, world.Reconcile,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<TaskActions>.Instance);
        var registry = new ActionRegistry([actions]);
        Assert.True(registry.TryGet($"{ActionRegistry.EcsTargetPrefix}.RunTask", out var runTask));
        using var client = CancellationTokenSource.CreateLinkedTokenSource(_token);
        tap.OnSend = client.Cancel;   // the client disconnects as the Start goes out

        var response = await runTask(new System.Text.Json.Nodes.JsonObject { ["cluster"] = world.Cluster, ["taskDefinition"] = "web" },
            new RequestContext("AKIDTEST"), client.Token);

        var taskArn = response["tasks"]![0]!["taskArn"]!.GetValue<string>();
        var start = Assert.Single(await world.CommandsAsync(instance.Id, _token));
        Assert.Equal((TaskCommand.Start, taskArn), (start.Type, start.TaskArn));
        var task = await world.TaskNowAsync(taskArn.Split('/')[^1], _token);
        Assert.Equal((EcsTaskStatus.Pending, EcsTaskStatus.Running), (task.LastStatus, task.DesiredStatus));
    }
}

/// <summary>What a delivery sweep reads after its first: the late tasks and the stopped ones, not every live task.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class DeliverySweepCostTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    [Fact]
    public async Task Only_unacknowledged_tasks_past_their_deadline_and_tasks_owed_a_Stop_are_listed_as_due()
    {
        var definition = await _world.InitializeAsync(_token);
        await _world.InstanceAsync(_token);
        var launched = (await _world.Launcher.PlaceAsync(_world.Launch(definition) with { Count = 4 }, null, _token)).Tasks;
        Assert.Equal(4, launched.Count);
        var placedAt = _world.Time.GetUtcNow();
        _world.Time.Advance(TimeSpan.FromMinutes(1));
        var now = _world.Time.GetUtcNow();
        // [0] never acknowledged; [1] running; [2] told to stop, Stop sent now; [3] stopped.
        await _world.Tasks.UpdateAsync(_world.Cluster, launched[1].Id, t => t with { LastStatus = EcsTaskStatus.Running, ObservedAt = now }, _token);
        await _world.Tasks.UpdateAsync(_world.Cluster, launched[2].Id, t => t with
        {
            LastStatus = EcsTaskStatus.Running, ObservedAt = now, DesiredStatus = EcsTaskStatus.Stopped, StoppingAt = now, StopSentAt = now,
        }, _token);
        await _world.Tasks.UpdateAsync(_world.Cluster, launched[3].Id, t => t.RecordStopped("UserInitiated", "gone", now), _token);

        Assert.Empty(await _world.Tasks.ListDeliveryDueAsync(_world.Cluster, placedAt - TimeSpan.FromSeconds(1), now, _token));
        Assert.Equal([launched[0].Id], (await _world.Tasks.ListDeliveryDueAsync(_world.Cluster, placedAt, now, _token)).Select(t => t.Id));
        var later = now + TaskDeadlines.StopResendAfter;
        Assert.Equal(new[] { launched[0].Id, launched[2].Id }.Order(),
            (await _world.Tasks.ListDeliveryDueAsync(_world.Cluster, placedAt, later, _token)).Select(t => t.Id).Order());
        Assert.Equal([launched[3].Id], (await _world.Tasks.ListStoppedSinceAsync(_world.Cluster, now, _token)).Select(t => t.Id));
        Assert.Empty(await _world.Tasks.ListStoppedSinceAsync(_world.Cluster, now + TimeSpan.FromSeconds(1), _token));

        // The sweep's one query gives both lists, each as its own query does.
        var (due, stopped) = await _world.Tasks.ListDeliveryDueAndStoppedSinceAsync(_world.Cluster, placedAt, later, now, _token);
        Assert.Equal(new[] { launched[0].Id, launched[2].Id }.Order(), due.Select(t => t.Id).Order());
        Assert.Equal([launched[3].Id], stopped.Select(t => t.Id));
        (due, stopped) = await _world.Tasks.ListDeliveryDueAndStoppedSinceAsync(_world.Cluster, placedAt - TimeSpan.FromSeconds(1), now, now + TimeSpan.FromSeconds(1), _token);
        Assert.Empty(due);
        Assert.Empty(stopped);
    }

    [Fact]
    public async Task A_reservation_seen_held_by_a_live_task_is_released_by_a_later_sweep_once_the_task_stopped_without_releasing_it()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var task = Assert.Single((await _world.Launcher.LaunchAsync(_world.Launch(definition), _token)).Tasks);
        await _world.Tasks.UpdateAsync(_world.Cluster, task.Id, t => t with { LastStatus = EcsTaskStatus.Running, ObservedAt = _world.Time.GetUtcNow() }, _token);
        _world.Time.Advance(TaskDeadlines.OrphanReservationGrace + TimeSpan.FromSeconds(1));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);   // the first: a full scan, the task is live
        _world.Time.Advance(TimeSpan.FromSeconds(30));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);   // a later one: nothing to do
        Assert.True((await _world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(task.Id));

        // Recorded STOPPED by a control plane that died before releasing the reservation.
        await _world.Tasks.UpdateAsync(_world.Cluster, task.Id, t => t.RecordStopped("EssentialContainerExited", "exited", _world.Time.GetUtcNow()), _token);
        _world.Time.Advance(TimeSpan.FromSeconds(30));
        await _world.Sweep.SweepClusterAsync(_world.Cluster, _token);

        Assert.False((await _world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(task.Id));
    }
}
