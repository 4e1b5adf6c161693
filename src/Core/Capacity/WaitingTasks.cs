using Azure;
using Azure.Data.Tables;
using System.Text.Json;
using Serverless.Core.Scheduling;
using Serverless.Core.Storage;

namespace Serverless.Core.Capacity;

/// <summary>One task waiting in PROVISIONING for room in its capacity provider's pool.</summary>
public sealed record WaitingTask(string Cluster, string TaskId, string CapacityProvider, DateTimeOffset Since)
{
    /// <summary>
    /// The placement its launch asked for (RunTask's <c>placementStrategy</c> and <c>placementConstraints</c>),
    /// which a standalone task is placed by once room appears; null (a row from before it was kept): RunTask's default.
    /// </summary>
    public WaitingPlacement? Placement { get; init; }

    /// <summary>
    /// Where the control plane that put the task waiting takes wakes (<see cref="QueueWake"/>): a worker
    /// that registers in the cluster wakes its capacity loop (<see cref="CapacityLoop.WakeName"/>).
    /// </summary>
    public string? Wake { get; init; }
}

/// <summary>
/// A launch's own placement, as kept on its waiting tasks' rows: its strategies, whether it asked for
/// <c>distinctInstance</c>, and its <c>memberOf</c> expressions (each at most
/// <see cref="ClusterQuery.MaxLength"/> characters, so each fits a table property; compiled again when read).
/// </summary>
public sealed record WaitingPlacement(IReadOnlyList<PlacementStrategy> Strategies, bool DistinctInstance, IReadOnlyList<string> MemberOf)
{
    public PlacementRules Rules() => new(Strategies, DistinctInstance, [.. MemberOf.Select(PlacementStrategies.MemberOfExpression)]);
}

/// <summary>
/// The <c>WaitingTasks</c> table: an index of the tasks that wait for capacity, one row per task
/// (partition: the cluster, row: the task id). The row is written before the task row and removed
/// after the task is placed or stopped, so a crash between the two leaves at worst a row whose task
/// is missing or no longer waiting, which the capacity loop removes; never a waiting task nobody looks at.
/// It holds only waiting tasks, so reading it whole each tick stays small.
/// </summary>
public sealed class WaitingTaskStore(StorageClients storage)
{
    private const string TableName = "WaitingTasks";
    private long _localAdds;

    private const string StrategyProperty = "PlacementStrategy";
    private const string DistinctInstanceProperty = "DistinctInstance";
    private const string MemberOfProperty = "MemberOf";

    /// <summary>Counts the waiting tasks this process added (see <see cref="CapacityLoop"/>'s idle reads).</summary>
    public long LocalAdds => Interlocked.Read(ref _localAdds);

    public async Task AddAsync(WaitingTask waiting, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var entity = new TableEntity(waiting.Cluster, waiting.TaskId)
        {
            ["CapacityProvider"] = waiting.CapacityProvider,
            ["Since"] = waiting.Since,
            ["Wake"] = waiting.Wake,
        };
        if (waiting.Placement is { } placement)
        {
            // At most 5 strategies of a short field, and 10 expressions of at most 2,000 characters, one
            // property each: every property stays far below a table property's 64 KiB.
            entity[StrategyProperty] = JsonSerializer.Serialize(placement.Strategies.Select(s => new[] { s.Type, s.Field }));
            entity[DistinctInstanceProperty] = placement.DistinctInstance;
            for (var i = 0; i < placement.MemberOf.Count; i++) entity[$"{MemberOfProperty}{i}"] = placement.MemberOf[i];
        }
        await table.UpsertEntityAsync(entity, TableUpdateMode.Replace, cancellationToken);
        Interlocked.Increment(ref _localAdds);
    }

    public async Task RemoveAsync(string cluster, string taskId, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            await table.DeleteEntityAsync(cluster, taskId, ETag.All, cancellationToken);   // gone is gone, whoever removed it
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }
    }

    /// <summary>
    /// Where the control planes that put tasks of <paramref name="capacityProvider"/> waiting in
    /// <paramref name="cluster"/> take wakes: one read of the cluster's partition, only the wake column.
    /// </summary>
    public async Task<IReadOnlyList<string>> WakesAsync(string cluster, string capacityProvider, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableQueries.And([
            TableClient.CreateQueryFilter($"PartitionKey eq {cluster}"),
            TableClient.CreateQueryFilter($"CapacityProvider eq {capacityProvider}")]);
        var wakes = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var e in table.QueryAsync<TableEntity>(filter, select: ["Wake"], cancellationToken: cancellationToken))
        {
            if (e.GetString("Wake") is { Length: > 0 } wake) wakes.Add(wake);
        }
        return [.. wakes];
    }

    private static WaitingPlacement? PlacementOf(TableEntity e)
    {
        if (e.GetString(StrategyProperty) is not { } strategies) return null;
        var memberOf = new List<string>();
        for (var i = 0; e.GetString($"{MemberOfProperty}{i}") is { } expression; i++) memberOf.Add(expression);
        return new WaitingPlacement(
            [.. JsonSerializer.Deserialize<string?[][]>(strategies)!.Select(s => new PlacementStrategy(s[0]!, s[1]))],
            e.GetBoolean(DistinctInstanceProperty) ?? false,
            memberOf);
    }

    /// <summary>Every waiting task, oldest first per cluster (at most <paramref name="limit"/>).</summary>
    public async Task<IReadOnlyList<WaitingTask>> ListAsync(int limit, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var result = new List<WaitingTask>();
        await foreach (var e in table.QueryAsync<TableEntity>(cancellationToken: cancellationToken))
        {
            result.Add(new WaitingTask(e.PartitionKey, e.RowKey, e.GetString("CapacityProvider") ?? "", e.GetDateTimeOffset("Since") ?? default)
            {
                Placement = PlacementOf(e),
                Wake = e.GetString("Wake"),
            });
            if (result.Count >= limit) break;
        }
        return [.. result.OrderBy(w => w.Cluster, StringComparer.Ordinal).ThenBy(w => w.Since).ThenBy(w => w.TaskId, StringComparer.Ordinal)];
    }
}
