using Azure;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Capacity;

/// <summary>One task waiting in PROVISIONING for room in its capacity provider's pool.</summary>
public sealed record WaitingTask(string Cluster, string TaskId, string CapacityProvider, DateTimeOffset Since);

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

    /// <summary>Counts the waiting tasks this process added (see <see cref="CapacityLoop"/>'s idle reads).</summary>
    public long LocalAdds => Interlocked.Read(ref _localAdds);

    public async Task AddAsync(WaitingTask waiting, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        await table.UpsertEntityAsync(new TableEntity(waiting.Cluster, waiting.TaskId)
        {
            ["CapacityProvider"] = waiting.CapacityProvider,
            ["Since"] = waiting.Since,
        }, TableUpdateMode.Replace, cancellationToken);
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

    /// <summary>Every waiting task, oldest first per cluster (at most <paramref name="limit"/>).</summary>
    public async Task<IReadOnlyList<WaitingTask>> ListAsync(int limit, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var result = new List<WaitingTask>();
        await foreach (var e in table.QueryAsync<TableEntity>(cancellationToken: cancellationToken))
        {
            result.Add(new WaitingTask(e.PartitionKey, e.RowKey, e.GetString("CapacityProvider") ?? "", e.GetDateTimeOffset("Since") ?? default));
            if (result.Count >= limit) break;
        }
        return [.. result.OrderBy(w => w.Cluster, StringComparer.Ordinal).ThenBy(w => w.Since).ThenBy(w => w.TaskId, StringComparer.Ordinal)];
    }
}
