using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>Several reports in one message, applied to real task and instance rows (Azurite).</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskStateApplierTests
{
    private static Arns Arns => TaskRows.Arns;
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
    private readonly string _cluster = TestNames.Unique("apply");
    private readonly TaskStore _tasks;
    private readonly ContainerInstanceStore _instances;
    private readonly TaskStateApplier _applier;
    private readonly StorageClients _storage;

    public TaskStateApplierTests(AzuriteFixture azurite)
    {
        var storage = new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("Apply") });
        _tasks = new TaskStore(storage, Arns);
        _instances = new ContainerInstanceStore(storage, Arns, _time);
        var wake = new QueueWake(NullLogger<QueueWake>.Instance);
        var reconcile = new ReconcileQueue(storage, wake);
        _storage = storage;
        var launcher = new TaskLauncher(_instances, _tasks, storage, Arns, new EcsOptions(), wake, _time, NullLogger<TaskLauncher>.Instance);
        _applier = new TaskStateApplier(_tasks, _instances, launcher, reconcile, Arns, _time, NullLogger<TaskStateApplier>.Instance);
    }

    private async Task<TaskRecord> TaskAsync(string group, string instance)
    {
        var task = TaskRows.New(_cluster, group, instance, _time.GetUtcNow()) with
        {
            Memory = 64,
            Containers = [new TaskContainer { Name = "app", Id = Guid.NewGuid().ToString(), Image = "local/busybox:latest" }],
        };
        return await _tasks.InsertAsync(task, _token);
    }

    private TaskStateChange Report(TaskRecord task, string status) => new()
    {
        Cluster = _cluster,
        TaskArn = Arns.Task(_cluster, task.Id),
        ContainerInstanceArn = Arns.ContainerInstance(_cluster, task.ContainerInstanceId),
        LastStatus = status,
        StopCode = status == EcsTaskStatus.Stopped ? "EssentialContainerExited" : null,
        Containers = [new ContainerStateChange { Name = "app", LastStatus = status, ExitCode = status == EcsTaskStatus.Stopped ? 0 : null }],
        ObservedAt = _time.GetUtcNow(),
    };

    [Fact]
    public async Task One_message_updates_tasks_across_partitions_and_frees_stopped_reservations_together()
    {
        var instance = await _instances.RegisterAsync(new ContainerInstanceRecord
        {
            Cluster = _cluster, Id = Guid.NewGuid().ToString("N"), Ec2InstanceId = "host", RegisteredCpu = 1024, RegisteredMemory = 1024,
        }, _token);
        var a = await TaskAsync("family:web", instance.Id);
        var b = await TaskAsync("family:web", instance.Id);
        var c = await TaskAsync("family:web", instance.Id);
        var other = await TaskAsync("family:other", instance.Id);
        foreach (var task in new[] { a, b, c, other })
            instance = (await _instances.TryReserveAsync(instance, new Reservation(task.Id, 0, 64, [], []), _token))!;
        var unknown = a with { Id = TaskIds.New("family:web") };

        TaskStateChange[] message = [Report(a, EcsTaskStatus.Running), Report(b, EcsTaskStatus.Stopped), Report(c, EcsTaskStatus.Stopped), Report(other, EcsTaskStatus.Pending), Report(unknown, EcsTaskStatus.Running)];
        await _applier.ApplyAsync(message, _token);

        Assert.Equal(EcsTaskStatus.Running, (await _tasks.FindAsync(_cluster, a.Id, _token))!.LastStatus);
        Assert.Equal(EcsTaskStatus.Stopped, (await _tasks.FindAsync(_cluster, b.Id, _token))!.LastStatus);
        Assert.Equal(EcsTaskStatus.Stopped, (await _tasks.FindAsync(_cluster, c.Id, _token))!.LastStatus);
        Assert.Equal(EcsTaskStatus.Pending, (await _tasks.FindAsync(_cluster, other.Id, _token))!.LastStatus);
        Assert.Null(await _tasks.FindAsync(_cluster, unknown.Id, _token));
        var after = (await _instances.FindAsync(_cluster, instance.Id, _token))!;
        Assert.Equal(new[] { a.Id, other.Id }.Order(StringComparer.Ordinal), after.Reservations.Select(r => r.TaskId).Order(StringComparer.Ordinal));
        Assert.Equal(instance.Version + 1, after.Version); // both stopped tasks freed in one write

        // Delivered again (and late reports behind it): nothing moves backwards, nothing is written.
        var stored = await _tasks.FindAsync(_cluster, b.Id, _token);
        await _applier.ApplyAsync([.. message, Report(b, EcsTaskStatus.Running)], _token);
        Assert.Equal(stored!.ETag, (await _tasks.FindAsync(_cluster, b.Id, _token))!.ETag);
        Assert.Equal(after.Version, (await _instances.FindAsync(_cluster, instance.Id, _token))!.Version);
    }

    [Fact]
    public async Task A_task_reported_running_without_a_row_is_told_to_stop_and_its_STOPPED_report_is_ignored()
    {
        var instance = await _instances.RegisterAsync(new ContainerInstanceRecord
        {
            Cluster = _cluster, Id = Guid.NewGuid().ToString("N"), Ec2InstanceId = "host", RegisteredCpu = 1024, RegisteredMemory = 1024,
        }, _token);
        var unknown = TaskRows.New(_cluster, "family:web", instance.Id, _time.GetUtcNow());
        var commands = await _storage.QueueAsync(TaskMessages.CommandQueue(instance.Id), _token);

        await _applier.ApplyAsync([Report(unknown, EcsTaskStatus.Running)], _token);
        var sent = (await commands.ReceiveMessagesAsync(32, cancellationToken: _token)).Value;
        var stop = TaskMessages.Deserialize<TaskCommand>(Assert.Single(sent).MessageText);
        Assert.Equal(TaskCommand.Stop, stop.Type);
        Assert.Equal(Arns.Task(_cluster, unknown.Id), stop.TaskArn);
        Assert.Equal(TaskLauncher.UnknownTaskReason, stop.Reason);
        Assert.Null(await _tasks.FindAsync(_cluster, unknown.Id, _token));   // no row is made up for it

        await _applier.ApplyAsync([Report(unknown, EcsTaskStatus.Stopped)], _token);
        Assert.Empty((await commands.PeekMessagesAsync(32, _token)).Value);   // the Stop above is invisible, having been received
    }
}
