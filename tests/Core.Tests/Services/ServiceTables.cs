using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.Core.Tags;
using Serverless.Core.TaskDefinitions;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Services;

/// <summary>
/// The service API over real Table Storage and Queues (Azurite): one fresh table prefix and one
/// fresh cluster name per instance (so per test). The <c>reconcile</c> queue has a fixed name that
/// every test shares, so <see cref="ReconcilesAsync"/> reads only the messages of this cluster.
/// </summary>
public sealed class ServiceTables
{
    public static readonly DateTimeOffset Start = new(2025, 11, 25, 4, 0, 0, TimeSpan.Zero);

    private readonly AzuriteFixture _azurite;
    private readonly StorageClients _storage;

    public ServiceTables(AzuriteFixture azurite)
    {
        _azurite = azurite;
        _storage = NewStorage();
        Clusters = new ClusterStore(_storage, Arns);
        Definitions = new TaskDefinitionStore(_storage, Arns, Time, NullLogger<TaskDefinitionStore>.Instance);
        Services = new ServiceStore(_storage, Arns);
        Registry = new ActionRegistry(
        [
            new ClusterActions(Clusters, [new ServiceUsage(Services)], Arns, Time),
            new TaskDefinitionActions(Definitions, Arns),
            new ServiceActions(
                Clusters, Definitions, Services, new ReconcileQueue(_storage, new QueueWake(NullLogger<QueueWake>.Instance)), new ClientTokens(_storage, Time),
                new ServiceJson(Arns, Options), Arns, Time, NullLogger<ServiceActions>.Instance),
            new ContainerInstanceActions(
                new ContainerInstanceStore(_storage, Arns, Time), Clusters,
                new ServiceResync(Services, new ReconcileQueue(_storage, new QueueWake(NullLogger<QueueWake>.Instance))),
                Arns, Options, Time, NullLogger<ContainerInstanceActions>.Instance),
            new TagActions([new ServiceTags(Services, Arns)]),
        ]);
    }

    public FakeTimeProvider Time { get; } = new(Start);

    public string Prefix { get; } = TestNames.Unique("Services");

    /// <summary>This test's cluster: tables are per test, but the reconcile queue is not.</summary>
    public string Cluster { get; } = TestNames.Unique("svc");

    public EcsOptions Options => new() { Region = "us-east-1", AccountId = "000000000000", StoragePrefix = Prefix };

    public Arns Arns { get; } = new(new EcsOptions { Region = "us-east-1", AccountId = "000000000000" });

    public ClusterStore Clusters { get; }

    public TaskDefinitionStore Definitions { get; }

    public ServiceStore Services { get; }

    public ActionRegistry Registry { get; }

    /// <summary>Another control plane on the same tables.</summary>
    public ServiceStore NewServiceStore() => new(NewStorage(), Arns);

    public string ServiceArn(string name, string? cluster = null) => Arns.Service(cluster ?? Cluster, name);

    public string DefinitionArn(string familyRevision) => $"arn:aws:ecs:us-east-1:000000000000:task-definition/{familyRevision}";

    /// <summary>Calls <paramref name="action"/> the way the front end does: validate against the model, then the handler.</summary>
    public async Task<JsonObject> CallAsync(string action, string json, CancellationToken cancellationToken)
    {
        var request = RequestValidator.Validate(ServiceModel.Ecs, ServiceModel.Ecs.InputOf(action)!, JsonNode.Parse(json)!.AsObject());
        Assert.True(Registry.TryGet($"{ActionRegistry.EcsTargetPrefix}.{action}", out var handler));
        var response = await handler(request, new RequestContext("AKIDTEST"), cancellationToken);
        // The answer must be serialisable exactly as it will be sent.
        return JsonNode.Parse(response.ToJsonString(AwsJson.Options))!.AsObject();
    }

    /// <summary>Creates this test's cluster and registers <c>web:1</c> (one 128 MiB container, bridge mode).</summary>
    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        Assert.True(await Clusters.TryAddAsync(new ClusterRecord { Name = Cluster }, cancellationToken));
        await RegisterAsync("web", cancellationToken);
        await ReconcilesAsync(cancellationToken);
    }

    public Task<JsonObject> RegisterAsync(string family, CancellationToken cancellationToken, string extra = "", string containerExtra = "")
        => CallAsync("RegisterTaskDefinition",
            $$"""{"family":"{{family}}","containerDefinitions":[{"name":"app","image":"local/busybox:latest","memory":128{{containerExtra}}}]{{extra}}}""",
            cancellationToken);

    /// <summary>
    /// The reconcile messages enqueued for this test's cluster since the last call, in order; they
    /// are removed. Other tests' messages are left on the queue.
    /// </summary>
    public async Task<List<ServiceKey>> ReconcilesAsync(CancellationToken cancellationToken)
    {
        var queue = _azurite.CreateQueueServiceClient().GetQueueClient(ReconcileQueue.QueueName);
        await queue.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var keys = new List<ServiceKey>();
        while (true)
        {
            // A short visibility timeout: messages of other clusters reappear almost at once.
            var batch = (await queue.ReceiveMessagesAsync(32, TimeSpan.FromSeconds(2), cancellationToken)).Value;
            if (batch.Length == 0) return keys;
            foreach (var message in batch.OrderBy(m => m.InsertedOn))
            {
                var key = ReconcileQueue.Parse(message.Body.ToString());
                if (key.Cluster != Cluster) continue;
                keys.Add(key);
                await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, cancellationToken);
            }
        }
    }

    private StorageClients NewStorage() => new(_azurite.ConnectionString, Options);
}
