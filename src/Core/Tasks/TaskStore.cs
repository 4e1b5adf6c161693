using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.Tasks;

/// <summary>The <c>Tasks</c> table (see <see cref="TaskRecord"/> for its keys). ETag-guarded writes.</summary>
public sealed class TaskStore(StorageClients storage, Arns arns)
{
    private const string TableName = "Tasks";


    /// <summary>Inserts a new task row; returns the task with the row's ETag.</summary>
    public async Task<TaskRecord> InsertAsync(TaskRecord task, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.AddEntityAsync(task.ToEntity(), cancellationToken);
        return Remember(task with { ETag = response.Headers.ETag ?? default });
    }

    /// <summary>
    /// Inserts new task rows of one partition in one entity-group batch (at most
    /// <see cref="TableQueries.MaxBatchOperations"/>, Azure's limit; a task row is a few KiB, far
    /// below the batch's 4 MiB): all or none. Returns the tasks with their rows' ETags. A launch
    /// inserts the tasks it places on one instance so, beside their reservation (<see cref="TaskLauncher"/>).
    /// </summary>
    public async Task<IReadOnlyList<TaskRecord>> InsertManyAsync(IReadOnlyList<TaskRecord> tasks, CancellationToken cancellationToken)
    {
        if (tasks.Count == 0) return [];
        CheckBatch(tasks);
        var table = await storage.TableAsync(TableName, cancellationToken);
        var responses = (await table.SubmitTransactionAsync(
            tasks.Select(t => new TableTransactionAction(TableTransactionActionType.Add, t.ToEntity())), cancellationToken)).Value;
        // The batch answers each operation in order, each with its row's ETag.
        return tasks.Select((t, i) => Remember(t with { ETag = responses[i].Headers.ETag ?? default })).ToList();
    }

    /// <summary>
    /// Deletes rows of one partition as they were inserted (<see cref="InsertManyAsync"/>) in one
    /// entity-group batch: all or none (a row changed since fails the batch, and is left alone).
    /// </summary>
    public async Task DeleteManyAsync(IReadOnlyList<TaskRecord> tasks, CancellationToken cancellationToken)
    {
        if (tasks.Count == 0) return;
        if (tasks.Count == 1)
        {
            await DeleteAsync(tasks[0], cancellationToken);
            return;
        }
        CheckBatch(tasks);
        var table = await storage.TableAsync(TableName, cancellationToken);
        foreach (var task in tasks) _written.TryRemove((task.Cluster, task.Id), out _);
        await table.SubmitTransactionAsync(
            tasks.Select(t => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(t.PartitionKey, t.Id), t.ETag)), cancellationToken);
    }

    /// <summary>What one entity-group batch may hold: rows of one partition, at most Azure's limit.</summary>
    private static void CheckBatch(IReadOnlyList<TaskRecord> tasks)
    {
        if (tasks.Count > TableQueries.MaxBatchOperations) throw new ArgumentException($"At most {TableQueries.MaxBatchOperations} tasks a batch.", nameof(tasks));
        if (tasks.Any(t => t.PartitionKey != tasks[0].PartitionKey)) throw new ArgumentException("Tasks of one partition only.", nameof(tasks));
    }

    /// <summary>Deletes the task row as it was inserted or last read (a row changed since is left alone).</summary>
    public async Task DeleteAsync(TaskRecord task, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        _written.TryRemove((task.Cluster, task.Id), out _);
        await table.DeleteEntityAsync(task.PartitionKey, task.Id, task.ETag, cancellationToken);
    }

    /// <summary>How long a row this process wrote is kept as the first guess of <see cref="UpdateAsync"/>.</summary>
    public static readonly TimeSpan WrittenRowsMaxAge = TimeSpan.FromMinutes(2);

    /// <summary>At most this many such rows are kept (beyond it, the oldest half goes).</summary>
    public const int MaxWrittenRows = 4096;

    // The rows this process last wrote (or read to update), with their ETags: UpdateAsync decides on
    // that copy first and writes conditionally on its ETag, so a launch's reports (PENDING, RUNNING)
    // cost one write each instead of a read and a write. A copy another writer has since changed
    // only costs a refused write (412) before the usual read; it can never be written over.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Cluster, string Id), (TaskRecord Task, long At)> _written = new();

    private TaskRecord Remember(TaskRecord task)
    {
        if (_written.Count >= MaxWrittenRows)
        {
            var cutoff = _written.Values.Select(v => v.At).Order().ElementAt(_written.Count / 2);
            foreach (var (key, value) in _written)
                if (value.At <= cutoff) _written.TryRemove(key, out _);
        }
        _written[(task.Cluster, task.Id)] = (task, Environment.TickCount64);
        return task;
    }

    private TaskRecord? Written(string cluster, string taskId)
    {
        if (!_written.TryGetValue((cluster, taskId), out var seen)) return null;
        if (Environment.TickCount64 - seen.At <= (long)WrittenRowsMaxAge.TotalMilliseconds) return seen.Task;
        _written.TryRemove((cluster, taskId), out _);
        return null;
    }

    public async Task<TaskRecord?> FindAsync(string cluster, string taskId, CancellationToken cancellationToken)
    {
        if (!TaskIds.IsValid(taskId)) return null;
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(TaskIds.PartitionKey(cluster, taskId), taskId, cancellationToken: cancellationToken);
        return response.HasValue ? TaskRecord.FromEntity(response.Value!) : null;
    }

    /// <summary>
    /// Read-modify-write under optimistic concurrency. <paramref name="change"/> sees a fresh read
    /// each attempt (the first may be <paramref name="known"/>, a row the caller has just read, with
    /// its ETag) and returns null to leave the task as it is. Returns the task as stored, or null
    /// when it does not exist.
    /// </summary>
    /// <remarks>
    /// When this process wrote the row last (and recently), the first attempt decides on that copy
    /// instead of reading: its write is conditional on the copy's ETag, so it lands only if the row
    /// is still exactly that copy; otherwise (the row changed or went, or <paramref name="change"/>
    /// finds nothing to do on the copy) the row is read and decided on as usual.
    /// </remarks>
    public async Task<TaskRecord?> UpdateAsync(
        string cluster, string taskId, Func<TaskRecord, TaskRecord?> change, CancellationToken cancellationToken, TaskRecord? known = null)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        async Task<TaskRecord> WriteAsync(TaskRecord current, TaskRecord changed)
        {
            changed = changed with { Version = current.Version + 1 };
            try
            {
                var response = await table.UpdateEntityAsync(changed.ToEntity(), current.ETag, TableUpdateMode.Replace, cancellationToken);
                return Remember(changed with { ETag = response.Headers.ETag ?? default });
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                throw new ConcurrentUpdateException(arns.Task(cluster, taskId));
            }
        }

        if (known is not null)
        {
            // A row the caller has just read: decided on as a read, once; a lost race reads again below.
            var changed = change(known);
            if (changed is null || ReferenceEquals(changed, known)) return known;
            try
            {
                return await WriteAsync(known, changed);
            }
            catch (Exception e) when (e is ConcurrentUpdateException || e is RequestFailedException { Status: 404 })
            {
                _written.TryRemove((cluster, taskId), out _);
            }
        }
        else if (Written(cluster, taskId) is { } copy && Guess(change, copy) is { } guessed && !ReferenceEquals(guessed, copy))
        {
            try
            {
                return await WriteAsync(copy, guessed);
            }
            catch (Exception e) when (e is ConcurrentUpdateException || e is RequestFailedException { Status: 404 })
            {
                _written.TryRemove((cluster, taskId), out _);
            }
        }
        var stored = await OptimisticUpdate.UpdateAsync(() => FindAsync(cluster, taskId, cancellationToken), change, WriteAsync, cancellationToken);
        if (stored is null) _written.TryRemove((cluster, taskId), out _);
        return stored;
    }

    // A change that refuses the copy (throws) is asked again on the row as read.
    private static TaskRecord? Guess(Func<TaskRecord, TaskRecord?> change, TaskRecord copy)
    {
        try
        {
            return change(copy);
        }
        catch (Exception)
        {
            return null;
        }
    }

    /// <summary>
    /// <see cref="UpdateAsync"/> for several tasks of one partition: each group of up to
    /// <see cref="TableQueries.MaxRowKeysPerQuery"/> tasks is read with one query and written with one
    /// batch of those <paramref name="change"/> changed, conditional on what was read (a lost race reads
    /// and decides again); groups are small enough for Azure's filter and batch limits. Returns the tasks
    /// as stored; ids that do not exist are missing.
    /// </summary>
    public async Task<IReadOnlyList<TaskRecord>> UpdateManyAsync(
        string cluster, IReadOnlyCollection<string> taskIds, Func<TaskRecord, TaskRecord?> change, CancellationToken cancellationToken)
    {
        var partition = TaskIds.PartitionKey(cluster, taskIds.First());
        if (taskIds.Any(id => !TaskIds.IsValid(id) || TaskIds.PartitionKey(cluster, id) != partition))
            throw new ArgumentException("Tasks of one partition only.", nameof(taskIds));
        var table = await storage.TableAsync(TableName, cancellationToken);
        var stored = await Task.WhenAll(taskIds.Chunk(TableQueries.MaxRowKeysPerQuery)
            .Select(chunk => UpdateChunkAsync(table, cluster, chunk, change, cancellationToken)));
        return stored.SelectMany(s => s).ToList();
    }

    private Task<IReadOnlyList<TaskRecord>> UpdateChunkAsync(
        TableClient table, string cluster, IReadOnlyCollection<string> taskIds, Func<TaskRecord, TaskRecord?> change, CancellationToken cancellationToken)
        => OptimisticUpdate.RetryAsync<IReadOnlyList<TaskRecord>>(async _ =>
        {
            var current = await ReadPartitionAsync(table, cluster, taskIds, cancellationToken);
            var changed = current
                .Select(t => (Before: t, After: change(t)))
                .Where(c => c.After is not null && !ReferenceEquals(c.After, c.Before))
                .Select(c => c.After! with { Version = c.Before.Version + 1, ETag = c.Before.ETag })
                .ToList();
            if (changed.Count == 0) return current;
            try
            {
                var responses = await table.SubmitTransactionAsync(
                    changed.Select(t => new TableTransactionAction(TableTransactionActionType.UpdateReplace, t.ToEntity(), t.ETag)), cancellationToken);
                var stored = changed.Select((t, i) => Remember(t with { ETag = responses.Value[i].Headers.ETag ?? default })).ToDictionary(t => t.Id);
                return current.Select(t => stored.GetValueOrDefault(t.Id) ?? t).ToList();
            }
            catch (TableTransactionFailedException e) when (e.Status == 412)
            {
                throw new ConcurrentUpdateException(arns.Task(cluster, changed[e.FailedTransactionActionIndex ?? 0].Id));
            }
        }, cancellationToken);

    /// <summary>Deletes every task STOPPED before <paramref name="before"/>, a batch per partition; returns how many.</summary>
    public async Task<int> DeleteStoppedBeforeAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"LastStatus eq {EcsTaskStatus.Stopped} and StoppedAt lt {before}"), cancellationToken);
    }

    /// <summary>
    /// The tasks of <paramref name="taskIds"/> that exist: one request per partition (a point read
    /// for a lone id, one query for several; tasks of one group share a partition), side by side.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, TaskRecord>> FindManyAsync(string cluster, IEnumerable<string> taskIds, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        async Task<IReadOnlyList<TaskRecord>> ReadAsync(IReadOnlyList<string> ids)
            => ids.Count == 1
                ? await FindAsync(cluster, ids[0], cancellationToken) is { } one ? [one] : []
                : await ReadPartitionAsync(table, cluster, ids, cancellationToken);
        var reads = taskIds.Where(TaskIds.IsValid).Distinct().GroupBy(id => TaskIds.PartitionKey(cluster, id)).Select(p => ReadAsync(p.ToList()));
        return (await Task.WhenAll(reads)).SelectMany(r => r).ToDictionary(t => t.Id);
    }

    /// <summary>
    /// The existing tasks among <paramref name="taskIds"/>, all of one partition: one query per
    /// <see cref="TableQueries.MaxRowKeysPerQuery"/> ids (Azure's filter limit), side by side.
    /// </summary>
    private static async Task<IReadOnlyList<TaskRecord>> ReadPartitionAsync(
        TableClient table, string cluster, IReadOnlyCollection<string> taskIds, CancellationToken cancellationToken)
    {
        var filters = TableQueries.RowsOfPartitionFilters(TaskIds.PartitionKey(cluster, taskIds.First()), taskIds);
        return (await Task.WhenAll(filters.Select(filter => ReadAllAsync(table, filter, cancellationToken)))).SelectMany(f => f).ToList();
    }

    /// <summary>Every task row <paramref name="filter"/> matches, all pages.</summary>
    private static async Task<List<TaskRecord>> ReadAllAsync(TableClient table, string filter, CancellationToken cancellationToken)
    {
        var found = new List<TaskRecord>();
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            found.Add(TaskRecord.FromEntity(entity));
        return found;
    }

    /// <summary>
    /// A group's tasks (a service's, for example): one partition. Without <paramref name="includeStopped"/>, the
    /// stopped ones are left out where they are stored: a group that churns keeps its stopped tasks for the retention
    /// period, and a reader that needs only what runs would otherwise transfer and parse every one of them each time.
    /// </summary>
    public async Task<IReadOnlyList<TaskRecord>> ListForGroupAsync(string cluster, string group, CancellationToken cancellationToken, bool includeStopped = true)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var partition = TaskIds.GroupPartitionKey(cluster, group);
        var filter = includeStopped
            ? TableClient.CreateQueryFilter($"PartitionKey eq {partition} and Group eq {group}")
            : TableClient.CreateQueryFilter($"PartitionKey eq {partition} and Group eq {group} and LastStatus ne {EcsTaskStatus.Stopped}");
        return await ReadAllAsync(table, filter, cancellationToken);
    }

    /// <summary>
    /// The tasks of <paramref name="group"/> a RunTask with <paramref name="clientToken"/> placed: its group's
    /// partition, filtered (for a retry that takes over a token whose first attempt died, not for hot paths).
    /// </summary>
    public async Task<IReadOnlyList<TaskRecord>> ListForClientTokenAsync(string cluster, string group, string clientToken, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await ReadAllAsync(table, TableClient.CreateQueryFilter(
            $"PartitionKey eq {TaskIds.GroupPartitionKey(cluster, group)} and Group eq {group} and ClientToken eq {clientToken}"), cancellationToken);
    }

    /// <summary>Tasks placed on one instance that have not stopped (a cluster-wide scan: for recovery, not hot paths).</summary>
    public async Task<IReadOnlyList<TaskRecord>> ListForInstanceAsync(string cluster, string containerInstanceId, CancellationToken cancellationToken)
    {
        var (tasks, _) = await ListAsync(cluster, new TaskFilter(ContainerInstanceId: containerInstanceId, NotStopped: true), int.MaxValue, null, cancellationToken);
        return tasks;
    }

    /// <summary>
    /// One page of a cluster's tasks matching <paramref name="filter"/>, in key order after
    /// <paramref name="afterKey"/> (<c>PartitionKey/RowKey</c> of the last task of the previous page).
    /// </summary>
    public async Task<(IReadOnlyList<TaskRecord> Tasks, bool More)> ListAsync(
        string cluster, TaskFilter filter, int take, string? afterKey, CancellationToken cancellationToken)
    {
        var (entities, more) = await QueryAsync(cluster, filter, take, afterKey, select: null, cancellationToken);
        return (entities.Select(TaskRecord.FromEntity).ToList(), more);
    }

    /// <summary>
    /// As <see cref="ListAsync(string, TaskFilter, int, string?, CancellationToken)"/>, reading only the
    /// keys, for answers that only name tasks (ListTasks).
    /// </summary>
    public async Task<(IReadOnlyList<TaskKey> Tasks, bool More)> ListKeysAsync(
        string cluster, TaskFilter filter, int take, string? afterKey, CancellationToken cancellationToken)
    {
        var (entities, more) = await QueryAsync(cluster, filter, take, afterKey, KeyColumns, cancellationToken);
        return (entities.Select(e => new TaskKey(e.GetString("Cluster"), e.RowKey)).ToList(), more);
    }

    private static readonly string[] KeyColumns = ["PartitionKey", "RowKey", "Cluster"];

    private async Task<(List<TableEntity> Entities, bool More)> QueryAsync(
        string cluster, TaskFilter filter, int take, string? afterKey, IEnumerable<string>? select, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var clauses = new List<string>();
        if (filter.Group is { } group)
            clauses.Add(TableClient.CreateQueryFilter($"PartitionKey eq {TaskIds.GroupPartitionKey(cluster, group)} and Group eq {group}"));
        else
            clauses.Add(TableClient.CreateQueryFilter($"PartitionKey gt {cluster + "|"} and PartitionKey lt {cluster + "|~"}"));
        if (afterKey?.Split('/') is [var afterPartition, var afterRow])
            clauses.Add(TableClient.CreateQueryFilter($"(PartitionKey gt {afterPartition} or (PartitionKey eq {afterPartition} and RowKey gt {afterRow}))"));
        if (filter.Family is { } family) clauses.Add(TableClient.CreateQueryFilter($"Family eq {family}"));
        if (filter.StartedBy is { } startedBy) clauses.Add(TableClient.CreateQueryFilter($"StartedBy eq {startedBy}"));
        if (filter.ContainerInstanceId is { } instance) clauses.Add(TableClient.CreateQueryFilter($"ContainerInstanceId eq {instance}"));
        if (filter.DesiredStatus is { } desired) clauses.Add(TableClient.CreateQueryFilter($"DesiredStatus eq {desired}"));
        if (filter.NotStopped) clauses.Add(TableClient.CreateQueryFilter($"LastStatus ne {EcsTaskStatus.Stopped}"));
        if (filter.LaunchType is { } launchType) clauses.Add(TableClient.CreateQueryFilter($"LaunchType eq {launchType}"));

        return await table.TakeAsync<TableEntity>(TableQueries.And(clauses), take, select, cancellationToken);
    }

    private static readonly string[] DeadlineColumns =
        ["PartitionKey", "RowKey", "Cluster", "Group", "ContainerInstanceId", "LastStatus", "DesiredStatus", "CreatedAt", "StoppingAt", "StopSentAt", "DrainingUntil", "ObservedAt", "PlacedAt"];

    /// <summary>
    /// The cluster's tasks that have not stopped, with only what <see cref="TaskDeadlines"/> decides
    /// on (keys, group, instance, statuses and their times): a cluster-wide scan for the periodic
    /// sweep, never for a hot path. Act on a task through <see cref="UpdateAsync"/>, which reads it whole.
    /// </summary>
    public Task<IReadOnlyList<TaskRecord>> ListLiveAsync(string cluster, CancellationToken cancellationToken)
        => ListDeadlineRowsAsync(TableClient.CreateQueryFilter(
            $"PartitionKey gt {cluster + "|"} and PartitionKey lt {cluster + "|~"} and LastStatus ne {EcsTaskStatus.Stopped}"), cancellationToken);

    /// <summary>
    /// As <see cref="ListLiveAsync"/>, only the tasks the delivery sweep must act on now: placed
    /// at or before <paramref name="placedBy"/> and not acknowledged, or owed a Stop by
    /// <paramref name="now"/> (the row's <c>AwaitingAckSince</c> and <c>StopDueAt</c>, which every
    /// write sets). The answer grows with the tasks that are late, not with the cluster's tasks
    /// (five comparisons). Rows last written before those columns existed are not in it.
    /// </summary>
    public Task<IReadOnlyList<TaskRecord>> ListDeliveryDueAsync(string cluster, DateTimeOffset placedBy, DateTimeOffset now, CancellationToken cancellationToken)
        => ListDeadlineRowsAsync(TableClient.CreateQueryFilter(
            $"PartitionKey gt {cluster + "|"} and PartitionKey lt {cluster + "|~"} and LastStatus ne {EcsTaskStatus.Stopped} and (AwaitingAckSince le {placedBy} or StopDueAt le {now})"),   // TaskRecord.AwaitingAckSinceColumn, StopDueAtColumn (a name in the filter is not a parameter)
            cancellationToken);

    /// <summary>
    /// <see cref="ListDeliveryDueAsync"/> and <see cref="ListStoppedSinceAsync"/> in one query (eight
    /// comparisons): what a delivery sweep after its first reads each minute, one storage request
    /// instead of two. A row is in at most one of the two lists (its <c>LastStatus</c> decides).
    /// </summary>
    public async Task<(IReadOnlyList<TaskRecord> Due, IReadOnlyList<TaskKey> StoppedSince)> ListDeliveryDueAndStoppedSinceAsync(
        string cluster, DateTimeOffset placedBy, DateTimeOffset now, DateTimeOffset stoppedSince, CancellationToken cancellationToken)
    {
        var rows = await ListDeadlineRowsAsync(TableClient.CreateQueryFilter(
            $"PartitionKey gt {cluster + "|"} and PartitionKey lt {cluster + "|~"} and ((LastStatus ne {EcsTaskStatus.Stopped} and (AwaitingAckSince le {placedBy} or StopDueAt le {now})) or (LastStatus eq {EcsTaskStatus.Stopped} and StoppedAt ge {stoppedSince}))"),
            cancellationToken);
        return (
            rows.Where(t => t.LastStatus != EcsTaskStatus.Stopped).ToList(),
            rows.Where(t => t.LastStatus == EcsTaskStatus.Stopped).Select(t => new TaskKey(t.Cluster, t.Id)).ToList());
    }

    /// <summary>
    /// The cluster's tasks that stopped at or after <paramref name="since"/>, keys only (and
    /// their instance): what the delivery sweep checks for a reservation left behind.
    /// </summary>
    public async Task<IReadOnlyList<TaskKey>> ListStoppedSinceAsync(string cluster, DateTimeOffset since, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey gt {cluster + "|"} and PartitionKey lt {cluster + "|~"} and LastStatus eq {EcsTaskStatus.Stopped} and StoppedAt ge {since}");
        var (entities, _) = await table.TakeAsync<TableEntity>(filter, int.MaxValue, KeyColumns, cancellationToken);
        return entities.Select(e => new TaskKey(e.GetString("Cluster"), e.RowKey)).ToList();
    }

    private async Task<IReadOnlyList<TaskRecord>> ListDeadlineRowsAsync(string filter, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var (entities, _) = await table.TakeAsync<TableEntity>(filter, int.MaxValue, DeadlineColumns, cancellationToken);
        return entities.Select(e => KeysOnly(e) with
        {
            Group = e.GetString("Group"),
            ContainerInstanceId = e.GetString("ContainerInstanceId"),
            LastStatus = e.GetString("LastStatus"),
            DesiredStatus = e.GetString("DesiredStatus"),
            CreatedAt = e.GetDateTimeOffset("CreatedAt") ?? default,
            StoppingAt = e.GetDateTimeOffset("StoppingAt"),
            StopSentAt = e.GetDateTimeOffset("StopSentAt"),
            DrainingUntil = e.GetDateTimeOffset("DrainingUntil"),
            ObservedAt = e.GetDateTimeOffset("ObservedAt"),
            PlacedAt = e.GetDateTimeOffset("PlacedAt"),
        }).ToList();
    }

    private static TaskRecord KeysOnly(TableEntity entity) => new()
    {
        Cluster = entity.GetString("Cluster"),
        Id = entity.RowKey,
        Group = "",
        TaskDefinitionArn = "",
        Family = "",
        ContainerInstanceId = "",
    };

    public static string PageKey(TaskRecord task) => PageKey(new TaskKey(task.Cluster, task.Id));

    /// <summary>The paging key after which the next page starts: <c>PartitionKey/RowKey</c>.</summary>
    public static string PageKey(TaskKey task) => $"{TaskIds.PartitionKey(task.Cluster, task.Id)}/{task.Id}";
}

/// <summary>A task as a listing names it: its cluster and id. Read it whole with <see cref="TaskStore.FindAsync"/>.</summary>
public sealed record TaskKey(string Cluster, string Id);

/// <summary>ListTasks' filters; null means "any".</summary>
public sealed record TaskFilter(
    string? Group = null,
    string? Family = null,
    string? StartedBy = null,
    string? ContainerInstanceId = null,
    string? DesiredStatus = null,
    string? LaunchType = null,
    bool NotStopped = false);
