using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Tasks;
using Serverless.Core.Tests.Tasks;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>
/// What a reconcile reads of a service's stopped tasks, which a service that churns keeps for the retention period:
/// nothing, unless a deployment in progress counts its failed launches among them (or a load balancer's targets
/// must be deregistered from them).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class StoppedTasksReadTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    private ServiceKey Web => new(_world.Cluster, "web");

    [Fact]
    public async Task A_steady_service_reconciles_from_its_running_tasks_without_reading_the_stopped_ones()
    {
        await ServiceWithTwoCrashedTasksAsync(DeploymentRolloutState.Completed);
        // Their replacements run.
        var replacements = (await _world.Tasks.ListForGroupAsync(_world.Cluster, "service:web", _token)).Where(t => !t.IsStopped).ToList();
        Assert.Equal(2, replacements.Count);
        foreach (var task in replacements) await RunningAsync(task.Id);

        var tasksQueries = await TasksQueriesOfAsync(() => _world.Reconciler.ReconcileAsync(Web, _token));

        // One query of the service's partition, returning the two that run and none of the two that stopped.
        Assert.Equal([2], tasksQueries);
        var service = (await _world.Services.FindAsync(_world.Cluster, "web", _token))!;
        Assert.Equal(2, service.Deployments.Single().RunningCount);
        Assert.Equal(4, (await _world.Tasks.ListForGroupAsync(_world.Cluster, "service:web", _token)).Count);
    }

    [Fact]
    public async Task A_deployment_in_progress_still_counts_its_failed_launches_among_the_stopped_tasks()
    {
        await ServiceWithTwoCrashedTasksAsync(DeploymentRolloutState.InProgress);

        var tasksQueries = await TasksQueriesOfAsync(() => _world.Reconciler.ReconcileAsync(Web, _token));

        // The stopped two are read with the replacements, and counted as the deployment's failed launches.
        Assert.Equal([4], tasksQueries);
        Assert.Equal(2, (await _world.Services.FindAsync(_world.Cluster, "web", _token))!.Deployments.Single().FailedTasks);
    }

    /// <summary>A service of two tasks whose primary deployment is in <paramref name="rolloutState"/>; both tasks crash and are replaced.</summary>
    private async Task ServiceWithTwoCrashedTasksAsync(string rolloutState)
    {
        var definition = await _world.InitializeAsync(_token);
        await _world.InstanceAsync(_token);
        var now = _world.Time.GetUtcNow();
        Assert.True(await _world.Services.TryInsertAsync(new ServiceRecord
        {
            Cluster = _world.Cluster, Name = "web", DesiredCount = 2, TaskDefinitionArn = definition.Arn,
            Deployments = [new Deployment
            {
                Id = "ecs-svc/1", Status = DeploymentStatus.Primary, TaskDefinitionArn = definition.Arn, DesiredCount = 2,
                RolloutState = rolloutState, CreatedAt = now, UpdatedAt = now,
            }],
        }, _token));
        await _world.Reconciler.ReconcileAsync(Web, _token);
        var first = await _world.Tasks.ListForGroupAsync(_world.Cluster, "service:web", _token);
        Assert.Equal(2, first.Count);
        foreach (var task in first)
        {
            await _world.Tasks.UpdateAsync(_world.Cluster, task.Id, t => t with
            {
                LastStatus = EcsTaskStatus.Stopped, DesiredStatus = EcsTaskStatus.Stopped, StopCode = "EssentialContainerExited",
                StoppedReason = "Essential container in task exited", StoppedAt = now, ObservedAt = now,
            }, _token);
        }
        await _world.Reconciler.ReconcileAsync(Web, _token);
    }

    private Task RunningAsync(string taskId)
    {
        var now = _world.Time.GetUtcNow();
        return _world.Tasks.UpdateAsync(_world.Cluster, taskId, t => t with { LastStatus = EcsTaskStatus.Running, StartedAt = now, ObservedAt = now }, _token);
    }

    /// <summary>The rows each query of the Tasks table returned while <paramref name="act"/> ran.</summary>
    private async Task<IReadOnlyList<int>> TasksQueriesOfAsync(Func<Task> act)
        => [.. (await azurite.Proxy.RecordAsync(act))
            .Where(r => r is { Service: StorageService.Table, Kind: "query" } && r.Resource!.EndsWith("Tasks", StringComparison.Ordinal)).Select(r => r.Entities)];
}
