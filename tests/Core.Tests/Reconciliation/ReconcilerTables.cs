using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Core.Tests.Services;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>
/// Service reconcilers over real Table Storage and Queues (Azurite), on the tables of one
/// <see cref="ServiceTables"/> (the service API, its cluster and <c>web:1</c>): each
/// <see cref="NewReconciler"/> is another control plane on the same tables and the same fake clock.
/// </summary>
public sealed class ReconcilerTables(AzuriteFixture azurite)
{
    public ServiceTables Api { get; } = new(azurite);

    public string Cluster => Api.Cluster;

    public Task InitializeAsync(CancellationToken cancellationToken) => Api.InitializeAsync(cancellationToken);

    public ContainerInstanceStore NewInstanceStore() => new(NewStorage(), Api.Arns, Api.Time);

    public TaskStore NewTaskStore() => new(NewStorage(), Api.Arns);

    /// <summary>Registers a host with room for <paramref name="memory"/> MiB of tasks (web:1 takes 128).</summary>
    public Task<ContainerInstanceRecord> RegisterInstanceAsync(CancellationToken cancellationToken, int memory = 4096)
        => NewInstanceStore().RegisterAsync(new ContainerInstanceRecord
        {
            Cluster = Cluster,
            Id = ContainerInstanceStore.NewId(),
            Ec2InstanceId = "i-0123456789abcdef0",
            RegisteredCpu = 4096,
            RegisteredMemory = memory,
            Attributes = [new("ecs.os-type", "linux")],
        }, cancellationToken);

    /// <summary>
    /// A control plane's reconciler. <paramref name="launcherLog"/> sees what its task launcher logs
    /// ("Placed {TaskArn} on {InstanceArn}" after each placement), which is where tests act mid-reconcile.
    /// </summary>
    public ServiceReconciler NewReconciler(ILogger<TaskLauncher>? launcherLog = null)
    {
        var storage = NewStorage();
        var instances = new ContainerInstanceStore(storage, Api.Arns, Api.Time);
        var tasks = new TaskStore(storage, Api.Arns);
        // These tests move the clock by minutes without heartbeats: the host stays connected throughout.
        var options = Api.Options;
        options.AgentDisconnectedAfterSeconds = 3600;
        var launcher = new TaskLauncher(instances, tasks, storage, Api.Arns, options, new QueueWake(NullLogger<QueueWake>.Instance), Api.Time,
            launcherLog ?? NullLogger<TaskLauncher>.Instance);
        return new ServiceReconciler(
            new ServiceStore(storage, Api.Arns), tasks, new Serverless.Core.TaskDefinitions.TaskDefinitionStore(storage, Api.Arns, Api.Time, NullLogger<Serverless.Core.TaskDefinitions.TaskDefinitionStore>.Instance),
            instances, launcher, options, Api.Time, NullLogger<ServiceReconciler>.Instance);
    }

    /// <summary>A control plane's health sweep (lost and deregistered instances).</summary>
    public InstanceHealthSweep NewHealthSweep()
    {
        var storage = NewStorage();
        var instances = new ContainerInstanceStore(storage, Api.Arns, Api.Time);
        var tasks = new TaskStore(storage, Api.Arns);
        var wake = new QueueWake(NullLogger<QueueWake>.Instance);
        var launcher = new TaskLauncher(instances, tasks, storage, Api.Arns, Api.Options, wake, Api.Time, NullLogger<TaskLauncher>.Instance);
        return new InstanceHealthSweep(Api.Clusters, instances, tasks, launcher, new ReconcileQueue(storage, wake), Api.Options, Api.Time,
            NullLogger<InstanceHealthSweep>.Instance);
    }

    public async Task<IReadOnlyList<TaskRecord>> ServiceTasksAsync(string service, CancellationToken cancellationToken)
        => await NewTaskStore().ListForGroupAsync(Cluster, $"service:{service}", cancellationToken);

    private StorageClients NewStorage() => new(azurite.ConnectionString, Api.Options);
}

/// <summary>A logger that runs <paramref name="onPlaced"/> every time a task is placed.</summary>
public sealed class OnEachPlacement<T>(Action onPlaced) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (formatter(state, exception).StartsWith("Placed ", StringComparison.Ordinal)) onPlaced();
    }
}
