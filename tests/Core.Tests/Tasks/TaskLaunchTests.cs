using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// A launch of several tasks (a service's batch): each Start leaves as soon as its own task is
/// placed, and a failure part way keeps what already went out. Real tables and queues, no worker.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskLaunchTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    [Fact]
    public async Task Each_Start_is_on_its_queue_before_the_next_task_is_placed()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var queue = _world.Queues.GetQueueClient(TaskMessages.CommandQueue(instance.Id));
        await queue.CreateIfNotExistsAsync(cancellationToken: _token);
        var slot = 0;
        var request = _world.Launch(definition) with
        {
            Count = 3,
            // Asked before each task is placed: from the second on, it lets placing go on only once the
            // Starts of the tasks before are on the queue (a launch that sends after placing all never gets there).
            KeepPlacing = async cancellationToken =>
            {
                var before = slot++;
                var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
                while ((await queue.PeekMessagesAsync(32, cancellationToken)).Value.Length < before)
                {
                    if (DateTimeOffset.UtcNow > deadline) return false;
                    await Task.Delay(20, cancellationToken);
                }
                return true;
            },
        };

        var launched = await _world.Launcher.LaunchAsync(request, _token);

        Assert.Equal(3, launched.Tasks.Count);
        Assert.Empty(launched.Failures);
        var commands = await _world.CommandsAsync(instance.Id, _token);
        Assert.Equal(launched.Tasks.Select(t => _world.Arns.Task(_world.Cluster, t.Id)).Order(), commands.Select(c => c.TaskArn).Order());
        Assert.All(commands, c => Assert.Equal(TaskCommand.Start, c.Type));
    }

    [Fact]
    public async Task A_launch_that_fails_part_way_keeps_the_tasks_whose_Starts_went_out()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var slot = 0;
        // The third placement fails (the lease check is a storage read that can fail like any other).
        var request = _world.Launch(definition) with
        {
            Count = 3,
            KeepPlacing = _ => ++slot == 3 ? throw new InvalidOperationException("storage went away") : Task.FromResult(true),
        };

        await Assert.ThrowsAsync<InvalidOperationException>(() => _world.Launcher.LaunchAsync(request, _token));

        // The two placed before the failure were started: their Starts are out, so their rows and
        // reservations stay (a worker may be running them already).
        var commands = await _world.CommandsAsync(instance.Id, _token);
        Assert.Equal(2, commands.Count);
        var holder = await _world.InstanceNowAsync(instance.Id, _token);
        foreach (var command in commands)
        {
            Assert.Equal(TaskCommand.Start, command.Type);
            var task = await _world.TaskNowAsync(command.TaskArn.Split('/')[^1], _token);
            Assert.Equal((EcsTaskStatus.Pending, EcsTaskStatus.Running), (task.LastStatus, task.DesiredStatus));
            Assert.True(holder.HoldsReservationFor(task.Id));
        }
    }

    [Fact]
    public async Task Placing_alone_still_undoes_everything_on_a_failure_part_way()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var slot = 0;
        var request = _world.Launch(definition) with
        {
            Count = 3,
            KeepPlacing = _ => ++slot == 3 ? throw new InvalidOperationException("storage went away") : Task.FromResult(true),
        };

        // RunTask and StartTask place all before any Start leaves: nothing of a failed call stays.
        await Assert.ThrowsAsync<InvalidOperationException>(() => _world.Launcher.PlaceAsync(request, null, _token));

        Assert.Empty(await _world.CommandsAsync(instance.Id, _token));
        var holder = await _world.InstanceNowAsync(instance.Id, _token);
        Assert.Empty(holder.Reservations);
    }
}
