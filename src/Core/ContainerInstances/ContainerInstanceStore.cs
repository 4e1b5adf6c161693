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
public sealed partial class ContainerInstanceStore(StorageClients storage, Arns arns, TimeProvider time) : ITagStore
{
    public const string TableName = "ContainerInstances";

    /// <summary>Attempts at a read-modify-write before giving up; each lost race means another writer won.</summary>
    private const int MaxAttempts = 5;

    /// <summary>Release must not give up easily: a reservation left behind is capacity lost until someone notices.</summary>
    private const int MaxReleaseAttempts = 20;

    /// <summary>How long a deregistered instance still shows in <see cref="ListAsync"/> after its worker last spoke.</summary>
    private static readonly TimeSpan InactiveListedFor = TimeSpan.FromHours(1);

    public string ResourceType => "container-instance";

    /// <summary>A fresh instance id: 32 lowercase hex digits, as ECS's container instance ids are.</summary>
    public static string NewId() => Guid.NewGuid().ToString("N");

    /// <summary>Whether <paramref name="id"/> has the shape of an instance id (anything else names no row).</summary>
    public static bool IsId(string id) => IdPattern().IsMatch(id);

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex IdPattern();

    /// <summary>
    /// Registers <paramref name="wanted"/> (its <see cref="ContainerInstanceRecord.Id"/> chosen by the
    /// caller). A new id inserts the row ACTIVE, registered now. An existing row is a re-registration
    /// of the same host (the worker restarted): resources, agent and Docker versions and the
    /// attributes the agent reports (every <c>ecs.*</c> one, and any it sends) are replaced; custom
    /// attributes added since with PutAttributes, the reservations, the registration time and the
    /// tags (unless <paramref name="wanted"/> carries tags) are kept; it becomes ACTIVE again with a
    /// fresh heartbeat and its version goes up by one. Refusing to revive an INACTIVE instance is
    /// the caller's decision (ECS refuses; see ContainerInstanceActions).
    /// </summary>
    public async Task<ContainerInstanceRecord> RegisterAsync(ContainerInstanceRecord wanted, CancellationToken cancellationToken)
    {
        if (!IsId(wanted.Id)) throw new ArgumentException($"'{wanted.Id}' is not a container instance id.", nameof(wanted));
        var table = await storage.TableAsync(TableName, cancellationToken);
        for (var attempt = 1; ; attempt++)
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

                var reported = wanted.Attributes.Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
                // What the agent reported before and no longer does is gone (a worker restarted with
                // Worker__AllowPrivileged off must lose privileged-container); custom attributes stay.
                var kept = existing.Attributes.Where(a => !IsAgentOwned(a.Name) && !reported.Contains(a.Name));
                var registered = existing with
                {
                    Ec2InstanceId = wanted.Ec2InstanceId,
                    // A restarted agent does not undo draining: ECS keeps a DRAINING instance DRAINING.
                    Status = existing.Status == ContainerInstanceRecord.Draining ? ContainerInstanceRecord.Draining : ContainerInstanceRecord.Active,
                    StatusReason = existing.Status == ContainerInstanceRecord.Draining ? existing.StatusReason : null,
                    RegisteredCpu = wanted.RegisteredCpu,
                    RegisteredMemory = wanted.RegisteredMemory,
                    RegisteredTcpPorts = wanted.RegisteredTcpPorts,
                    RegisteredUdpPorts = wanted.RegisteredUdpPorts,
                    Attributes = [.. wanted.Attributes, .. kept],
                    Tags = wanted.Tags.Count > 0 ? wanted.Tags : existing.Tags,
                    AgentVersion = wanted.AgentVersion,
                    AgentHash = wanted.AgentHash,
                    DockerVersion = wanted.DockerVersion,
                    WakeEndpoint = wanted.WakeEndpoint ?? existing.WakeEndpoint,
                    CapacityProviderName = wanted.CapacityProviderName,
                    Owner = wanted.Owner,
                    Beat = NewBeat(),
                    LastHeartbeat = now,
                    Version = existing.Version + 1,
                };
                return await ReplaceAsync(table, registered, cancellationToken)
                    ?? throw new ConcurrentUpdateException(Arn(registered));
            }
            catch (RequestFailedException e) when (e.Status == 409 && attempt < MaxAttempts)
            {
                // Another registration of the same id inserted first: read it and re-register over it.
            }
            catch (ConcurrentUpdateException) when (attempt < MaxAttempts)
            {
                await BackoffAsync(attempt, cancellationToken);
            }
        }
    }

    /// <summary>The instance in any status (INACTIVE included), or null when there is none with that id.</summary>
    public async Task<ContainerInstanceRecord?> FindAsync(string cluster, string id, CancellationToken cancellationToken)
    {
        if (!IsId(id)) return null;
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(cluster, id, cancellationToken: cancellationToken);
        return response.HasValue ? ContainerInstanceRecord.FromEntity(response.Value!) : null;
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
    /// The ids of the cluster's DRAINING instances (whose service tasks are moved elsewhere): one
    /// partition query that returns the row keys only, usually none.
    /// </summary>
    public async Task<IReadOnlySet<string>> ListDrainingIdsAsync(string cluster, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {cluster} and Status eq {ContainerInstanceRecord.Draining}");
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var row in table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: ["RowKey"], cancellationToken: cancellationToken))
            ids.Add(row.RowKey);
        return ids;
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
        for (var attempt = 1; ; attempt++)
        {
            var current = await FindAsync(cluster, id, cancellationToken) ?? throw NotFound(cluster, id);
            var changed = change(current) with { Cluster = current.Cluster, Id = current.Id, Version = current.Version + 1, ETag = current.ETag };
            if (await ReplaceAsync(table, changed, cancellationToken) is { } saved) return saved;
            if (attempt == MaxAttempts) throw new ConcurrentUpdateException(Arn(current));
            await BackoffAsync(attempt, cancellationToken);
        }
    }

    /// <summary>
    /// Adds <paramref name="reservation"/> to the instance as <paramref name="seen"/> shows it,
    /// conditional on <paramref name="seen"/>'s ETag; the version goes up by one. Returns the
    /// updated instance, or null when the row changed since it was read (the caller re-reads and
    /// decides again; nothing was written). When <paramref name="seen"/> already holds a reservation
    /// for that task, returns <paramref name="seen"/> unchanged, so retrying a reservation is harmless.
    /// Whether the task fits is the caller's decision (<see cref="ContainerInstanceRecord.Fits(Reservation)"/>).
    /// </summary>
    public async Task<ContainerInstanceRecord?> TryReserveAsync(ContainerInstanceRecord seen, Reservation reservation, CancellationToken cancellationToken)
    {
        if (seen.HoldsReservationFor(reservation.TaskId)) return seen;
        var table = await storage.TableAsync(TableName, cancellationToken);
        var reserved = seen with { Reservations = [.. seen.Reservations, reservation], Version = seen.Version + 1 };
        return await ReplaceAsync(table, reserved, cancellationToken);
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
        for (var attempt = 1; ; attempt++)
        {
            var current = await FindAsync(cluster, id, cancellationToken);
            if (current is null || !taskIds.Any(current.HoldsReservationFor)) return;
            var released = current with
            {
                Reservations = current.Reservations.Where(r => !taskIds.Contains(r.TaskId)).ToList(),
                Version = current.Version + 1,
            };
            if (await ReplaceAsync(table, released, cancellationToken) is not null) return;
            if (attempt == MaxReleaseAttempts) throw new ConcurrentUpdateException(Arn(current));
            await BackoffAsync(attempt, cancellationToken);
        }
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
    /// another worker registered it since.
    /// </summary>
    public async Task HeartbeatAsync(string cluster, string id, int runningTasksCount, int pendingTasksCount, string? owner, CancellationToken cancellationToken)
    {
        if (!IsId(id)) throw NotFound(cluster, id);
        var table = await storage.TableAsync(TableName, cancellationToken);
        if (owner is not null)
        {
            var seen = await table.GetEntityIfExistsAsync<TableEntity>(cluster, id, ["Owner"], cancellationToken);
            if (!seen.HasValue) throw NotFound(cluster, id);
            if (seen.Value!.GetString("Owner") is { Length: > 0 } current && current != owner)
                throw new InstanceOwnedElsewhereException(Arn(cluster, id), current);
        }
        var beat = new TableEntity(cluster, id)
        {
            ["Beat"] = NewBeat(),
            ["LastHeartbeat"] = Now(),
            ["RunningTasksCount"] = runningTasksCount,
            ["PendingTasksCount"] = pendingTasksCount,
        };
        try
        {
            // ETag.All sends If-Match: *, so a missing row is a 404, never an upsert of a partial row.
            await table.UpdateEntityAsync(beat, ETag.All, TableUpdateMode.Merge, cancellationToken);
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

    public async Task<IReadOnlyList<Tag>> GetTagsAsync(string arn, CancellationToken cancellationToken)
    {
        var (cluster, id) = KeyFromArn(arn);
        var instance = await FindAsync(cluster, id, cancellationToken);
        return instance?.Tags ?? throw new ResourceNotFoundException("The specified container instance does not exist.");
    }

    public async Task UpdateTagsAsync(string arn, Func<IReadOnlyList<Tag>, IReadOnlyList<Tag>> change, CancellationToken cancellationToken)
    {
        var (cluster, id) = KeyFromArn(arn);
        if (await FindAsync(cluster, id, cancellationToken) is null)
            throw new ResourceNotFoundException("The specified container instance does not exist.");
        // Rows are never deleted, so the instance found above is still there to update.
        await UpdateAsync(cluster, id, i => i with { Tags = change(i.Tags) }, cancellationToken);
    }

    private (string Cluster, string Id) KeyFromArn(string arn)
    {
        if (arns.ResourcePart(arn, ResourceType) is { } part && part.Split('/') is [var cluster, var id]
            && arn == arns.ContainerInstance(cluster, id))
            return (cluster, id);
        throw new InvalidParameterException("The ARN provided is invalid.");
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

    /// <summary>A short jittered pause before retrying a lost race (real time: this is not business time).</summary>
    private static Task BackoffAsync(int attempt, CancellationToken cancellationToken)
        => Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 10 + 15 * attempt)), cancellationToken);

    /// <summary>Attributes only an agent reports: ECS's <c>ecs.*</c> and legacy <c>com.amazonaws.ecs.*</c>, and the worker's <c>ecs-worker.*</c>.</summary>
    private static bool IsAgentOwned(string name)
        => name.StartsWith("ecs.", StringComparison.Ordinal)
           || name.StartsWith("com.amazonaws.ecs.", StringComparison.Ordinal)
           || name.StartsWith("ecs-worker.", StringComparison.Ordinal);
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
