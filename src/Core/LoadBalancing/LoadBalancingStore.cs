using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.LoadBalancing;

/// <summary>One stored ELBv2 resource: its output-shape JSON, its tags, and the ETag it was read with.</summary>
public sealed record ElbRow(string RowKey, JsonObject Doc, JsonArray Tags, ETag ETag);

/// <summary>One registered target: where it is and what the data plane last found.</summary>
public sealed record TargetRow(
    string TargetGroupId, string Id, int Port, string? AvailabilityZone, DateTimeOffset RegisteredAt,
    DateTimeOffset? DrainingSince, string? Health, string? Reason, string? Description, string? Service = null, string? ServiceWake = null,
    string? Address = null)
{
    /// <summary>
    /// <see cref="Service"/>: the ECS service that registered the target (<c>cluster/name</c>, a <c>ServiceKey</c>), which a
    /// data plane asks to reconcile when the target's health changes, waking <see cref="ServiceWake"/> (the registering
    /// control plane's <c>QueueWake</c> endpoint, as a worker's reports do); both null for a target registered through the API.
    /// <see cref="Address"/>: where an <c>instance</c> target is reached, its container instance's host address
    /// (as ALB resolves an instance id to its private IP); null for an <c>ip</c> target (its id is the address) and for an
    /// instance target registered through the API, which the data plane reaches at its configured fallback.
    /// </summary>
    public static string Key(string id, int port) => $"{id}|{port}";
}

/// <summary>
/// ELBv2 state in table <c>LoadBalancing</c>. The configuration (load balancers, target groups, listeners,
/// rules and the reservations that keep listener ports and rule priorities unique) is one partition,
/// <c>config</c>: what a change touches commits in one entity-group transaction, and the data plane reads
/// the whole of it in one query when the <c>version</c> row says it changed. ELBv2's quotas (tens of load
/// balancers, a few thousand target groups and rules per region) keep it small. Targets live in one
/// partition per target group, the partition a health checker writes and a service's reconciler reads.
/// Data planes learn of a change by a wake (<see cref="QueueWake"/>, signal <see cref="WakeName"/>) sent to
/// every endpoint registered in partition <c>dataplane</c> once the change is committed, and by a slow
/// fallback read of the version row when a wake is lost.
/// </summary>
public sealed class LoadBalancingStore(StorageClients storage, QueueWake wake, TimeProvider time)
{
    public const string TableName = "LoadBalancing";
    public const string ConfigPartition = "config";
    public const string VersionRow = "version";
    public const string DataPlanePartition = "dataplane";

    /// <summary>The wake's payload: the name a data plane's configuration watcher waits on.</summary>
    public const string WakeName = "elb-config";

    /// <summary>
    /// How often a data plane renews its registration; one not renewed for three times this long is taken
    /// for gone (not woken, and removed by the next data plane that registers).
    /// </summary>
    public static readonly TimeSpan RegistrationRenewal = TimeSpan.FromHours(1);

    private Task<TableClient> TableAsync(CancellationToken cancellationToken) => storage.TableAsync(TableName, cancellationToken);

    public static string TargetPartition(string targetGroupId) => $"target|{targetGroupId}";

    public async Task<ElbRow?> GetAsync(string rowKey, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(ConfigPartition, rowKey, cancellationToken: cancellationToken);
        return response.HasValue ? ToRow(response.Value!) : null;
    }

    /// <summary>Every row whose key starts with <paramref name="prefix"/> (e.g. <c>lb|</c>), in key order.</summary>
    public async Task<List<ElbRow>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {ConfigPartition} and RowKey ge {prefix} and RowKey lt {prefix[..^1] + (char)(prefix[^1] + 1)}");
        var rows = new List<ElbRow>();
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken)) rows.Add(ToRow(entity));
        return rows;
    }

    /// <summary>The whole configuration partition: what a data plane serves.</summary>
    public async Task<List<ElbRow>> ListConfigAsync(CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var rows = new List<ElbRow>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {ConfigPartition}");
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            if (entity.RowKey != VersionRow) rows.Add(ToRow(entity));
        }
        return rows;
    }

    /// <summary>The configuration's version: changes whenever anything a data plane serves changes.</summary>
    public async Task<ETag?> VersionAsync(CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(ConfigPartition, VersionRow, select: ["PartitionKey"], cancellationToken: cancellationToken);
        return response.HasValue ? response.Value!.ETag : null;
    }

    public static TableEntity ToEntity(string rowKey, JsonObject doc, JsonArray tags)
    {
        var entity = new TableEntity(ConfigPartition, rowKey);
        LargeJson.Write(entity, doc.ToJsonString());
        entity["Tags"] = tags.ToJsonString();
        return entity;
    }

    /// <summary>A reservation row: a listener port or a rule priority held by <paramref name="owner"/>.</summary>
    public static TableEntity Reservation(string rowKey, string owner)
        => new(ConfigPartition, rowKey) { ["Owner"] = owner };

    /// <summary>
    /// Commits <paramref name="actions"/> (all in the config partition) together with a new version, so the
    /// data plane sees the change as a whole or not at all. A failed conditional action surfaces as
    /// <see cref="TableTransactionFailedException"/> with its index, for the caller to name in AWS's words.
    /// </summary>
    public async Task CommitAsync(IReadOnlyList<TableTransactionAction> actions, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var batch = new List<TableTransactionAction>(actions)
        {
            new(TableTransactionActionType.UpsertReplace, new TableEntity(ConfigPartition, VersionRow) { ["Changed"] = time.GetUtcNow() }),
        };
        await table.SubmitTransactionAsync(batch, cancellationToken);
        await WakeDataPlanesAsync(cancellationToken);
    }

    /// <summary>Marks the configuration changed when only targets changed (they are outside its partition).</summary>
    // Last writer wins on purpose: the row's content is irrelevant, only that its ETag moves.
    public async Task TouchAsync(CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        await table.UpsertEntityAsync(new TableEntity(ConfigPartition, VersionRow) { ["Changed"] = time.GetUtcNow() }, TableUpdateMode.Replace, cancellationToken);
        await WakeDataPlanesAsync(cancellationToken);
    }

    /// <summary>
    /// Records that a data plane takes wakes at <paramref name="endpoint"/> (renewed every
    /// <see cref="RegistrationRenewal"/>) and removes the registrations of data planes gone silent.
    /// </summary>
    public async Task RegisterDataPlaneAsync(string endpoint, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var now = time.GetUtcNow();
        await table.UpsertEntityAsync(new TableEntity(DataPlanePartition, endpoint) { ["Seen"] = now }, TableUpdateMode.Replace, cancellationToken);
        await foreach (var row in DataPlanesAsync(table, cancellationToken))
        {
            if (IsLive(row, now)) continue;
            try
            {
                await table.DeleteEntityAsync(DataPlanePartition, row.RowKey, row.ETag, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status is 404 or 412)
            {
                // Gone already, or renewed meanwhile.
            }
        }
    }

    /// <summary>Removes this data plane's registration (a clean shutdown), so nobody wakes an endpoint that is closed.</summary>
    public async Task UnregisterDataPlaneAsync(string endpoint, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        await table.DeleteEntityAsync(DataPlanePartition, endpoint, ETag.All, cancellationToken);
    }

    /// <summary>
    /// Tells every live data plane the configuration or a target changed. Best effort after the commit: a wake
    /// is one UDP datagram that never waits on its receiver, and a lookup that fails leaves the change to the
    /// data planes' fallback read rather than failing a call whose change is already stored.
    /// </summary>
    private async Task WakeDataPlanesAsync(CancellationToken cancellationToken)
    {
        try
        {
            var table = await TableAsync(cancellationToken);
            var now = time.GetUtcNow();
            await foreach (var row in DataPlanesAsync(table, cancellationToken))
            {
                if (IsLive(row, now)) wake.Send(row.RowKey, WakeName);
            }
        }
        catch (RequestFailedException)
        {
            // The data planes find the change at their next fallback read.
        }
    }

    private static IAsyncEnumerable<TableEntity> DataPlanesAsync(TableClient table, CancellationToken cancellationToken)
        => table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {DataPlanePartition}"), select: ["RowKey", "Seen"], cancellationToken: cancellationToken);

    private static bool IsLive(TableEntity row, DateTimeOffset now)
        => row.GetDateTimeOffset("Seen") is { } seen && now - seen < 3 * RegistrationRenewal;

    public async Task<List<TargetRow>> ListTargetsAsync(string targetGroupId, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var rows = new List<TargetRow>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {TargetPartition(targetGroupId)}");
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken)) rows.Add(ToTarget(targetGroupId, entity));
        return rows;
    }

    /// <summary>Writes targets (registration or draining) of one group in batches of Azure's limit.</summary>
    public async Task SaveTargetsAsync(string targetGroupId, IEnumerable<TargetRow> targets, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        foreach (var chunk in targets.Chunk(TableQueries.MaxBatchOperations))
        {
            // Registration is idempotent and last writer wins, as in ELBv2: registering twice is one target.
            await table.SubmitTransactionAsync(chunk.Select(t => new TableTransactionAction(TableTransactionActionType.UpsertReplace, ToEntity(t))), cancellationToken);
        }
        await TouchAsync(cancellationToken);
    }

    /// <summary>Removes targets whose draining is over; a target registered again meanwhile is not removed (ETag).</summary>
    public async Task DeleteTargetsAsync(string targetGroupId, IEnumerable<TargetRow> targets, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        foreach (var target in targets)
        {
            try
            {
                await table.DeleteEntityAsync(TargetPartition(targetGroupId), TargetRow.Key(target.Id, target.Port), ETag.All, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                // Already gone.
            }
        }
    }

    public async Task DeleteTargetGroupTargetsAsync(string targetGroupId, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"PartitionKey eq {TargetPartition(targetGroupId)}"), cancellationToken);
    }

    /// <summary>
    /// The data plane's health verdict for one target. Merged without an ETag: health is the checker's alone
    /// to write, and a target deregistered meanwhile stays deregistered (the merge finds no row).
    /// </summary>
    public async Task WriteHealthAsync(string targetGroupId, string id, int port, string state, string? reason, string? description, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var entity = new TableEntity(TargetPartition(targetGroupId), TargetRow.Key(id, port))
        {
            ["Health"] = state, ["Reason"] = reason ?? "", ["Description"] = description ?? "",
        };
        try
        {
            await table.UpdateEntityAsync(entity, ETag.All, TableUpdateMode.Merge, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // Deregistered and removed meanwhile: nothing to report on.
        }
    }

    private static TableEntity ToEntity(TargetRow t) => new(TargetPartition(t.TargetGroupId), TargetRow.Key(t.Id, t.Port))
    {
        ["Id"] = t.Id, ["Port"] = t.Port, ["AvailabilityZone"] = t.AvailabilityZone, ["RegisteredAt"] = t.RegisteredAt,
        ["DrainingSince"] = t.DrainingSince, ["Health"] = t.Health, ["Reason"] = t.Reason, ["Description"] = t.Description,
        ["Service"] = t.Service, ["ServiceWake"] = t.ServiceWake, ["Address"] = t.Address,
    };

    private static TargetRow ToTarget(string targetGroupId, TableEntity e) => new(
        targetGroupId, e.GetString("Id"), e.GetInt32("Port") ?? 0, e.GetString("AvailabilityZone"),
        e.GetDateTimeOffset("RegisteredAt") ?? DateTimeOffset.MinValue, e.GetDateTimeOffset("DrainingSince"),
        NullIfEmpty(e.GetString("Health")), NullIfEmpty(e.GetString("Reason")), NullIfEmpty(e.GetString("Description")),
        NullIfEmpty(e.GetString("Service")), NullIfEmpty(e.GetString("ServiceWake")), NullIfEmpty(e.GetString("Address")));

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static ElbRow ToRow(TableEntity entity) => new(
        entity.RowKey,
        JsonNode.Parse(LargeJson.Read(entity) ?? "{}")!.AsObject(),
        entity.GetString("Tags") is { } tags ? JsonNode.Parse(tags)!.AsArray() : [],
        entity.ETag);
}
