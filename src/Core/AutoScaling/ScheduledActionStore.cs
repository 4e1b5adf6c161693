using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;

namespace Serverless.Core.AutoScaling;

/// <summary>A scheduled action on a scalable target, and when it next runs (null: never again).</summary>
public sealed record ScheduledActionRecord
{
    public required string Cluster { get; init; }
    public required string Service { get; init; }
    public required string Name { get; init; }
    public required string Arn { get; init; }
    public required string Schedule { get; init; }
    public string? Timezone { get; init; }
    public DateTimeOffset? StartTime { get; init; }
    public DateTimeOffset? EndTime { get; init; }
    public int? MinCapacity { get; init; }
    public int? MaxCapacity { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? NextRun { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public ETag ETag { get; init; }

    public string ResourceId => $"service/{Cluster}/{Service}";

    public Schedule Parsed() => AutoScaling.Schedule.Parse(Schedule, Timezone, StartTime, EndTime, CreatedAt);
}

/// <summary>
/// Scheduled actions (table <c>ScheduledActions</c>, one partition per service, row = escaped action name).
/// Each row carries its next run as the property <c>NextRun</c>, so the timer asks only for what is due
/// (<c>NextRun le now</c>) and a service without scheduled actions costs nothing.
/// </summary>
public sealed class ScheduledActionStore(StorageClients storage)
{
    private const string Table = "ScheduledActions";

    private long _changes;

    /// <summary>
    /// Counts the actions this process put or deleted, so a timer that remembers when the next run is due can
    /// tell that its memory is stale (another control plane's changes it learns at its next read).
    /// </summary>
    public long LocalChanges => Interlocked.Read(ref _changes);

    public async Task<IReadOnlyList<ScheduledActionRecord>> ListAsync(string? cluster, string? service, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        var query = cluster is null
            ? table.QueryAsync<TableEntity>(cancellationToken: cancellationToken)
            : table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {AutoScalingStore.Partition(cluster, service!)}"), cancellationToken: cancellationToken);
        return [.. await query.Select(Read).ToListAsync(cancellationToken)];
    }

    /// <summary>The actions whose next run is at or before <paramref name="now"/>.</summary>
    public async Task<IReadOnlyList<ScheduledActionRecord>> DueAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        return [.. await table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"NextRun le {now}"), cancellationToken: cancellationToken)
            .Select(Read).ToListAsync(cancellationToken)];
    }

    /// <summary>Inserts or replaces (ETag.All: PutScheduledAction replaces whatever is there, as AWS does).</summary>
    public async Task PutAsync(ScheduledActionRecord action, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        await table.UpsertEntityAsync(Entity(action), TableUpdateMode.Replace, cancellationToken);
        Interlocked.Increment(ref _changes);
    }

    /// <summary>Replaces the row conditional on the ETag it was read with: a timer claims a run this way.</summary>
    public async Task UpdateAsync(ScheduledActionRecord action, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        try
        {
            await table.UpdateEntityAsync(Entity(action), action.ETag, TableUpdateMode.Replace, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
            throw new ConcurrentUpdateException(action.Arn);
        }
    }

    public async Task<bool> DeleteAsync(string cluster, string service, string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Table, cancellationToken);
        // The SDK answers a missing entity with its 404 response rather than an exception.
        var response = await table.DeleteEntityAsync(AutoScalingStore.Partition(cluster, service), Row(name), ETag.All, cancellationToken);
        return response.Status != 404;
    }

    /// <summary>Action names may hold <c># ? \</c>, which a row key may not.</summary>
    private static string Row(string name) => Uri.EscapeDataString(name);

    private static TableEntity Entity(ScheduledActionRecord action)
    {
        var entity = new TableEntity(AutoScalingStore.Partition(action.Cluster, action.Service), Row(action.Name)) { ["Json"] = TaskMessages.Serialize(action) };
        if (action.NextRun is { } next) entity["NextRun"] = next;
        return entity;
    }

    private static ScheduledActionRecord Read(TableEntity entity)
        => JsonSerializer.Deserialize<ScheduledActionRecord>(entity.GetString("Json"), TaskMessages.Json)! with { ETag = entity.ETag };
}
