using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// The task path over real tables and queues (Azurite) with no worker: stores, launcher, service
/// reconciler and the delivery sweep on one fake clock, a fresh table prefix and cluster per
/// instance. A worker's command queue is read directly (<see cref="CommandsAsync"/>); instance ids
/// are fresh, so their queues are this test's own.
/// </summary>
internal sealed class TaskWorld
{
    public static readonly DateTimeOffset Start = new(2026, 12, 1, 12, 0, 0, TimeSpan.Zero);

    public TaskWorld(AzuriteFixture azurite, string? connectionString = null)
    {
        var options = new EcsOptions { Region = "us-east-1", AccountId = "000000000000", StoragePrefix = TestNames.Unique("Deliver") };
        Storage = new StorageClients(connectionString ?? azurite.ConnectionString, options);
        Queues = azurite.CreateQueueServiceClient();
        var wake = new QueueWake(NullLogger<QueueWake>.Instance);
        Clusters = new ClusterStore(Storage, Arns);
        Instances = new ContainerInstanceStore(Storage, Arns, Time);
        Definitions = new TaskDefinitionStore(Storage, Arns, Time, NullLogger<TaskDefinitionStore>.Instance);
        Tasks = new TaskStore(Storage, Arns);
        Services = new ServiceStore(Storage, Arns);
        Reconcile = new ReconcileQueue(Storage, wake);
        Launcher = new TaskLauncher(Instances, Tasks, Storage, Arns, options, wake, Time, NullLogger<TaskLauncher>.Instance);
        Reconciler = new ServiceReconciler(Services, Tasks, Definitions, Instances, Launcher, new EcsOptions(), Time, NullLogger<ServiceReconciler>.Instance);
        Sweep = new TaskDeliverySweep(Clusters, Instances, Tasks, Launcher, Reconcile, Arns, new EcsOptions(), Time, NullLogger<TaskDeliverySweep>.Instance);
    }

    public FakeTimeProvider Time { get; } = new(Start);
    public Arns Arns => TaskRows.Arns;
    public string Cluster { get; } = TestNames.Unique("deliver");
    public StorageClients Storage { get; }
    public QueueServiceClient Queues { get; }
    public ClusterStore Clusters { get; }
    public ContainerInstanceStore Instances { get; }
    public TaskDefinitionStore Definitions { get; }
    public TaskStore Tasks { get; }
    public ServiceStore Services { get; }
    public ReconcileQueue Reconcile { get; }
    public TaskLauncher Launcher { get; }
    public ServiceReconciler Reconciler { get; }
    public TaskDeliverySweep Sweep { get; }

    /// <summary>This world's cluster, and <c>web:1</c> (one 128 MiB busybox container, bridge mode).</summary>
    public async Task<TaskDefinitionRecord> InitializeAsync(CancellationToken cancellationToken)
    {
        Assert.True(await Clusters.TryAddAsync(new ClusterRecord { Name = Cluster }, cancellationToken));
        return await Definitions.RegisterAsync(JsonNode.Parse(
            """{"family":"web","containerDefinitions":[{"name":"app","image":"local/busybox:latest","memory":128}]}""")!.AsObject(), [], cancellationToken);
    }

    /// <summary>A registered instance with a worker that heartbeats now.</summary>
    public Task<ContainerInstanceRecord> InstanceAsync(CancellationToken cancellationToken)
        => Instances.RegisterAsync(new ContainerInstanceRecord
        {
            Cluster = Cluster, Id = ContainerInstanceStore.NewId(), Ec2InstanceId = "host", RegisteredCpu = 1024, RegisteredMemory = 1024,
        }, cancellationToken);

    public LaunchRequest Launch(TaskDefinitionRecord definition, string group = "family:web") => new()
    {
        Cluster = Cluster, Definition = definition, Count = 1, Group = group,
    };

    /// <summary>The commands on the instance's queue (read and removed), oldest first.</summary>
    public async Task<List<TaskCommand>> CommandsAsync(string instanceId, CancellationToken cancellationToken)
    {
        var queue = Queues.GetQueueClient(TaskMessages.CommandQueue(instanceId));
        await queue.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var commands = new List<TaskCommand>();
        while (true)
        {
            QueueMessage[] batch = (await queue.ReceiveMessagesAsync(32, TimeSpan.FromMinutes(1), cancellationToken)).Value;
            if (batch.Length == 0) return commands;
            foreach (var message in batch.OrderBy(m => m.InsertedOn))
            {
                commands.Add(TaskMessages.Deserialize<TaskCommand>(message.Body.ToString()));
                await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, cancellationToken);
            }
        }
    }

    public async Task<ContainerInstanceRecord> InstanceNowAsync(string id, CancellationToken cancellationToken)
        => (await Instances.FindAsync(Cluster, id, cancellationToken))!;

    public async Task<TaskRecord> TaskNowAsync(string id, CancellationToken cancellationToken)
        => (await Tasks.FindAsync(Cluster, id, cancellationToken))!;
}
