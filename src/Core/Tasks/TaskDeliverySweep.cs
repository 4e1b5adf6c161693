using Microsoft.Extensions.Logging;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;

namespace Serverless.Core.Tasks;

/// <summary>
/// The timer's look at every task's commands, for what no event announces (<see cref="TaskDeadlines"/>):
/// <list type="bullet">
/// <item>a task told to stop that has not stopped gets Stop again once it is due (a lost Stop);</item>
/// <item>a task no worker acknowledged by its start deadline is recorded STOPPED, its reservation
/// freed and Stop sent, in case a worker holds its Start after all (a RunTask interrupted after
/// placement, a Start whose send had no clear answer); its service is told;</item>
/// <item>a reservation whose task row never appeared (a control plane that crashed between
/// reserving and inserting), or whose task has stopped, is released after a grace period.</item>
/// </list>
/// Level-triggered: each decision reads the row again and writes conditionally, so two control
/// planes sweeping at once, or a report arriving meanwhile, change nothing twice.
/// </summary>
public sealed class TaskDeliverySweep(
    ClusterStore clusters,
    ContainerInstanceStore instances,
    TaskStore tasks,
    TaskLauncher launcher,
    ReconcileQueue reconcile,
    Arns arns,
    EcsOptions options,
    TimeProvider time,
    ILogger<TaskDeliverySweep> logger)
{
    private readonly TimeSpan _startDeadline = TimeSpan.FromSeconds(options.TaskStartDeadlineSeconds);
    private readonly TimeSpan _orphanGrace = TimeSpan.FromSeconds(options.OrphanReservationGraceSeconds);

    public Task SweepAsync(CancellationToken cancellationToken) => SweepAsync(null, cancellationToken);

    /// <summary>Every ACTIVE cluster; with <paramref name="shared"/>, on the reads the minute's other sweep makes too.</summary>
    public Task SweepAsync(SweepReads.Round? shared, CancellationToken cancellationToken)
        => SweepReads.ForEachActiveClusterAsync(clusters, shared, SweepClusterAsync, cancellationToken);

    // Per cluster: when this process's last complete sweep of it began.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _sweptAt = new(StringComparer.Ordinal);

    // Per cluster: reservations this process has seen held by a live task (task id -> instance id).
    // Such a reservation becomes an orphan only when its task stops, which ListStoppedSinceAsync shows.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, System.Collections.Concurrent.ConcurrentDictionary<string, string>> _heldByLive = new(StringComparer.Ordinal);

    // Per cluster: when this process last read every live task of it.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _fullAt = new(StringComparer.Ordinal);

    /// <summary>How often a sweep still reads every live task and checks every old reservation again, whatever it has seen.</summary>
    public static readonly TimeSpan FullSweepEvery = TimeSpan.FromHours(1);

    /// <summary>How far back, before the last sweep began, stopped tasks are looked at again (writers' clocks differ).</summary>
    private static readonly TimeSpan StoppedOverlap = TimeSpan.FromMinutes(2);

    /// <summary>
    /// One cluster. The first sweep of a cluster in this process, and one every <see cref="FullSweepEvery"/>,
    /// reads every live task (rows written before the sweep's columns existed are found only that way); the others read only the
    /// tasks that are late (<see cref="TaskStore.ListDeliveryDueAsync"/>) and the tasks stopped since
    /// the last sweep, so a sweep's cost follows what is late or changed, not the cluster's size. An
    /// old reservation is checked against its task once; after that it is checked again only when
    /// its task stops.
    /// </summary>
    public Task SweepClusterAsync(string cluster, CancellationToken cancellationToken) => SweepClusterAsync(cluster, null, cancellationToken);

    private async Task SweepClusterAsync(string cluster, SweepReads.Round? shared, CancellationToken cancellationToken)
    {
        var began = time.GetUtcNow();
        var last = _sweptAt.TryGetValue(cluster, out var at) && _fullAt.TryGetValue(cluster, out var full) && began - full < FullSweepEvery
            ? at : (DateTimeOffset?)null;
        var held = _heldByLive.GetOrAdd(cluster, _ => new(StringComparer.Ordinal));
        if (last is null) held.Clear();

        // Instances before tasks: a reservation read here whose task is inserted after the task scan
        // is younger than the grace period, so it is not taken for an orphan.
        IReadOnlyList<ContainerInstanceRecord> hosts;
        if (shared is null)
        {
            hosts = await instances.ListAsync(cluster, cancellationToken);
        }
        else
        {
            // Read by the health sweep of this minute, if it came first: still before the task scan below.
            (hosts, var readAt) = await shared.InstancesAsync(cluster, cancellationToken);
            if (readAt < began) began = readAt;
        }
        IReadOnlyList<TaskRecord> live;
        if (last is { } since)
        {
            // The late tasks and those stopped since the last sweep: one query.
            var (due, stoppedSince) = await tasks.ListDeliveryDueAndStoppedSinceAsync(cluster, began - _startDeadline, began, since - StoppedOverlap, cancellationToken);
            foreach (var stopped in stoppedSince) held.TryRemove(stopped.Id, out _);
            live = due;
        }
        else
        {
            live = await tasks.ListLiveAsync(cluster, cancellationToken);
        }
        var now = time.GetUtcNow();

        var services = new HashSet<string>(StringComparer.Ordinal);
        foreach (var task in live)
        {
            if (TaskDeadlines.StartIsOverdue(task, now, _startDeadline))
            {
                if (await ExpireAsync(cluster, task.Id, now, cancellationToken) && task.ServiceName is { } service)
                    services.Add(service);
            }
            else if (TaskDeadlines.StopIsDue(task, now))
            {
                await launcher.ResendStopIfDueAsync(task, cancellationToken);
            }
        }

        // A full scan also shows a live task whose instance holds no reservation for it; between
        // full scans, an instance whose worker reports more tasks than it holds reservations for
        // has its tasks read to find it.
        var unreservedCandidates = last is null
            ? live
            : (await Task.WhenAll(hosts.Where(ReportsMoreThanReserved).Select(h => tasks.ListForInstanceAsync(cluster, h.Id, cancellationToken)))).SelectMany(t => t);
        foreach (var task in unreservedCandidates.Where(t => Unreserved(t, hosts, now)).ToList())
            if (await StopUnreservedAsync(cluster, task, now, cancellationToken) && task.ServiceName is { } service)
                services.Add(service);

        // A full scan shows which tasks are live; otherwise what is held is what was seen live before.
        var liveIds = last is null ? live.Select(t => t.Id).ToHashSet(StringComparer.Ordinal) : null;
        var reserved = new HashSet<string>(StringComparer.Ordinal);
        foreach (var host in hosts)
        {
            foreach (var r in host.Reservations) reserved.Add(r.TaskId);
            var old = host.Reservations
                .Where(r => !held.ContainsKey(r.TaskId) && r.ReservedAt is { } at && at + _orphanGrace <= now)
                .Where(r => liveIds is null || !liveIds.Contains(r.TaskId))
                .Select(r => r.TaskId).ToList();
            if (liveIds is not null)
                foreach (var r in host.Reservations.Where(r => liveIds.Contains(r.TaskId))) held[r.TaskId] = host.Id;
            if (old.Count == 0) continue;
            // Looked at again one by one: a task stopped or inserted since the scan keeps what is true of it now.
            var found = await tasks.FindManyAsync(cluster, old, cancellationToken);
            foreach (var (id, task) in found)
                if (!task.IsStopped) held[id] = host.Id;
            var orphans = old.Where(id => found.GetValueOrDefault(id) is not { } task || task.IsStopped).ToList();
            if (orphans.Count == 0) continue;
            await instances.ReleaseAsync(cluster, host.Id, orphans, cancellationToken);
            logger.LogWarning("Released {Count} reservation(s) on {InstanceArn} whose tasks do not exist or have stopped: {TaskIds}",
                orphans.Count, arns.ContainerInstance(cluster, host.Id), string.Join(" ", orphans));
        }
        // Forget what no instance holds any more (released, or its instance gone).
        foreach (var id in held.Keys)
            if (!reserved.Contains(id)) held.TryRemove(id, out _);

        foreach (var service in services)
            await reconcile.EnqueueAsync(new ServiceKey(cluster, service), null, cancellationToken);
        _sweptAt[cluster] = began;
        if (last is null) _fullAt[cluster] = began;
    }

    /// <summary>The stop reason of a task found running without a reservation (see <see cref="StopUnreservedAsync"/>).</summary>
    public const string UnreservedReason = "Task stopped: its placement did not complete (no resources were reserved for it on its container instance).";

    // The worker's last heartbeat counts more tasks on it than the instance holds reservations for:
    // one of them may run unaccounted for (also, briefly, a task stopped whose containers still stop).
    private static bool ReportsMoreThanReserved(ContainerInstanceRecord host)
        => host.RunningTasksCount + host.PendingTasksCount > host.Reservations.Count;

    // Placed on an instance (not waiting for capacity), placed longer ago than the grace period, and
    // that instance, as read before the tasks, holds no reservation for it.
    private bool Unreserved(TaskRecord task, IReadOnlyList<ContainerInstanceRecord> hosts, DateTimeOffset now)
        => !task.IsStopped && task.ContainerInstanceId.Length > 0 && (task.PlacedAt ?? task.CreatedAt) + _orphanGrace <= now
           && hosts.FirstOrDefault(h => h.Id == task.ContainerInstanceId) is { } host && !host.HoldsReservationFor(task.Id);

    /// <summary>
    /// A live task whose instance holds no reservation for it: a RunTask (or a reconcile) inserts a
    /// task's row beside its reservation, and a control plane that died between the two, or a lost
    /// race whose row could not be deleted, leaves a row without one. It was never answered (the
    /// answer is recorded after both) and got no Start, so the start deadline stops it; but a worker
    /// that restarts meanwhile starts the tasks placed on it, and then nothing accounts for what it
    /// uses. Such a task is stopped (it is nobody's: a retry of its RunTask placed another) and its
    /// service told. Checked on the instance read again, just before.
    /// </summary>
    private async Task<bool> StopUnreservedAsync(string cluster, TaskRecord task, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (await instances.FindAsync(cluster, task.ContainerInstanceId, cancellationToken) is not { } instance || instance.HoldsReservationFor(task.Id)) return false;
        var stopped = false;
        var updated = await tasks.UpdateAsync(cluster, task.Id, t =>
        {
            stopped = !t.IsStopped && t.ContainerInstanceId == task.ContainerInstanceId;
            return stopped ? t.RecordStopped("TaskFailedToStart", UnreservedReason, now) : null;
        }, cancellationToken);
        if (updated is null || !stopped) return false;
        logger.LogWarning("Stopped {TaskArn}: {InstanceId} holds no reservation for it", arns.Task(cluster, task.Id), task.ContainerInstanceId);
        try
        {
            await launcher.SendStopAsync(updated, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(e, "Could not send Stop to {TaskArn}", arns.Task(cluster, task.Id));
        }
        return true;
    }

    /// <summary>Records an unacknowledged task STOPPED, sends Stop, frees its reservation; false when it was acknowledged or stopped meanwhile.</summary>
    private async Task<bool> ExpireAsync(string cluster, string taskId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var expired = false;
        var task = await tasks.UpdateAsync(cluster, taskId, t =>
        {
            var next = TaskDeadlines.Expire(t, now, _startDeadline);
            expired = next is not null;
            return next;
        }, cancellationToken);
        if (task is null || !expired) return false;

        logger.LogWarning("Stopped {TaskArn}: its container instance {InstanceId} did not acknowledge it within {Deadline}",
            arns.Task(cluster, taskId), task.ContainerInstanceId, _startDeadline);
        try
        {
            // A worker that has the Start after all stops the task (or refuses to start it, the row being STOPPED).
            await launcher.SendStopAsync(task, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(e, "Could not send Stop to {TaskArn}; a worker holding its Start refuses it, the task being STOPPED", arns.Task(cluster, taskId));
        }
        await instances.ReleaseAsync(cluster, task.ContainerInstanceId, taskId, cancellationToken);
        return true;
    }
}
