using System.Text.Json.Nodes;
using Serverless.Core.ContainerInstances;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// Placement from the shared, short-lived view of a cluster's instances
/// (<see cref="ContainerInstanceStore.ListForPlacementAsync"/>): a stale view costs a retry, never an
/// over-commit, and "no room" is only ever answered from a fresh read. Real tables, no worker.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class PlacementViewTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    /// <summary>The world's cluster and <c>big:1</c>: 768 MiB, so one 1,024 MiB instance holds one.</summary>
    private async Task<TaskDefinitionRecord> BigAsync()
    {
        await _world.InitializeAsync(_token);
        return await _world.Definitions.RegisterAsync(JsonNode.Parse(
            """{"family":"big","containerDefinitions":[{"name":"app","image":"local/busybox:latest","memory":768}]}""")!.AsObject(), [], _token);
    }

    [Fact]
    public async Task Two_reservations_from_one_stale_read_of_an_instance_cannot_both_be_written()
    {
        await _world.InitializeAsync(_token);
        var seen = await _world.InstanceAsync(_token);

        var first = await _world.Instances.TryReserveAsync(seen, new Reservation(TaskIds.New("family:web"), 0, 768, [], []), _token);
        var second = await _world.Instances.TryReserveAsync(seen, new Reservation(TaskIds.New("family:web"), 0, 768, [], []), _token);

        Assert.NotNull(first);
        Assert.Null(second);
        Assert.Single((await _world.InstanceNowAsync(seen.Id, _token)).Reservations);
    }

    [Fact]
    public async Task Two_placements_from_one_stale_view_do_not_over_commit_the_instance_they_both_chose()
    {
        var big = await BigAsync();
        var instance = await _world.InstanceAsync(_token);
        var (view, _) = await _world.Instances.ListForPlacementAsync(_world.Cluster, fresh: true, _token);
        Assert.Empty(Assert.Single(view).Reservations);

        // Both decide on the same view, which shows the instance empty: room for one each.
        var launches = await Task.WhenAll(
            _world.Launcher.PlaceAsync(_world.Launch(big, "family:big"), view, knownCached: true, _token),
            _world.Launcher.PlaceAsync(_world.Launch(big, "family:big"), view, knownCached: true, _token));

        Assert.Single(launches.SelectMany(l => l.Tasks));
        Assert.Equal("RESOURCE:MEMORY", Assert.Single(launches.SelectMany(l => l.Failures)).Reason);
        var now = await _world.InstanceNowAsync(instance.Id, _token);
        Assert.Equal(768, Assert.Single(now.Reservations).Memory);
    }

    [Fact]
    public async Task A_placement_sees_the_reservations_this_process_made_without_reading_the_instances_again()
    {
        var big = await BigAsync();
        var one = await _world.InstanceAsync(_token);
        var two = await _world.InstanceAsync(_token);
        _ = await _world.Instances.ListForPlacementAsync(_world.Cluster, fresh: true, _token);

        var first = Assert.Single((await _world.Launcher.PlaceAsync(_world.Launch(big, "family:big"), null, _token)).Tasks);
        var (view, cached) = await _world.Instances.ListForPlacementAsync(_world.Cluster, fresh: false, _token);
        var second = Assert.Single((await _world.Launcher.PlaceAsync(_world.Launch(big, "family:big"), null, _token)).Tasks);

        Assert.True(cached);
        Assert.True(view.Single(i => i.Id == first.ContainerInstanceId).HoldsReservationFor(first.Id));
        Assert.Equal(new[] { one.Id, two.Id }.Order(), new[] { first.ContainerInstanceId, second.ContainerInstanceId }.Order());
    }

    [Fact]
    public async Task No_room_in_the_view_is_checked_on_a_fresh_read_which_finds_an_instance_registered_elsewhere()
    {
        var big = await BigAsync();
        await _world.InstanceAsync(_token);
        Assert.Single((await _world.Launcher.PlaceAsync(_world.Launch(big, "family:big"), null, _token)).Tasks);
        // Another control plane (its own store, so this process's view does not hear of it) registers a second instance.
        var elsewhere = new ContainerInstanceStore(_world.Storage, _world.Arns, _world.Time);
        var added = await elsewhere.RegisterAsync(new ContainerInstanceRecord
        {
            Cluster = _world.Cluster, Id = ContainerInstanceStore.NewId(), Ec2InstanceId = "host", RegisteredCpu = 1024, RegisteredMemory = 1024,
        }, _token);
        var (stale, cached) = await _world.Instances.ListForPlacementAsync(_world.Cluster, fresh: false, _token);
        Assert.True(cached);
        Assert.DoesNotContain(stale, i => i.Id == added.Id);

        var placed = await _world.Launcher.PlaceAsync(_world.Launch(big, "family:big"), null, _token);

        Assert.Equal(added.Id, Assert.Single(placed.Tasks).ContainerInstanceId);
        Assert.Empty(placed.Failures);
    }
}
