using Azure;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Secrets;

/// <summary>
/// Two small tables between the control plane and workers. <c>WorkerKeys</c>: each container
/// instance's public key (partition: cluster; row: instance id), published by its worker.
/// Each key row names the worker process (its session, the instance row's <c>Owner</c>) the key
/// belongs to, so the control plane can keep a key for as long as that process holds the instance.
/// <c>TaskSecrets</c>: a task's resolved values sealed to its instance's key (<see cref="SealedBox"/>),
/// when they do not fit in its Start message (partition: task id, one row), written before the
/// Start is sent and read once by the worker. No plain value is ever in either.
/// </summary>
public sealed class TaskSecretsStore(StorageClients storage)
{
    private const string KeysTable = "WorkerKeys";
    private const string SealedTable = "TaskSecrets";
    private const string Row = "sealed";
    private const int ChunkBytes = 64 * 1024;
    private const int MaxChunks = 14; // 896 KiB of the 1 MiB an entity holds

    /// <summary>Publishes (or replaces) an instance's public key: a worker owns its own row.</summary>
    public async Task PublishKeyAsync(string cluster, string instanceId, string session, byte[] publicKey, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(KeysTable, cancellationToken);
        // Last writer wins on purpose: only the instance's own worker writes its row.
        await table.UpsertEntityAsync(new TableEntity(cluster, instanceId) { ["PublicKey"] = publicKey, ["Session"] = session },
            TableUpdateMode.Replace, cancellationToken);
    }

    /// <summary>The instance's public key and the worker session that published it (null for a row written before sessions were).</summary>
    public async Task<(byte[] PublicKey, string? Session)?> FindKeyAsync(string cluster, string instanceId, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(KeysTable, cancellationToken);
        var found = await table.GetEntityIfExistsAsync<TableEntity>(cluster, instanceId, cancellationToken: cancellationToken);
        return found.HasValue && found.Value!.GetBinary("PublicKey") is { } key ? (key, found.Value.GetString("Session")) : null;
    }

    /// <summary>Records a task's sealed values, or why there are none (<paramref name="failure"/>, which names references, never values).</summary>
    /// <remarks>Only for values too large for the Start message (<see cref="TaskSecretsSealer.AttachAsync"/>).</remarks>
    /// <returns>False when the sealed values do not fit in one entity.</returns>
    public async Task<bool> PutAsync(string taskId, byte[]? sealedValues, string? failure, CancellationToken cancellationToken)
    {
        var entity = new TableEntity(taskId, Row) { ["Failure"] = failure };
        if (sealedValues is not null)
        {
            var chunks = sealedValues.Chunk(ChunkBytes).ToList();
            if (chunks.Count > MaxChunks) return false;
            for (var i = 0; i < chunks.Count; i++) entity["Sealed" + i] = chunks[i];
        }
        var table = await storage.TableAsync(SealedTable, cancellationToken);
        // A Start sent again (a reconcile retrying) seals again: the newest sealing replaces the last.
        await table.UpsertEntityAsync(entity, TableUpdateMode.Replace, cancellationToken);
        return true;
    }

    /// <summary>The sealed values or the failure, or null when nothing was recorded for the task.</summary>
    public async Task<(byte[]? Sealed, string? Failure)?> FindAsync(string taskId, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(SealedTable, cancellationToken);
        var found = await table.GetEntityIfExistsAsync<TableEntity>(taskId, Row, cancellationToken: cancellationToken);
        if (!found.HasValue) return null;
        var entity = found.Value!;
        var bytes = new List<byte>();
        for (var i = 0; i < MaxChunks && entity.GetBinary("Sealed" + i) is { } chunk; i++) bytes.AddRange(chunk);
        return (bytes.Count > 0 ? [.. bytes] : null, entity.GetString("Failure"));
    }

    /// <summary>Forgets a task's sealed values (its containers have them now, or it stopped).</summary>
    public async Task DeleteAsync(string taskId, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(SealedTable, cancellationToken);
        try
        {
            await table.DeleteEntityAsync(taskId, Row, ETag.All, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
        }
    }
}
