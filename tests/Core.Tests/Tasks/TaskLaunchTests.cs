using Serverless.Core.ContainerInstances;
using Serverless.Core.Scheduling;
using Serverless.Core.Tasks;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// A launch of several tasks (a service's batch, RunTask's count): the tasks bound for one instance
/// are placed with one write of its row, instances side by side; each share's Starts leave as soon
/// as it is placed; a share whose instance changed meanwhile is decided again; a failure part way
/// keeps what already went out. Real tables and queues, no worker.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskLaunchTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    [Fact]
    public async Task Tasks_bound_for_one_instance_are_placed_with_one_write_of_its_row()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);

        var launched = await _world.Launcher.LaunchAsync(_world.Launch(definition) with { Count = 8 }, _token);

        Assert.Equal(8, launched.Tasks.Count);
        Assert.Empty(launched.Failures);
        var holder = await _world.InstanceNowAsync(instance.Id, _token);
        Assert.Equal(instance.Version + 1, holder.Version);   // one reservation write for all eight
        Assert.Equal(launched.Tasks.Select(t => t.Id).Order(), holder.Reservations.Select(r => r.TaskId).Order());
        foreach (var task in launched.Tasks)
            Assert.Equal((EcsTaskStatus.Pending, instance.Id), ((await _world.TaskNowAsync(task.Id, _token)).LastStatus, task.ContainerInstanceId));
        var commands = await _world.CommandsAsync(instance.Id, _token);
        Assert.Equal(launched.Tasks.Select(t => _world.Arns.Task(_world.Cluster, t.Id)).Order(), commands.Select(c => c.TaskArn).Order());
        Assert.All(commands, c => Assert.Equal(TaskCommand.Start, c.Type));
    }

    [Fact]
    public async Task A_share_whose_instance_changed_is_decided_again_after_the_other_shares_Starts_left()
    {
        var definition = await _world.InitializeAsync(_token);
        var (first, second) = await TwoInstancesSeenThenSecondChangedAsync();
        var queue = _world.Queues.GetQueueClient(TaskMessages.CommandQueue(first.Id));
        await queue.CreateIfNotExistsAsync(cancellationToken: _token);
        var rounds = 0;
        var request = _world.Launch(definition) with
        {
            Count = 4,
            Strategies = [new PlacementStrategy("spread", "instanceId")],
            // The second round (the changed instance's share decided again) goes ahead only once the
            // first instance's Starts are on its queue: they leave as soon as their share is placed.
            KeepPlacing = async cancellationToken =>
            {
                if (++rounds == 1) return true;
                var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
                while ((await queue.PeekMessagesAsync(32, cancellationToken)).Value.Length < 2)
                {
                    if (DateTimeOffset.UtcNow > deadline) return false;
                    await Task.Delay(20, cancellationToken);
                }
                return true;
            },
        };

        var launched = await _world.Launcher.LaunchAsync(request, _token);

        Assert.Equal(4, launched.Tasks.Count);
        Assert.Empty(launched.Failures);
        Assert.Equal(2, rounds);
        var (a, b) = (await _world.InstanceNowAsync(first.Id, _token), await _world.InstanceNowAsync(second.Id, _token));
        Assert.Equal(first.Version + 1, a.Version);
        // The foreign reservation that changed the row, and the tasks placed there on the second round.
        Assert.Contains(b.Reservations, r => r.TaskId == ForeignTask);
        var ours = a.Reservations.Concat(b.Reservations).Where(r => r.TaskId != ForeignTask).Select(r => r.TaskId).Order();
        Assert.Equal(launched.Tasks.Select(t => t.Id).Order(), ours);
        Assert.Equal(2, a.Reservations.Count);   // spread: the second round evens them out again
        var commands = (await _world.CommandsAsync(first.Id, _token)).Concat(await _world.CommandsAsync(second.Id, _token));
        Assert.Equal(launched.Tasks.Select(t => _world.Arns.Task(_world.Cluster, t.Id)).Order(), commands.Select(c => c.TaskArn).Order());
        // Nothing of the lost round is left: every row of the group is a launched task.
        var rows = await _world.Tasks.ListForGroupAsync(_world.Cluster, "family:web", _token);
        Assert.Equal(launched.Tasks.Select(t => t.Id).Order(), rows.Select(t => t.Id).Order());
    }

    [Fact]
    public async Task A_share_that_lost_a_race_is_inserted_only_once_its_reservation_is_won()
    {
        var definition = await _world.InitializeAsync(_token);
        var (first, second) = await TwoInstancesSeenThenSecondChangedAsync();
        var elsewhere = new ContainerInstanceStore(_world.Storage, _world.Arns, _world.Time);
        var rounds = 0;
        var request = _world.Launch(definition) with
        {
            Count = 4,
            Strategies = [new PlacementStrategy("spread", "instanceId")],
            // Before the second round, the second instance changes again: its share loses twice.
            KeepPlacing = async cancellationToken =>
            {
                if (++rounds == 2)
                    Assert.NotNull(await elsewhere.TryReserveAsync(await _world.InstanceNowAsync(second.Id, cancellationToken),
                        new Reservation("fedcba9876543210fedcba9876543210", 0, 64, [], []), cancellationToken));
                return true;
            },
        };
        // Batches and deletes on the Tasks table: a share's insert, or the delete of a lost share's rows.
        var taskWrites = new List<string>();
        azurite.Proxy.Observe = r =>
        {
            if (r.Service == StorageService.Table && r.Resource?.EndsWith("Tasks", StringComparison.Ordinal) == true && (r.Kind == "batch" || r.Method == "DELETE"))
                lock (taskWrites) taskWrites.Add($"{r.Method} {r.Kind} {r.Entities}");
        };
        LaunchResult launched;
        try
        {
            launched = await _world.Launcher.LaunchAsync(request, _token);
        }
        finally
        {
            azurite.Proxy.Observe = null;
        }

        Assert.Equal(4, launched.Tasks.Count);
        Assert.Equal(3, rounds);
        // First round: both shares inserted beside their reservations, the lost one's two rows deleted with one batch.
        // Second round: the lost share's reservation is tried first, lost again: nothing written. Third: won, then inserted.
        Assert.Equal(["POST batch 2", "POST batch 2", "POST batch 2", "POST batch 2"], taskWrites);
        var rows = await _world.Tasks.ListForGroupAsync(_world.Cluster, "family:web", _token);
        Assert.Equal(launched.Tasks.Select(t => t.Id).Order(), rows.Select(t => t.Id).Order());
        var b = await _world.InstanceNowAsync(second.Id, _token);
        Assert.Equal(4, b.Reservations.Count);   // two foreign, two of ours
    }

    [Fact]
    public async Task A_launch_that_fails_part_way_keeps_the_tasks_whose_Starts_went_out()
    {
        var definition = await _world.InitializeAsync(_token);
        var (first, second) = await TwoInstancesSeenThenSecondChangedAsync();
        var rounds = 0;
        // The second round's lease check fails (a storage read that can fail like any other).
        var request = _world.Launch(definition) with
        {
            Count = 4,
            Strategies = [new PlacementStrategy("spread", "instanceId")],
            KeepPlacing = _ => ++rounds == 2 ? throw new InvalidOperationException("storage went away") : Task.FromResult(true),
        };

        await Assert.ThrowsAsync<InvalidOperationException>(() => _world.Launcher.LaunchAsync(request, _token));

        // The first instance's share was placed and started: its Starts are out, so its rows and
        // reservations stay (a worker may be running them already). The other share was never placed.
        var commands = await _world.CommandsAsync(first.Id, _token);
        Assert.Equal(2, commands.Count);
        var holder = await _world.InstanceNowAsync(first.Id, _token);
        foreach (var command in commands)
        {
            Assert.Equal(TaskCommand.Start, command.Type);
            var task = await _world.TaskNowAsync(command.TaskArn.Split('/')[^1], _token);
            Assert.Equal((EcsTaskStatus.Pending, EcsTaskStatus.Running), (task.LastStatus, task.DesiredStatus));
            Assert.True(holder.HoldsReservationFor(task.Id));
        }
        Assert.Empty(await _world.CommandsAsync(second.Id, _token));
        Assert.Equal([ForeignTask], (await _world.InstanceNowAsync(second.Id, _token)).Reservations.Select(r => r.TaskId));
        Assert.Equal(2, (await _world.Tasks.ListForGroupAsync(_world.Cluster, "family:web", _token)).Count);
    }

    [Fact]
    public async Task Placing_alone_still_undoes_everything_on_a_failure_part_way()
    {
        var definition = await _world.InitializeAsync(_token);
        var (first, second) = await TwoInstancesSeenThenSecondChangedAsync();
        var rounds = 0;
        var request = _world.Launch(definition) with
        {
            Count = 4,
            Strategies = [new PlacementStrategy("spread", "instanceId")],
            KeepPlacing = _ => ++rounds == 2 ? throw new InvalidOperationException("storage went away") : Task.FromResult(true),
        };

        // RunTask and StartTask place all before any Start leaves: nothing of a failed call stays.
        await Assert.ThrowsAsync<InvalidOperationException>(() => _world.Launcher.PlaceAsync(request, null, _token));

        Assert.Empty(await _world.CommandsAsync(first.Id, _token));
        Assert.Empty((await _world.InstanceNowAsync(first.Id, _token)).Reservations);
        Assert.Equal([ForeignTask], (await _world.InstanceNowAsync(second.Id, _token)).Reservations.Select(r => r.TaskId));
        Assert.Empty(await _world.Tasks.ListForGroupAsync(_world.Cluster, "family:web", _token));
    }

    private const string ForeignTask = "0123456789abcdef0123456789abcdef";

    /// <summary>
    /// Two instances, seen by the launcher's placement view; then the second one's row changes behind
    /// that view (another control plane reserves there), so a share bound for it loses its write.
    /// </summary>
    private async Task<(ContainerInstanceRecord First, ContainerInstanceRecord Second)> TwoInstancesSeenThenSecondChangedAsync()
    {
        var first = await _world.InstanceAsync(_token);
        var second = await _world.InstanceAsync(_token);
        var (seen, _) = await _world.Instances.ListForPlacementAsync(_world.Cluster, fresh: true, _token);
        Assert.Equal(2, seen.Count);
        var elsewhere = new ContainerInstanceStore(_world.Storage, _world.Arns, _world.Time);
        Assert.NotNull(await elsewhere.TryReserveAsync(second, new Reservation(ForeignTask, 0, 64, [], []), _token));
        return (first, second);
    }
}
