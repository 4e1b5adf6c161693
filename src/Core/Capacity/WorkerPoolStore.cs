using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;

namespace Serverless.Core.Capacity;

/// <summary>
/// A worker pool: what an Auto Scaling group is to ECS. Its name is the Auto Scaling group's name
/// (the last segment of a capacity provider's <c>autoScalingGroupArn</c>, after
/// <c>autoScalingGroupName/</c>). The pool agent that runs it sets the sizes it allows and the shape
/// of its workers; managed scaling sets <see cref="DesiredCapacity"/> and names the instances to
/// terminate on scale-in; the agent starts and stops workers to match and reports what it runs.
/// </summary>
public sealed record WorkerPoolRecord
{
    public required string Name { get; init; }
    public int MinSize { get; init; }
    public int MaxSize { get; init; }
    public int DesiredCapacity { get; init; }
    /// <summary>The container instance ids the agent is to stop (scale-in picked them, drained and idle).</summary>
    public IReadOnlyList<string> Terminate { get; init; } = [];
    /// <summary>The container instance ids of the workers the agent runs now (its last report).</summary>
    public IReadOnlyList<string> Running { get; init; } = [];
    /// <summary>One worker's cpu units and MiB, as it registers them (0: not known yet).</summary>
    public int InstanceCpu { get; init; }
    public int InstanceMemory { get; init; }
    /// <summary>When managed scaling last grew the pool (instance warm-up counts from here).</summary>
    public DateTimeOffset? LastScaleOutAt { get; init; }
    /// <summary>Since when managed scaling has wanted fewer instances than the pool has (scale-in waits for a steady low).</summary>
    public DateTimeOffset? LowSince { get; init; }
    public ETag ETag { get; init; }

    /// <summary>The pool named by an Auto Scaling group ARN (<c>...:autoScalingGroupName/NAME</c>), or the text itself when it is no ARN.</summary>
    public static string NameOf(string autoScalingGroupArn)
    {
        const string marker = "autoScalingGroupName/";
        var at = autoScalingGroupArn.LastIndexOf(marker, StringComparison.Ordinal);
        return at >= 0 ? autoScalingGroupArn[(at + marker.Length)..] : autoScalingGroupArn;
    }

    internal TableEntity ToEntity() => new(WorkerPoolStore.Partition, Name)
    {
        ["MinSize"] = MinSize,
        ["MaxSize"] = MaxSize,
        ["DesiredCapacity"] = DesiredCapacity,
        ["Terminate"] = JsonSerializer.Serialize(Terminate),
        ["Running"] = JsonSerializer.Serialize(Running),
        ["InstanceCpu"] = InstanceCpu,
        ["InstanceMemory"] = InstanceMemory,
        ["LastScaleOutAt"] = LastScaleOutAt,
        ["LowSince"] = LowSince,
    };

    internal static WorkerPoolRecord FromEntity(TableEntity e) => new()
    {
        Name = e.RowKey,
        MinSize = e.GetInt32("MinSize") ?? 0,
        MaxSize = e.GetInt32("MaxSize") ?? 0,
        DesiredCapacity = e.GetInt32("DesiredCapacity") ?? 0,
        Terminate = JsonSerializer.Deserialize<List<string>>(e.GetString("Terminate") ?? "[]")!,
        Running = JsonSerializer.Deserialize<List<string>>(e.GetString("Running") ?? "[]")!,
        InstanceCpu = e.GetInt32("InstanceCpu") ?? 0,
        InstanceMemory = e.GetInt32("InstanceMemory") ?? 0,
        LastScaleOutAt = e.GetDateTimeOffset("LastScaleOutAt"),
        LowSince = e.GetDateTimeOffset("LowSince"),
        ETag = e.ETag,
    };
}

/// <summary>The <c>WorkerPools</c> table: pools are few, one partition; every write is conditional on the ETag.</summary>
public sealed class WorkerPoolStore(StorageClients storage, Arns arns)
{
    private const string TableName = "WorkerPools";
    internal const string Partition = "pool";

    public async Task<WorkerPoolRecord?> FindAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(Partition, name, cancellationToken: cancellationToken);
        return response.HasValue ? WorkerPoolRecord.FromEntity(response.Value!) : null;
    }

    /// <summary>
    /// Read-change-write on the ETag, retried on a lost race; a missing pool is first made from
    /// <paramref name="create"/> when one is given (else null is returned). <paramref name="change"/>
    /// returns null to write nothing.
    /// </summary>
    public async Task<WorkerPoolRecord?> UpdateAsync(
        string name, Func<WorkerPoolRecord, WorkerPoolRecord?> change, CancellationToken cancellationToken, Func<WorkerPoolRecord>? create = null)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await OptimisticUpdate.UpdateAsync(async () =>
        {
            var found = await FindAsync(name, cancellationToken);
            if (found is not null || create is null) return found;
            try
            {
                var response = await table.AddEntityAsync(create().ToEntity(), cancellationToken);
                return create() with { ETag = response.Headers.ETag ?? default };
            }
            catch (RequestFailedException e) when (e.Status == 409)
            {
                return await FindAsync(name, cancellationToken);   // made meanwhile by another writer
            }
        }, change, async (current, changed) =>
        {
            try
            {
                var response = await table.UpdateEntityAsync(changed.ToEntity(), current.ETag, TableUpdateMode.Replace, cancellationToken);
                return changed with { ETag = response.Headers.ETag ?? default };
            }
            catch (RequestFailedException e) when (e.Status is 412 or 404)
            {
                throw new ConcurrentUpdateException(arns.CapacityProvider(name));
            }
        }, cancellationToken);
    }
}
