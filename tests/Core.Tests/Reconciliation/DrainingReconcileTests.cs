using Serverless.Core.ContainerInstances;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>A REPLICA service whose instance drains, reconciled over real Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class DrainingReconcileTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly ReconcilerTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public Task InitializeAsync() => _tables.InitializeAsync(_token);

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task RunAllAsync(IEnumerable<TaskRecord> tasks)
    {
        var store = _tables.NewTaskStore();
        foreach (var task in tasks)
            await store.UpdateAsync(_tables.Cluster, task.Id, t => t with { LastStatus = EcsTaskStatus.Running, StartedAt = _tables.Api.Time.GetUtcNow() }, _token);
    }

    [Fact]
    public async Task The_service_tasks_of_a_draining_instance_are_replaced_on_another_then_stopped()
    {
        var a = await _tables.RegisterInstanceAsync(_token);
        await _tables.Api.CallAsync("CreateService",
            $$"""{"cluster":"{{_tables.Cluster}}","serviceName":"web","taskDefinition":"web","desiredCount":2}""", _token);
        var reconciler = _tables.NewReconciler();
        await reconciler.ReconcileAsync(new(_tables.Cluster, "web"), _token);
        var onA = await _tables.ServiceTasksAsync("web", _token);
        await RunAllAsync(onA);

        var b = await _tables.RegisterInstanceAsync(_token);
        await _tables.NewInstanceStore().UpdateAsync(_tables.Cluster, a.Id, i => i with { Status = ContainerInstanceRecord.Draining }, _token);
        await reconciler.ReconcileAsync(new(_tables.Cluster, "web"), _token);

        var tasks = await _tables.ServiceTasksAsync("web", _token);
        var onB = tasks.Where(t => t.ContainerInstanceId == b.Id).ToList();
        Assert.Equal(2, onB.Count);
        // minimumHealthyPercent 100: the old ones keep running until their replacements do.
        Assert.All(tasks.Where(t => t.ContainerInstanceId == a.Id), t => Assert.Equal(EcsTaskStatus.Running, t.DesiredStatus));

        await RunAllAsync(onB);
        await reconciler.ReconcileAsync(new(_tables.Cluster, "web"), _token);

        tasks = await _tables.ServiceTasksAsync("web", _token);
        Assert.All(tasks.Where(t => t.ContainerInstanceId == a.Id), t => Assert.Equal(EcsTaskStatus.Stopped, t.DesiredStatus));
        Assert.All(tasks.Where(t => t.ContainerInstanceId == b.Id), t => Assert.Equal(EcsTaskStatus.Running, t.DesiredStatus));
        Assert.Equal(4, tasks.Count);
    }

    [Fact]
    public async Task The_service_tasks_of_a_force_deregistered_instance_are_stopped_and_replaced_on_another()
    {
        var a = await _tables.RegisterInstanceAsync(_token);
        await _tables.Api.CallAsync("CreateService",
            $$"""{"cluster":"{{_tables.Cluster}}","serviceName":"web","taskDefinition":"web","desiredCount":2}""", _token);
        var reconciler = _tables.NewReconciler();
        await reconciler.ReconcileAsync(new(_tables.Cluster, "web"), _token);
        await RunAllAsync(await _tables.ServiceTasksAsync("web", _token));
        var b = await _tables.RegisterInstanceAsync(_token);

        await _tables.Api.CallAsync("DeregisterContainerInstance",
            $$"""{"cluster":"{{_tables.Cluster}}","containerInstance":"{{a.Id}}","force":true}""", _token);
        await _tables.Api.ReconcilesAsync(_token);
        await _tables.NewHealthSweep().SweepClusterAsync(_tables.Cluster, _token);

        var orphans = await _tables.ServiceTasksAsync("web", _token);
        Assert.All(orphans, t => Assert.Equal((EcsTaskStatus.Stopped, EcsTaskStatus.Stopped), (t.LastStatus, t.DesiredStatus)));
        Assert.All(orphans, t => Assert.Contains("was deregistered", t.StoppedReason));
        Assert.Empty((await _tables.NewInstanceStore().FindAsync(_tables.Cluster, a.Id, _token))!.Reservations);
        Assert.Equal([new Serverless.Core.Services.ServiceKey(_tables.Cluster, "web")], await _tables.Api.ReconcilesAsync(_token));

        await reconciler.ReconcileAsync(new(_tables.Cluster, "web"), _token);
        var live = (await _tables.ServiceTasksAsync("web", _token)).Where(t => !t.IsStopped).ToList();
        Assert.Equal(2, live.Count);
        Assert.All(live, t => Assert.Equal(b.Id, t.ContainerInstanceId));
    }
}
