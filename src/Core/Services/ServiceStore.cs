using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.Scheduling;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.Services;

/// <summary>
/// The <c>Services</c> table, and the only code that touches it.
/// <para>
/// Partition key <c>cluster|name</c>, row key empty: each service is one row in its own partition,
/// so a reconcile's writes to one service never contend with another's, and a cluster's services
/// are the key range <c>cluster|</c> .. <c>cluster|~</c> (cluster and service names use only
/// <c>[a-zA-Z0-9_-]</c>, all below <c>~</c>, and never <c>|</c>).
/// </para>
/// <para>
/// The scalar fields a query filters or selects on are columns; placement, deployments, events and
/// the passthrough request members are one JSON document split by <see cref="LargeJson"/>.
/// Every write is conditional on the ETag the record was read with.
/// </para>
/// </summary>
public sealed class ServiceStore(StorageClients storage, Arns arns)
{
    public const string TableName = "Services";

    private const string DocumentPrefix = "Json";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The columns <see cref="ListAllActiveAsync"/> reads: enough to name a service and tell what it runs.</summary>
    private static readonly string[] KeyColumns = ["PartitionKey", "RowKey", "Status", "SchedulingStrategy", "LaunchType", "DesiredCount", "TaskDefinitionArn", "Steady"];


    public static string PartitionKey(string cluster, string name) => $"{cluster}|{name}";

    /// <summary>Inserts a new service; false when a row of that cluster and name already exists (in any status).</summary>
    public async Task<bool> TryInsertAsync(ServiceRecord service, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            await table.AddEntityAsync(ToEntity(service), cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return false;
        }
    }

    /// <summary>The service in any status (INACTIVE ones stay readable, as DescribeServices shows them), or null.</summary>
    public async Task<ServiceRecord?> FindAsync(string cluster, string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(PartitionKey(cluster, name), "", cancellationToken: cancellationToken);
        return response.HasValue ? FromEntity(response.Value!) : null;
    }

    /// <summary>
    /// The services of <paramref name="keys"/> that exist, in any status, by (cluster, name): one query per
    /// 14 services (Azure's 15 comparisons a filter: 14 partition keys and the row key), a point read for
    /// a lone one. For a timer that looks at many services each time (the scaling evaluation), where a
    /// point read each would cost one transaction per service.
    /// </summary>
    public async Task<IReadOnlyDictionary<(string Cluster, string Name), ServiceRecord>> FindManyAsync(
        IEnumerable<(string Cluster, string Name)> keys, CancellationToken cancellationToken)
    {
        var found = new Dictionary<(string Cluster, string Name), ServiceRecord>();
        var table = await storage.TableAsync(TableName, cancellationToken);
        foreach (var chunk in keys.Distinct().Chunk(TableQueries.MaxRowKeysPerQuery))
        {
            if (chunk.Length == 1)
            {
                if (await FindAsync(chunk[0].Cluster, chunk[0].Name, cancellationToken) is { } one) found[chunk[0]] = one;
                continue;
            }
            var filter = TableQueries.And(
            [
                TableQueries.Or(chunk.Select(k => TableClient.CreateQueryFilter($"PartitionKey eq {PartitionKey(k.Cluster, k.Name)}"))),
                TableClient.CreateQueryFilter($"RowKey eq {""}"),
            ]);
            await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            {
                var service = FromEntity(entity);
                found[(service.Cluster, service.Name)] = service;
            }
        }
        return found;
    }

    /// <summary>
    /// Replaces the row if it is unchanged since <paramref name="service"/> was read (its ETag);
    /// otherwise throws <see cref="ConcurrentUpdateException"/>. Returns the record with its new ETag.
    /// Everything is written as given, the lease included.
    /// </summary>
    public async Task<ServiceRecord> SaveAsync(ServiceRecord service, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            var response = await table.UpdateEntityAsync(ToEntity(service), service.ETag, TableUpdateMode.Replace, cancellationToken);
            return service with { ETag = response.Headers.ETag ?? default };
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            throw new ConcurrentUpdateException(arns.Service(service.Cluster, service.Name));
        }
    }

    /// <summary>
    /// Read-modify-write under optimistic concurrency, retried with jitter when another writer wins.
    /// <paramref name="change"/> runs on a fresh read each attempt (build the result with
    /// <c>current with { ... }</c>); it may throw to refuse the change, or return its argument
    /// unchanged to write nothing. Cluster, name and ETag are always the read's. The lease
    /// (<see cref="ServiceRecord.LeaseOwner"/>, <see cref="ServiceRecord.LeaseExpiresAt"/>) is the
    /// reconciler's: it is kept exactly as read unless <paramref name="change"/> itself sets it to
    /// something else (as the reconciler does to release its own lease), so an API update that
    /// races a reconcile never takes or drops the lease.
    /// Throws <see cref="ServiceNotFoundException"/> when the service does not exist.
    /// </summary>
    public async Task<ServiceRecord> UpdateAsync(string cluster, string name, Func<ServiceRecord, ServiceRecord> change, CancellationToken cancellationToken)
        => (await OptimisticUpdate.UpdateAsync(
            async () => await FindAsync(cluster, name, cancellationToken) ?? throw new ServiceNotFoundException(),
            change,
            (current, changed) => SaveAsync(changed with { Cluster = current.Cluster, Name = current.Name, ETag = current.ETag }, cancellationToken),
            cancellationToken))!;

    /// <summary>
    /// One page of a cluster's ACTIVE and DRAINING services in name order after <paramref name="afterName"/>,
    /// optionally only those of one launch type and scheduling strategy, and whether more follow.
    /// </summary>
    public Task<(IReadOnlyList<ServiceSummary> Services, bool More)> ListAsync(
        string cluster, string? afterName, int take, string? launchType, string? schedulingStrategy, CancellationToken cancellationToken)
        => ListAsync(cluster, [ServiceRecord.Active, ServiceRecord.Draining], afterName, take, launchType, schedulingStrategy, cancellationToken);

    /// <summary>
    /// As <see cref="ListAsync(string, string?, int, string?, string?, CancellationToken)"/>, ACTIVE services
    /// only: what ListServices shows (ECS hides a service from it once it is DRAINING).
    /// </summary>
    public Task<(IReadOnlyList<ServiceSummary> Services, bool More)> ListActiveAsync(
        string cluster, string? afterName, int take, string? launchType, string? schedulingStrategy, CancellationToken cancellationToken)
        => ListAsync(cluster, [ServiceRecord.Active], afterName, take, launchType, schedulingStrategy, cancellationToken);

    private async Task<(IReadOnlyList<ServiceSummary> Services, bool More)> ListAsync(
        string cluster, string[] statuses, string? afterName, int take, string? launchType, string? schedulingStrategy, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var clauses = new List<string>
        {
            TableClient.CreateQueryFilter($"PartitionKey gt {(afterName is null ? cluster + "|" : PartitionKey(cluster, afterName))}"),
            TableClient.CreateQueryFilter($"PartitionKey lt {cluster + "|~"}"),
            TableQueries.Or(statuses.Select(s => TableClient.CreateQueryFilter($"Status eq {s}"))),
        };
        if (launchType is not null) clauses.Add(TableClient.CreateQueryFilter($"LaunchType eq {launchType}"));
        if (schedulingStrategy is not null) clauses.Add(TableClient.CreateQueryFilter($"SchedulingStrategy eq {schedulingStrategy}"));
        // Listing names services, nothing more: the key columns only, so a page of services with long
        // event and deployment histories costs storage no more than a page of names.
        var (entities, more) = await table.TakeAsync<TableEntity>(TableQueries.And(clauses), take, KeyColumns, cancellationToken);
        return (entities.Select(SummaryFromEntity).ToList(), more);
    }

    /// <summary>
    /// Every ACTIVE and DRAINING service of every cluster, for the resync timer (a scan of the table,
    /// never a hot path).
    /// </summary>
    public async IAsyncEnumerable<ServiceSummary> ListAllActiveAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableClient.CreateQueryFilter($"Status eq {ServiceRecord.Active} or Status eq {ServiceRecord.Draining}");
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, select: KeyColumns, cancellationToken: cancellationToken))
            yield return SummaryFromEntity(entity);
    }

    /// <summary>How many of a cluster's services are ACTIVE and how many DRAINING (one range scan, statuses only).</summary>
    public async Task<ClusterUsage> CountAsync(string cluster, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey gt {cluster + "|"} and PartitionKey lt {cluster + "|~"} and (Status eq {ServiceRecord.Active} or Status eq {ServiceRecord.Draining})");
        int active = 0, draining = 0;
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, select: ["Status"], cancellationToken: cancellationToken))
        {
            if (entity.GetString("Status") == ServiceRecord.Active) active++; else draining++;
        }
        return new ClusterUsage(ActiveServices: active, DrainingServices: draining);
    }

    internal static TableEntity ToEntity(ServiceRecord service)
    {
        var entity = new TableEntity(PartitionKey(service.Cluster, service.Name), "")
        {
            ["Cluster"] = service.Cluster,
            ["Name"] = service.Name,
            ["Status"] = service.Status,
            ["SchedulingStrategy"] = service.SchedulingStrategy,
            ["LaunchType"] = service.LaunchType,
            ["DesiredCount"] = service.DesiredCount,
            ["TaskDefinitionArn"] = service.TaskDefinitionArn,
            ["MinimumHealthyPercent"] = service.DeploymentConfiguration.MinimumHealthyPercent,
            ["MaximumPercent"] = service.DeploymentConfiguration.MaximumPercent,
            ["CircuitBreakerEnable"] = service.DeploymentConfiguration.CircuitBreakerEnable,
            ["CircuitBreakerRollback"] = service.DeploymentConfiguration.CircuitBreakerRollback,
            ["HealthCheckGracePeriodSeconds"] = service.HealthCheckGracePeriodSeconds,
            ["Tags"] = Tag.Serialize(service.Tags),
            ["CreatedAt"] = service.CreatedAt,
            ["CreatedBy"] = service.CreatedBy,
            ["PropagateTags"] = service.PropagateTags,
            ["PropagateTagsFrom"] = service.PropagateTagsFrom,
            ["EnableEcsManagedTags"] = service.EnableEcsManagedTags,
            ["LeaseOwner"] = service.LeaseOwner,
            ["LeaseExpiresAt"] = service.LeaseExpiresAt,
            // For the resync's scan, which reads these columns and not the document.
            ["Steady"] = service.IsSteady,
        };

        // Newest first, at most MaxEvents; should the document still not fit in one entity (events
        // with very long messages), the oldest events give way first.
        var events = service.Events.OrderByDescending(e => e.CreatedAt).Take(ServiceRecord.MaxEvents).ToList();
        var document = Document(service, events);
        while (!LargeJson.Fits(document) && events.Count > 0)
        {
            events.RemoveRange(events.Count / 2, events.Count - events.Count / 2);
            document = Document(service, events);
        }
        LargeJson.Write(entity, document, DocumentPrefix);
        return entity;
    }

    private static string Document(ServiceRecord service, IReadOnlyList<ServiceEvent> events) => new JsonObject
    {
        ["placementStrategy"] = JsonSerializer.SerializeToNode(service.PlacementStrategy, Json),
        ["placementConstraints"] = service.PlacementConstraints.DeepClone(),
        ["deployments"] = JsonSerializer.SerializeToNode(service.Deployments, Json),
        ["deploymentHistory"] = JsonSerializer.SerializeToNode(service.DeploymentHistory, Json),
        ["events"] = JsonSerializer.SerializeToNode(events, Json),
        ["passthrough"] = service.Passthrough.DeepClone(),
    }.ToJsonString(AwsJson.Options);

    /// <summary>A listing's row: the <see cref="KeyColumns"/> only.</summary>
    private static ServiceSummary SummaryFromEntity(TableEntity entity)
    {
        var service = FromEntity(entity);
        return new ServiceSummary(service.Cluster, service.Name, service.Status, service.SchedulingStrategy, service.LaunchType, service.DesiredCount, service.TaskDefinitionArn,
            entity.GetBoolean("Steady") ?? false);
    }

    internal static ServiceRecord FromEntity(TableEntity entity)
    {
        var separator = entity.PartitionKey.IndexOf('|');
        var document = LargeJson.Read(entity, DocumentPrefix) is { } json ? JsonNode.Parse(json)!.AsObject() : [];
        return new ServiceRecord
        {
            Cluster = entity.GetString("Cluster") ?? entity.PartitionKey[..separator],
            Name = entity.GetString("Name") ?? entity.PartitionKey[(separator + 1)..],
            Status = entity.GetString("Status") ?? ServiceRecord.Active,
            SchedulingStrategy = entity.GetString("SchedulingStrategy") ?? ServiceRecord.Replica,
            LaunchType = entity.GetString("LaunchType") ?? "EC2",
            DesiredCount = entity.GetInt32("DesiredCount") ?? 0,
            TaskDefinitionArn = entity.GetString("TaskDefinitionArn") ?? "",
            DeploymentConfiguration = new DeploymentConfiguration(
                entity.GetInt32("MinimumHealthyPercent") ?? 100,
                entity.GetInt32("MaximumPercent") ?? 200,
                entity.GetBoolean("CircuitBreakerEnable") ?? false,
                entity.GetBoolean("CircuitBreakerRollback") ?? false),
            HealthCheckGracePeriodSeconds = entity.GetInt32("HealthCheckGracePeriodSeconds"),
            Tags = Tag.Deserialize(entity.GetString("Tags")),
            CreatedAt = entity.GetDateTimeOffset("CreatedAt") ?? default,
            CreatedBy = entity.GetString("CreatedBy"),
            PropagateTags = entity.GetBoolean("PropagateTags") ?? false,
            PropagateTagsFrom = entity.GetString("PropagateTagsFrom") ?? "NONE",
            EnableEcsManagedTags = entity.GetBoolean("EnableEcsManagedTags") ?? false,
            LeaseOwner = entity.GetString("LeaseOwner"),
            LeaseExpiresAt = entity.GetDateTimeOffset("LeaseExpiresAt"),
            PlacementStrategy = Read<List<PlacementStrategy>>(document, "placementStrategy") ?? [],
            PlacementConstraints = document["placementConstraints"]?.DeepClone().AsArray() ?? [],
            Deployments = Read<List<Deployment>>(document, "deployments") ?? [],
            DeploymentHistory = Read<List<Deployment>>(document, "deploymentHistory") ?? [],
            Events = Read<List<ServiceEvent>>(document, "events") ?? [],
            Passthrough = document["passthrough"]?.DeepClone().AsObject() ?? [],
            ETag = entity.ETag,
        };
    }

    private static T? Read<T>(JsonObject document, string member) where T : class
        => document[member] is { } node ? node.Deserialize<T>(Json) : null;
}

/// <summary>A cluster's ACTIVE and DRAINING services, for DescribeClusters and DeleteCluster.</summary>
public sealed class ServiceUsage(ServiceStore store) : IClusterUsage
{
    public Task<ClusterUsage> CountAsync(string cluster, CancellationToken cancellationToken) => store.CountAsync(cluster, cancellationToken);
}
