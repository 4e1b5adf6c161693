using System.Text.RegularExpressions;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.ContainerInstances;

/// <summary>
/// The <c>ContainerInstances</c> table, and the only code that touches it.
/// <para>
/// Partition key is the cluster name, row key the instance id (32 lowercase hex digits). A
/// cluster's instances are one partition because placement reads them together; every write
/// touches one instance's own row, so the write rate a partition sees is per host, not per
/// cluster. A task's reservation lives on its instance's row (<see cref="ContainerInstanceRecord.Reservations"/>),
/// so "does it fit, then reserve" is one conditional write on that row: two control planes racing
/// for the last room on a host cannot both win.
/// </para>
/// <para>
/// Rows are never deleted: a deregistered instance stays as INACTIVE, so it can still be described,
/// and an id once seen always names the same instance.
/// </para>
/// </summary>
public sealed partial class ContainerInstanceStore(StorageClients storage, Arns arns, TimeProvider time)
{
    public const string TableName = "ContainerInstances";

    /// <summary>
    /// The cluster's DRAINING instances, one empty row each (partition: the cluster, row: the instance id), so a
    /// reconcile learns them from a partition as small as the drain rather than by filtering every instance's row.
    /// A change into DRAINING lists the instance before its row says so and a change out of it unlists it after:
    /// the list may hold more than the draining instances (a write that failed between the two), never fewer, and
    /// <see cref="ListDrainingIdsAsync"/> checks what it lists against the rows.
    /// </summary>
    public const string DrainsTableName = "ContainerInstanceDrains";

    // Clusters whose drains this process has listed from the rows once (instances drained before the list existed).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task> _drainsBackfilled = new(StringComparer.Ordinal);

    // The ETag each heartbeat of this process left on its instance's row, by (cluster, id, owner).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Cluster, string Id, string Owner), ETag> _ownHeartbeats = new();

    /// <summary>Attempts at a read-modify-write before giving up; each lost race means another writer won.</summary>
    private const int MaxAttempts = 5;

    /// <summary>Release must not give up easily: a reservation left behind is capacity lost until someone notices.</summary>
    private const int MaxReleaseAttempts = 20;

    /// <summary>How long a deregistered instance still shows in <see cref="ListAsync"/> after its worker last spoke.</summary>
    private static readonly TimeSpan InactiveListedFor = TimeSpan.FromHours(1);

    /// <summary>
    /// How long placement uses one read of a cluster's instances (<see cref="ListForPlacementAsync"/>)
    /// before reading the partition again.
    /// </summary>
    public static readonly TimeSpan PlacementSnapshotMaxAge = TimeSpan.FromSeconds(3);

    // Placement's shared, short-lived view of each cluster's instances (see ListForPlacementAsync).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, PlacementSnapshot> _snapshots = new(StringComparer.Ordinal);


    /// <summary>A fresh instance id: 32 lowercase hex digits, as ECS's container instance ids are.</summary>
    public static string NewId() => Guid.NewGuid().ToString("N");

    /// <summary>Whether <paramref name="id"/> has the shape of an instance id (anything else names no row).</summary>
    public static bool IsId(string id) => IdPattern().IsMatch(id);

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex IdPattern();

    /// <summary>
    /// Registers <paramref name="wanted"/> (its <see cref="ContainerInstanceRecord.Id"/> chosen by the
    /// caller). A new id inserts the row ACTIVE, registered now. An existing row is a re-registration
    /// of the same host, written as <see cref="ContainerInstanceRecord.RegisteredAgain"/> decides.
    /// Refusing to revive an INACTIVE instance is the caller's decision (ECS refuses; see ContainerInstanceActions).
    /// </summary>
    public async Task<ContainerInstanceRecord> RegisterAsync(ContainerInstanceRecord wanted, CancellationToken cancellationToken)
    {
        if (!IsId(wanted.Id)) throw new ArgumentException($"'{wanted.Id}' is not a container instance id.", nameof(wanted));
        var table = await storage.TableAsync(TableName, cancellationToken);
        var registered = await OptimisticUpdate.RetryAsync(async _ =>
        {
            var now = Now();
            var existing = await FindAsync(wanted.Cluster, wanted.Id, cancellationToken);
            try
            {
                if (existing is null)
                {
                    var added = wanted with { Status = ContainerInstanceRecord.Active, RegisteredAt = now, LastHeartbeat = now, Version = 1, Beat = NewBeat() };
                    var response = await table.AddEntityAsync(added.ToEntity(), cancellationToken);
                    return added with { ETag = response.Headers.ETag ?? default };
                }

                var registered = existing.RegisteredAgain(wanted, now, NewBeat());
                return await ReplaceOrThrowAsync(table, registered, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status == 409)
            {
                // Another registration of the same id inserted first: read it and re-register over it.
                throw new ConcurrentUpdateException(Arn(wanted));
            }
        }, cancellationToken, MaxAttempts);
        NoteInView(registered.Cluster, registered.Id, registered);
        return registered;
    }

    /// <summary>The instance in any status (INACTIVE included), or null when there is none with that id.</summary>
    public async Task<ContainerInstanceRecord?> FindAsync(string cluster, string id, CancellationToken cancellationToken)
    {
        if (!IsId(id)) return null;
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(cluster, id, cancellationToken: cancellationToken);
        var found = response.HasValue ? ContainerInstanceRecord.FromEntity(response.Value!) : null;
        NoteInView(cluster, id, found);
        return found;
    }

    /// <summary>
    /// The cluster's instances, in id order: every ACTIVE and DRAINING one, and INACTIVE ones whose
    /// worker spoke within the last hour (so whoever stops the tasks a forced deregistration left
    /// behind still sees them); older INACTIVE rows are left out, as nothing is placed on them and
    /// ECS lists none. One partition read; callers filter further.
    /// </summary>
    public async Task<IReadOnlyList<ContainerInstanceRecord>> ListAsync(string cluster, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var since = Now() - InactiveListedFor;
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {cluster} and (Status ne {ContainerInstanceRecord.Inactive} or LastHeartbeat ge {since})");
        var instances = new List<ContainerInstanceRecord>();
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, cancellationToken: cancellationToken))
            instances.Add(ContainerInstanceRecord.FromEntity(entity));
        return instances;
    }

    /// <summary>
    /// The cluster's instances as <see cref="ListAsync"/> reads them, from a view shared by every
    /// placement in this process (RunTask calls, service reconciles) and read again once it is
    /// <see cref="PlacementSnapshotMaxAge"/> old, or at once when <paramref name="fresh"/>; concurrent
    /// callers share one read. Reading the whole partition per call made a launch cost as many entities
    /// as the cluster has instances. A stale view costs a retry, never an over-commit: a reservation is a
    /// write conditional on the row's ETag as seen (<see cref="TryReserveAsync"/>), and whatever this
    /// process learns of a row afterwards (a reservation it won, a re-read after a lost one, a release)
    /// replaces that row in the view. <c>Cached</c> says whether the answer came from an earlier read:
    /// a caller that finds no room in it should ask again with <paramref name="fresh"/>.
    /// </summary>
    public async Task<(IReadOnlyList<ContainerInstanceRecord> Instances, bool Cached)> ListForPlacementAsync(
        string cluster, bool fresh, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (!fresh && _snapshots.TryGetValue(cluster, out var seen) && now - seen.ReadAt < PlacementSnapshotMaxAge)
        {
            try
            {
                return (await seen.Read.WaitAsync(cancellationToken), true);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                // The shared read failed: read again below, for this caller.
            }
        }
        var snapshot = new PlacementSnapshot(now, ListAsync(cluster, CancellationToken.None).ContinueWith(
            t => (IReadOnlyList<ContainerInstanceRecord>)t.Result.ToArray(), TaskScheduler.Default));
        _snapshots[cluster] = snapshot;
        return (await snapshot.Read.WaitAsync(cancellationToken), false);
    }

    /// <summary>Forgets the cluster's placement view: the next placement reads the instances again.</summary>
    public void ForgetPlacementView(string cluster) => _snapshots.TryRemove(cluster, out _);

    /// <summary>Puts what was just learnt of one row (null: gone) into the cluster's placement view, if it has one.</summary>
    private void NoteInView(string cluster, string id, ContainerInstanceRecord? now)
    {
        if (!_snapshots.TryGetValue(cluster, out var seen) || !seen.Read.IsCompletedSuccessfully) return;
        var items = seen.Read.Result;
        var index = -1;
        for (var i = 0; i < items.Count; i++)
            if (items[i].Id == id) { index = i; break; }
        if (index < 0 && now is null) return;
        if (index >= 0 && now is not null && items[index].Version > now.Version) return;   // the view already has a later write
        ContainerInstanceRecord[] next = index < 0 ? [.. items, now!]
            : now is null ? items.Where((_, i) => i != index).ToArray()
            : items.Select((item, i) => i == index ? now : item).ToArray();
        // A lost swap (another update, a new read) only leaves the view a little staler.
        _snapshots.TryUpdate(cluster, new PlacementSnapshot(seen.ReadAt, Task.FromResult<IReadOnlyList<ContainerInstanceRecord>>(next)), seen);
    }

    private sealed class PlacementSnapshot(DateTimeOffset readAt, Task<IReadOnlyList<ContainerInstanceRecord>> read)
    {
        public DateTimeOffset ReadAt { get; } = readAt;
        public Task<IReadOnlyList<ContainerInstanceRecord>> Read { get; } = read;
    }

    /// <summary>
    /// The ids of the cluster's DRAINING instances (whose service tasks are moved elsewhere): one query of the
    /// cluster's partition of <see cref="DrainsTableName"/>, usually empty, and one point read of each instance it
    /// lists, which keeps those whose row says DRAINING. Nothing here grows with the instances that are not draining.
    /// </summary>
    public async Task<IReadOnlySet<string>> ListDrainingIdsAsync(string cluster, CancellationToken cancellationToken)
    {
        var backfill = _drainsBackfilled.GetOrAdd(cluster, c => BackfillDrainsAsync(c, CancellationToken.None));
        try
        {
            await backfill.WaitAsync(cancellationToken);
        }
        catch (Exception) when (backfill.IsFaulted || backfill.IsCanceled)
        {
            // A failed look is forgotten, so the next call tries again.
            _drainsBackfilled.TryRemove(KeyValuePair.Create(cluster, backfill));
            throw;
        }
        var drains = await storage.TableAsync(DrainsTableName, cancellationToken);
        var listed = new List<string>();
        await foreach (var row in drains.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {cluster}"),
                           maxPerPage: 1000, select: ["RowKey"], cancellationToken: cancellationToken))
            listed.Add(row.RowKey);
        if (listed.Count == 0) return new HashSet<string>(StringComparer.Ordinal);
        var rows = await Task.WhenAll(listed.Select(id => FindAsync(cluster, id, cancellationToken)));
        // An entry whose row is not DRAINING is left alone: it may be a drain whose row is about to say so.
        return rows.Where(i => i is { Status: ContainerInstanceRecord.Draining }).Select(i => i!.Id).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// Lists the instances whose rows say DRAINING, once per cluster and process (<see cref="ListDrainingIdsAsync"/>):
    /// those drained before <see cref="DrainsTableName"/> existed.
    /// </summary>
    private async Task BackfillDrainsAsync(string cluster, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {cluster} and Status eq {ContainerInstanceRecord.Draining}");
        await foreach (var row in table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: ["RowKey"], cancellationToken: cancellationToken))
            await ListDrainAsync(cluster, row.RowKey, cancellationToken);
    }

    private async Task ListDrainAsync(string cluster, string id, CancellationToken cancellationToken)
    {
        var drains = await storage.TableAsync(DrainsTableName, cancellationToken);
        await drains.UpsertEntityAsync(new TableEntity(cluster, id), TableUpdateMode.Replace, cancellationToken);
    }

    /// <summary>
    /// <paramref name="changed"/> over <paramref name="current"/>, conditional on its ETag, keeping
    /// <see cref="DrainsTableName"/> a superset of the draining instances: listed before a change into DRAINING,
    /// unlisted after a change out of it (an unlisting that fails leaves an entry that reads check away).
    /// </summary>
    private async Task<ContainerInstanceRecord> ReplaceKeepingDrainsAsync(
        TableClient table, ContainerInstanceRecord current, ContainerInstanceRecord changed, CancellationToken cancellationToken)
    {
        const string draining = ContainerInstanceRecord.Draining;
        if (changed.Status == draining && current.Status != draining) await ListDrainAsync(changed.Cluster, changed.Id, cancellationToken);
        var written = await ReplaceOrThrowAsync(table, changed, cancellationToken);
        if (current.Status == draining && changed.Status != draining)
        {
            try
            {
                var drains = await storage.TableAsync(DrainsTableName, cancellationToken);
                await drains.DeleteEntityAsync(changed.Cluster, changed.Id, ETag.All, cancellationToken);
            }
            catch (RequestFailedException)
            {
                // The change itself is written; the entry left behind costs a point read per reconcile until the next drain ends.
            }
        }
        return written;
    }

    /// <summary>
    /// Read-modify-write under optimistic concurrency: <paramref name="change"/> runs on a fresh read
    /// each attempt (so it must be free of side effects) and may throw to refuse. The version goes up
    /// by one. Throws <see cref="InvalidParameterException"/> when the instance does not exist, and
    /// <see cref="ConcurrentUpdateException"/> after repeated lost races.
    /// </summary>
    public async Task<ContainerInstanceRecord> UpdateAsync(
        string cluster, string id, Func<ContainerInstanceRecord, ContainerInstanceRecord> change, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var updated = (await OptimisticUpdate.UpdateAsync(
            async () => await FindAsync(cluster, id, cancellationToken) ?? throw NotFound(cluster, id),
            // A copy even when change returns its argument: every update counts as a new version.
            current => change(current) with { Cluster = current.Cluster, Id = current.Id, Version = current.Version + 1, ETag = current.ETag },
            (current, changed) => ReplaceKeepingDrainsAsync(table, current, changed, cancellationToken),
            cancellationToken, MaxAttempts))!;
        NoteInView(cluster, id, updated);
        return updated;
    }

    /// <summary>
    /// Adds <paramref name="reservation"/> to the instance as <paramref name="seen"/> shows it,
    /// conditional on <paramref name="seen"/>'s ETag; the version goes up by one. Returns the
    /// updated instance, or null when the row changed since it was read (the caller re-reads and
    /// decides again; nothing was written). When <paramref name="seen"/> already holds a reservation
    /// for that task, returns <paramref name="seen"/> unchanged, so retrying a reservation is harmless.
    /// Whether the task fits is the caller's decision (<see cref="Scheduling.Placement.Choose"/>).
    /// </summary>
    public Task<ContainerInstanceRecord?> TryReserveAsync(ContainerInstanceRecord seen, Reservation reservation, CancellationToken cancellationToken)
        => TryReserveAsync(seen, [reservation], cancellationToken);

    /// <summary>
    /// <see cref="TryReserveAsync(ContainerInstanceRecord, Reservation, CancellationToken)"/> for several
    /// tasks at once: all of <paramref name="reservations"/> in one conditional write, or none.
    /// </summary>
    public async Task<ContainerInstanceRecord?> TryReserveAsync(
        ContainerInstanceRecord seen, IReadOnlyList<Reservation> reservations, CancellationToken cancellationToken)
    {
        var adding = reservations.Where(r => !seen.HoldsReservationFor(r.TaskId)).ToList();
        if (adding.Count == 0) return seen;
        var table = await storage.TableAsync(TableName, cancellationToken);
        var reserved = seen with { Reservations = [.. seen.Reservations, .. adding], Version = seen.Version + 1 };
        var written = await ReplaceAsync(table, reserved, cancellationToken);
        if (written is not null) NoteInView(written.Cluster, written.Id, written);
        return written;
    }

    /// <summary>
    /// Removes the task's reservation, retrying lost races. Idempotent: no reservation, or no
    /// instance, is nothing to do.
    /// </summary>
    public Task ReleaseAsync(string cluster, string id, string taskId, CancellationToken cancellationToken)
        => ReleaseAsync(cluster, id, [taskId], cancellationToken);

    /// <summary>Removes the reservations of <paramref name="taskIds"/> (tasks on one instance) in one write.</summary>
    public async Task ReleaseAsync(string cluster, string id, IReadOnlyCollection<string> taskIds, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var released = await OptimisticUpdate.UpdateAsync(
            () => FindAsync(cluster, id, cancellationToken),
            current => !taskIds.Any(current.HoldsReservationFor) ? null : current with
            {
                Reservations = current.Reservations.Where(r => !taskIds.Contains(r.TaskId)).ToList(),
                Version = current.Version + 1,
            },
            (current, changed) => ReplaceOrThrowAsync(table, changed, cancellationToken),
            cancellationToken, MaxReleaseAttempts);
        if (released is not null) NoteInView(cluster, id, released);
    }

    /// <summary>
    /// The worker's heartbeat: sets <c>LastHeartbeat</c> to now and the task counts it reports, in
    /// one unconditional merge. Last writer wins on purpose: only the worker writes these three
    /// columns, every other write replaces the row conditionally on its ETag (and so re-reads after
    /// a heartbeat rather than overwrite it). The version does not change (a heartbeat is not a
    /// change of the instance). Throws <see cref="InvalidParameterException"/> when the instance
    /// does not exist: the worker should register again.
    /// </summary>
    public Task HeartbeatAsync(string cluster, string id, int runningTasksCount, int pendingTasksCount, CancellationToken cancellationToken)
        => HeartbeatAsync(cluster, id, runningTasksCount, pendingTasksCount, owner: null, cancellationToken);

    /// <summary>
    /// As <see cref="HeartbeatAsync(string, string, int, int, CancellationToken)"/>, for the worker
    /// that registered the instance as <paramref name="owner"/>: first reads who owns the row now
    /// (one column), and throws <see cref="InstanceOwnedElsewhereException"/> without writing when
    /// another worker registered it since. When nothing has written the row since this process's last
    /// heartbeat (its ETag is still the one that write returned), no one can have taken it over, and the
    /// heartbeat is that one conditional write: an idle worker's heartbeat costs one transaction.
    /// </summary>
    public async Task HeartbeatAsync(string cluster, string id, int runningTasksCount, int pendingTasksCount, string? owner, CancellationToken cancellationToken)
    {
        if (!IsId(id)) throw NotFound(cluster, id);
        var table = await storage.TableAsync(TableName, cancellationToken);
        var beat = new TableEntity(cluster, id)
        {
            ["Beat"] = NewBeat(),
            ["LastHeartbeat"] = Now(),
            ["RunningTasksCount"] = runningTasksCount,
            ["PendingTasksCount"] = pendingTasksCount,
        };
        if (owner is not null && _ownHeartbeats.TryGetValue((cluster, id, owner), out var unchanged))
        {
            try
            {
                var written = await table.UpdateEntityAsync(beat, unchanged, TableUpdateMode.Merge, cancellationToken);
                if (written.Headers.ETag is { } next) _ownHeartbeats[(cluster, id, owner)] = next;
                else _ownHeartbeats.TryRemove((cluster, id, owner), out _);
                return;
            }
            catch (RequestFailedException e) when (e.Status is 404 or 412)
            {
                // Written since (a placement, a state change, another worker): check the owner as below.
                _ownHeartbeats.TryRemove((cluster, id, owner), out _);
            }
        }
        if (owner is not null)
        {
            var seen = await table.GetEntityIfExistsAsync<TableEntity>(cluster, id, ["Owner"], cancellationToken);
            if (!seen.HasValue) throw NotFound(cluster, id);
            if (seen.Value!.GetString("Owner") is { Length: > 0 } current && current != owner)
                throw new InstanceOwnedElsewhereException(Arn(cluster, id), current);
        }
        try
        {
            // ETag.All sends If-Match: *, so a missing row is a 404, never an upsert of a partial row.
            var written = await table.UpdateEntityAsync(beat, ETag.All, TableUpdateMode.Merge, cancellationToken);
            if (owner is not null && written.Headers.ETag is { } etag) _ownHeartbeats[(cluster, id, owner)] = etag;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw NotFound(cluster, id);
        }
    }

    /// <summary>
    /// A worker stopping cleanly gives the instance up, so its next start registers at once. Only
    /// the owner's own token is cleared (a conditional merge on the row as read); anything else is left.
    /// </summary>
    public async Task ReleaseOwnerAsync(string cluster, string id, string owner, CancellationToken cancellationToken)
    {
        if (!IsId(id)) return;
        var table = await storage.TableAsync(TableName, cancellationToken);
        var seen = await table.GetEntityIfExistsAsync<TableEntity>(cluster, id, ["Owner"], cancellationToken);
        if (!seen.HasValue || seen.Value!.GetString("Owner") != owner) return;
        try
        {
            await table.UpdateEntityAsync(new TableEntity(cluster, id) { ["Owner"] = "" }, seen.Value.ETag, TableUpdateMode.Merge, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            // Changed since we read it: whoever wrote it decides.
        }
    }

    /// <summary>
    /// Registered (ACTIVE or DRAINING) instances and their tasks counted as each instance counts
    /// them (<see cref="ContainerInstanceRecord.CountedRunningTasks"/>: placed tasks, split by what
    /// the worker last reported running): the cluster's task counts come from here, reading three
    /// small columns of one partition, so no cluster-wide task scan is needed to describe a cluster.
    /// </summary>
    internal async Task<ClusterUsage> CountRegisteredAsync(string cluster, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {cluster} and (Status eq {ContainerInstanceRecord.Active} or Status eq {ContainerInstanceRecord.Draining})");
        var usage = new ClusterUsage();
        await foreach (var row in table.QueryAsync<TableEntity>(filter, maxPerPage: 1000,
            select: [ContainerInstanceRecord.PlacedTasksColumn, "RunningTasksCount", "CapacityProviderName"], cancellationToken: cancellationToken))
        {
            var placed = row.GetInt32(ContainerInstanceRecord.PlacedTasksColumn) ?? 0;
            var running = ContainerInstanceRecord.RunningOf(placed, row.GetInt32("RunningTasksCount") ?? 0);
            // Fargate's hosts are not the cluster's container instances; their tasks are its tasks.
            var counted = row.GetString("CapacityProviderName") == Capacity.CapacityProviderNames.Fargate ? 0 : 1;
            usage += new ClusterUsage(counted, running, placed - running);
        }
        return usage;
    }

    /// <summary>Replaces the row if it still has <paramref name="instance"/>'s ETag; null when it does not (or is gone).</summary>
    private static async Task<ContainerInstanceRecord?> ReplaceAsync(TableClient table, ContainerInstanceRecord instance, CancellationToken cancellationToken)
    {
        try
        {
            var response = await table.UpdateEntityAsync(instance.ToEntity(), instance.ETag, TableUpdateMode.Replace, cancellationToken);
            return instance with { ETag = response.Headers.ETag ?? default };
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            return null;
        }
    }

    private InvalidParameterException NotFound(string cluster, string id)
        => new($"The referenced container instance {arns.ContainerInstance(cluster, id)} was not found.");

    private string Arn(ContainerInstanceRecord instance) => arns.ContainerInstance(instance.Cluster, instance.Id);

    private string Arn(string cluster, string id) => arns.ContainerInstance(cluster, id);

    private static string NewBeat() => Guid.NewGuid().ToString("N");

    /// <summary>Now, to the millisecond: what the API shows is what is stored.</summary>
    private DateTimeOffset Now() => DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());

    private async Task<ContainerInstanceRecord> ReplaceOrThrowAsync(TableClient table, ContainerInstanceRecord instance, CancellationToken cancellationToken)
        => await ReplaceAsync(table, instance, cancellationToken) ?? throw new ConcurrentUpdateException(Arn(instance));
}

/// <summary>A heartbeat of a worker whose instance another worker has registered since: this one must stop.</summary>
public sealed class InstanceOwnedElsewhereException(string containerInstanceArn, string owner)
    : Exception($"Container instance {containerInstanceArn} is now held by another worker ({owner}).")
{
    public string ContainerInstanceArn { get; } = containerInstanceArn;

    public string Owner { get; } = owner;
}

/// <summary>
/// The container instances' share of a cluster's figures: how many are registered (ACTIVE or
/// DRAINING), for DescribeClusters' <c>registeredContainerInstancesCount</c> and DeleteCluster.
/// </summary>
public sealed class ContainerInstanceUsage(ContainerInstanceStore store) : IClusterUsage
{
    public async Task<ClusterUsage> CountAsync(string cluster, CancellationToken cancellationToken)
        => await store.CountRegisteredAsync(cluster, cancellationToken);
}
