using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.Reconciliation;
using Serverless.Core.Tasks;
using Serverless.Core.Tests.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>The minute's two sweeps on one read of the clusters and of each cluster's instances.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SweepReadsTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    [Fact]
    public async Task A_rounds_reads_are_shared_within_the_minute_and_read_again_when_too_old()
    {
        await _world.InitializeAsync(_token);
        await _world.InstanceAsync(_token);
        var reads = new SweepReads(_world.Clusters, _world.Instances, _world.Time);
        var round = reads.For(_world.Time.GetUtcNow());
        var clusters = await round.ActiveClustersAsync(_token);
        var (hosts, readAt) = await round.InstancesAsync(_world.Cluster, _token);
        Assert.Contains(clusters, c => c.Name == _world.Cluster);
        Assert.Single(hosts);
        Assert.Equal(_world.Time.GetUtcNow(), readAt);

        // An instance registered meanwhile: the minute's other sweep, two seconds later, gets the same reads.
        await _world.InstanceAsync(_token);
        _world.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Same(round, reads.For(_world.Time.GetUtcNow()));
        Assert.Same(clusters, await round.ActiveClustersAsync(_token));
        Assert.Same(hosts, (await round.InstancesAsync(_world.Cluster, _token)).Instances);

        // Older than MaxAge: read again; the next minute is a new round.
        _world.Time.Advance(SweepReads.MaxAge);
        Assert.Equal(2, (await round.InstancesAsync(_world.Cluster, _token)).Instances.Count);
        Assert.NotSame(round, reads.For(_world.Time.GetUtcNow() + TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public async Task The_health_sweep_on_the_delivery_sweeps_reads_still_replaces_the_tasks_of_a_lost_worker()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var launched = Assert.Single((await _world.Launcher.LaunchAsync(_world.Launch(definition), _token)).Tasks);
        var options = new EcsOptions();
        var health = new InstanceHealthSweep(_world.Clusters, _world.Instances, _world.Tasks, _world.Launcher, _world.Reconcile, options, _world.Time,
            NullLogger<InstanceHealthSweep>.Instance);
        var reads = new SweepReads(_world.Clusters, _world.Instances, _world.Time);

        // Silent for just under the limit when the round's reads are made: not lost, whenever the health sweep runs.
        _world.Time.Advance(TimeSpan.FromSeconds(options.AgentLostAfterSeconds - 1));
        var round = reads.For(_world.Time.GetUtcNow());
        await _world.Sweep.SweepAsync(round, _token);
        _world.Time.Advance(TimeSpan.FromSeconds(2));
        await health.SweepAsync(round, _token);
        Assert.Equal(EcsTaskStatus.Pending, (await _world.TaskNowAsync(launched.Id, _token)).LastStatus);

        // The next minute's round: lost, its task stopped and its reservation freed.
        _world.Time.Advance(TimeSpan.FromSeconds(58));
        round = reads.For(_world.Time.GetUtcNow());
        await _world.Sweep.SweepAsync(round, _token);
        await health.SweepAsync(round, _token);
        var task = await _world.TaskNowAsync(launched.Id, _token);
        Assert.Equal(EcsTaskStatus.Stopped, task.LastStatus);
        Assert.Contains("has not reported", task.StoppedReason);
        Assert.False((await _world.InstanceNowAsync(instance.Id, _token)).HoldsReservationFor(launched.Id));
    }
}
