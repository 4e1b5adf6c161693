using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.ContainerInstances;

/// <summary>
/// Container instance and cluster stores over real Table Storage (Azurite), on tables of their own:
/// one fresh prefix per instance of this class (so per test), shared by every store it makes, so
/// several stores behave as several control planes on the same tables.
/// </summary>
public sealed class ContainerInstanceTables(string connectionString)
{
    public static readonly DateTimeOffset Start = new(2025, 11, 25, 4, 0, 0, TimeSpan.Zero);

    public FakeTimeProvider Time { get; } = new(Start);

    public string Prefix { get; } = TestNames.Unique("ContainerInstances");

    public EcsOptions Options => new() { Region = "us-east-1", AccountId = "000000000000", StoragePrefix = Prefix };

    public Arns Arns { get; } = new(new EcsOptions { Region = "us-east-1", AccountId = "000000000000" });

    /// <summary>A store with its own storage clients: another control plane on the same tables.</summary>
    public ContainerInstanceStore NewStore() => new(new StorageClients(connectionString, Options), Arns, Time);

    public ClusterStore NewClusterStore() => new(new StorageClients(connectionString, Options), Arns, Time);

    public ContainerInstanceActions NewActions(ContainerInstanceStore store, ClusterStore clusters)
        => new(store, clusters, Resync, Arns, Options, Time, NullLogger<ContainerInstanceActions>.Instance);

    /// <summary>Cluster resyncs go to the shared reconcile queue; these tests' clusters have no services, so they enqueue nothing.</summary>
    private ServiceResync Resync => new(
        new ServiceStore(new StorageClients(connectionString, Options), Arns),
        new ReconcileQueue(new StorageClients(connectionString, Options), new QueueWake(NullLogger<QueueWake>.Instance)));

    /// <summary>An instance as a worker would register it: <paramref name="cpu"/> units, <paramref name="memory"/> MiB.</summary>
    public static ContainerInstanceRecord Host(
        string cluster = "default", int cpu = 1024, int memory = 1024, string? id = null, IReadOnlyList<InstanceAttribute>? attributes = null)
        => new()
        {
            Cluster = cluster,
            Id = id ?? ContainerInstanceStore.NewId(),
            Ec2InstanceId = "i-0123456789abcdef0",
            RegisteredCpu = cpu,
            RegisteredMemory = memory,
            Attributes = attributes ?? [new("ecs.os-type", "linux")],
            AgentVersion = "1.0.0",
            DockerVersion = "20.10.24",
        };
}
