using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Tasks;
using Serverless.Core.Tests.Tasks;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>
/// A reconcile that only records what it counted (no task to start or stop) and loses that write to another
/// writer: the counts it saw must not be dropped, since another reconcile's save enqueues no reconcile of its own.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class LostSaveTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    private ServiceKey Web => new(_world.Cluster, "web");

    [Fact]
    public async Task A_reconcile_whose_count_save_loses_a_race_looks_again_soon_and_then_counts_the_task()
    {
        var definition = await _world.InitializeAsync(_token);
        await _world.InstanceAsync(_token);
        var now = _world.Time.GetUtcNow();
        Assert.True(await _world.Services.TryInsertAsync(new ServiceRecord
        {
            Cluster = _world.Cluster, Name = "web", DesiredCount = 1, TaskDefinitionArn = definition.Arn,
            Deployments = [new Deployment { Id = "ecs-svc/1", Status = DeploymentStatus.Primary, TaskDefinitionArn = definition.Arn, DesiredCount = 1, CreatedAt = now, UpdatedAt = now }],
        }, _token));
        await _world.Reconciler.ReconcileAsync(Web, _token);
        var task = Assert.Single(await _world.Tasks.ListForGroupAsync(_world.Cluster, "service:web", _token));
        // Its worker's report: the task runs.
        await _world.Tasks.UpdateAsync(_world.Cluster, task.Id,
            t => t with { LastStatus = EcsTaskStatus.Running, StartedAt = now, ObservedAt = now }, _token);

        // Another writer saves the service between this reconcile's read and its save (as a second reconcile would).
        var interfered = 0;
        azurite.Proxy.Observe = r =>
        {
            if (r is { Service: StorageService.Table, Kind: "write" } && r.Resource!.EndsWith("Services", StringComparison.Ordinal)
                && Interlocked.Exchange(ref interfered, 1) == 0)
                _world.Services.UpdateAsync(_world.Cluster, "web", s => s with { Tags = [new Tags.Tag("touched", "yes")] }, CancellationToken.None).GetAwaiter().GetResult();
        };
        ReconcileResult lost;
        try
        {
            lost = await _world.Reconciler.ReconcileAsync(Web, _token);
        }
        finally
        {
            azurite.Proxy.Observe = null;
        }

        Assert.Equal(1, interfered);
        Assert.Equal(0, (await _world.Services.FindAsync(_world.Cluster, "web", _token))!.Deployments.Single().RunningCount);
        Assert.NotNull(lost.RequeueAfter);
        Assert.True(lost.RequeueAfter <= TimeSpan.FromSeconds(1), $"looks again in {lost.RequeueAfter}");

        await _world.Reconciler.ReconcileAsync(Web, _token);
        Assert.Equal(1, (await _world.Services.FindAsync(_world.Cluster, "web", _token))!.Deployments.Single().RunningCount);
    }
}
