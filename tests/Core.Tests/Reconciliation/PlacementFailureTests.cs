using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Tests.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>A service that cannot place its tasks: an outcome the reconciler records and retries, not an error.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class PlacementFailureTests(AzuriteFixture azurite)
{
    private const string NoInstances =
        "(service web) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.";

    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    private ServiceKey Web => new(_world.Cluster, "web");

    private async Task ServiceAsync(int desiredCount, CancellationToken cancellationToken)
    {
        var definition = await _world.InitializeAsync(cancellationToken);
        var now = _world.Time.GetUtcNow();
        Assert.True(await _world.Services.TryInsertAsync(new ServiceRecord
        {
            Cluster = _world.Cluster, Name = "web", DesiredCount = desiredCount, TaskDefinitionArn = definition.Arn,
            Deployments = [new Deployment { Id = "ecs-svc/1", Status = DeploymentStatus.Primary, TaskDefinitionArn = definition.Arn, DesiredCount = desiredCount, CreatedAt = now, UpdatedAt = now }],
        }, cancellationToken));
    }

    [Fact]
    public async Task A_service_in_a_cluster_without_instances_records_ECS_event_once_frees_its_lease_and_looks_again_later()
    {
        await ServiceAsync(2, _token);

        var first = await _world.Reconciler.ReconcileAsync(Web, _token);
        _world.Time.Advance(TimeSpan.FromSeconds(30));
        var second = await _world.Reconciler.ReconcileAsync(Web, _token);

        var service = (await _world.Services.FindAsync(_world.Cluster, "web", _token))!;
        Assert.Equal([NoInstances], service.Events.Select(e => e.Message));
        Assert.Null(service.LeaseOwner);
        Assert.NotNull(first.RequeueAfter);
        Assert.NotNull(second.RequeueAfter);
        Assert.Empty(await _world.Tasks.ListForGroupAsync(_world.Cluster, "service:web", _token));
    }

    [Fact]
    public async Task A_deleted_service_that_could_not_place_goes_INACTIVE_at_its_next_reconcile()
    {
        await ServiceAsync(1, _token);
        await _world.Reconciler.ReconcileAsync(Web, _token);

        // DeleteService --force: DRAINING, desired 0; its reconcile follows at once.
        await _world.Services.UpdateAsync(_world.Cluster, "web", s => s with { Status = ServiceRecord.Draining, DesiredCount = 0 }, _token);
        await _world.Reconciler.ReconcileAsync(Web, _token);

        Assert.Equal(ServiceRecord.Inactive, (await _world.Services.FindAsync(_world.Cluster, "web", _token))!.Status);
    }

    [Fact]
    public async Task The_placement_event_comes_back_once_the_cause_was_resolved_or_after_six_hours()
    {
        var start = DateTimeOffset.UnixEpoch;
        ServiceEvent Event(string message, TimeSpan ago) => new(Guid.NewGuid().ToString(), start - ago, message);

        Assert.True(ServiceEvents.IsRepeat([Event(NoInstances, TimeSpan.FromHours(5))], NoInstances, start));
        Assert.True(ServiceEvents.IsRepeat([Event("(service web) has stopped 1 running tasks: (task a).", TimeSpan.Zero), Event(NoInstances, TimeSpan.FromHours(1))], NoInstances, start));
        Assert.False(ServiceEvents.IsRepeat([Event(NoInstances, TimeSpan.FromHours(6))], NoInstances, start));
        Assert.False(ServiceEvents.IsRepeat([Event("(service web) has started 1 tasks: (task a).", TimeSpan.Zero), Event(NoInstances, TimeSpan.FromHours(1))], NoInstances, start));
        Assert.False(ServiceEvents.IsRepeat([], NoInstances, start));
    }
}
