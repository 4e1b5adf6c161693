using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.Clusters;

/// <summary>The <c>Clusters</c> table: one row per cluster name, ETag-guarded writes.</summary>
public sealed class ClusterStore(StorageClients storage, Arns arns, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    private const string TableName = "Clusters";

    /// <summary>How long <see cref="GetActiveSharedAsync"/> answers from one read of a cluster's row.</summary>
    public static readonly TimeSpan SharedViewMaxAge = TimeSpan.FromSeconds(3);

    // A shared, short-lived view of each cluster's row (see GetActiveSharedAsync).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SharedView> _sharedViews = new(StringComparer.Ordinal);

    private sealed record SharedView(DateTimeOffset ReadAt, Task<ClusterRecord?> Read);

    public async Task<ClusterRecord?> FindAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(name, "", cancellationToken: cancellationToken);
        return response.HasValue ? ClusterRecord.FromEntity(response.Value!) : null;
    }

    /// <summary>The cluster, which must exist and be ACTIVE, else <see cref="ClusterNotFoundException"/>.</summary>
    public async Task<ClusterRecord> GetActiveAsync(string name, CancellationToken cancellationToken)
    {
        return Active(await FindAsync(name, cancellationToken));
    }

    /// <summary>
    /// <see cref="GetActiveAsync"/> for the hot paths: one read of the row serves the calls of the next
    /// <see cref="SharedViewMaxAge"/> (as placement shares one read of the instances), so a launch, and the
    /// existence check of a read on the cluster (<see cref="ReadInActiveAsync"/>), costs no cluster read per call.
    /// A write through this store forgets the view at once; a change made through another control plane (a
    /// deleted cluster, new capacity providers) is seen within that age, and a launch on a cluster deleted
    /// meanwhile still finds no registered instance to reserve on.
    /// </summary>
    public async Task<ClusterRecord> GetActiveSharedAsync(string name, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        if (_sharedViews.TryGetValue(name, out var seen) && now - seen.ReadAt < SharedViewMaxAge)
        {
            try
            {
                return Active(await seen.Read.WaitAsync(cancellationToken));
            }
            catch (Exception) when (seen.Read.IsFaulted || seen.Read.IsCanceled)
            {
                // The shared read failed: read again below, for this caller.
                _sharedViews.TryRemove(KeyValuePair.Create(name, seen));
            }
        }
        var view = new SharedView(now, FindAsync(name, CancellationToken.None));
        _sharedViews[name] = view;
        try
        {
            return Active(await view.Read.WaitAsync(cancellationToken));
        }
        catch (Exception) when (view.Read.IsFaulted || view.Read.IsCanceled)
        {
            _sharedViews.TryRemove(KeyValuePair.Create(name, view));
            throw;
        }
    }

    private static ClusterRecord Active(ClusterRecord? cluster)
        => cluster is { Status: ClusterRecord.Active } ? cluster : throw new ClusterNotFoundException();

    /// <summary>Forgets the shared view of a cluster's row (<see cref="GetActiveSharedAsync"/>): the row is being written.</summary>
    private void ForgetSharedView(string name) => _sharedViews.TryRemove(name, out _);

    /// <summary>
    /// <paramref name="read"/>'s result, awaited together with the check that cluster <paramref name="name"/>
    /// is ACTIVE, which the shared view answers (<see cref="GetActiveSharedAsync"/>): a read of a busy cluster costs
    /// its own round trip and no cluster read. A missing cluster still wins (<see cref="ClusterNotFoundException"/>);
    /// the read is then thrown away.
    /// </summary>
    public async Task<T> ReadInActiveAsync<T>(string name, Task<T> read, CancellationToken cancellationToken)
    {
        await Task.WhenAll(GetActiveSharedAsync(name, cancellationToken), read);
        return await read;
    }

    /// <summary>Inserts; returns false when a row with that name already exists.</summary>
    public async Task<bool> TryAddAsync(ClusterRecord cluster, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            await table.AddEntityAsync(cluster.ToEntity(), cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return false;
        }
        finally
        {
            ForgetSharedView(cluster.Name);
        }
    }

    /// <summary>Replaces the row if it is unchanged since <paramref name="cluster"/> was read.</summary>
    public async Task<ClusterRecord> SaveAsync(ClusterRecord cluster, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            var response = await table.UpdateEntityAsync(cluster.ToEntity(), cluster.ETag, TableUpdateMode.Replace, cancellationToken);
            return cluster with { ETag = response.Headers.ETag ?? default };
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            throw new ConcurrentUpdateException(arns.Cluster(cluster.Name));
        }
        finally
        {
            ForgetSharedView(cluster.Name);
        }
    }

    /// <summary>
    /// Read-modify-write with optimistic concurrency: <paramref name="change"/> runs on a fresh
    /// read each attempt and may throw to refuse the change.
    /// </summary>
    public Task<ClusterRecord> UpdateAsync(string name, Func<ClusterRecord, ClusterRecord> change, CancellationToken cancellationToken)
        => OptimisticUpdate.RetryAsync(async _ => await SaveAsync(change(await GetActiveAsync(name, cancellationToken)), cancellationToken),
            cancellationToken, maxAttempts: 5);

    /// <summary>Every ACTIVE cluster, read a page of 100 at a time: what a sweep over all clusters walks.</summary>
    public async IAsyncEnumerable<ClusterRecord> EnumerateActiveAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? after = null;
        while (true)
        {
            var (page, more) = await ListActiveAsync(after, 100, cancellationToken);
            foreach (var cluster in page) yield return cluster;
            if (!more || page.Count == 0) yield break;
            after = page[^1].Name;
        }
    }

    /// <summary>ACTIVE clusters in name order after <paramref name="afterName"/>.</summary>
    public async Task<(List<ClusterRecord> Clusters, bool More)> ListActiveAsync(string? afterName, int take, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = afterName is null
            ? TableClient.CreateQueryFilter($"Status eq {ClusterRecord.Active}")
            : TableClient.CreateQueryFilter($"Status eq {ClusterRecord.Active} and PartitionKey gt {afterName}");
        var (entities, more) = await table.TakeAsync<TableEntity>(filter, take, null, cancellationToken);
        return (entities.Select(ClusterRecord.FromEntity).ToList(), more);
    }
}
