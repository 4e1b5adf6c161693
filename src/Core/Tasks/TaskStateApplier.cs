using Microsoft.Extensions.Logging;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;

namespace Serverless.Core.Tasks;

/// <summary>
/// Applies a worker's <see cref="TaskStateChange"/> to the task row: level-triggered and
/// idempotent. A late or duplicated report never moves a task backwards, and a STOPPED task
/// frees its reservation (again, harmlessly, on a duplicate).
/// </summary>
public sealed class TaskStateApplier(
    TaskStore tasks, ContainerInstanceStore instances, TaskLauncher launcher, ReconcileQueue reconcile, Arns arns, TimeProvider time,
    ILogger<TaskStateApplier> logger)
{
    /// <summary>
    /// Applies one message's reports. Each is a conditional merge that never moves a task backwards,
    /// so their order does not matter; reports of tasks in one partition (one group's) are read with
    /// one query and written with one batch, and stopped tasks on one instance free their
    /// reservations in one write. If anything fails the message is delivered again, and what was
    /// already applied changes nothing the second time.
    /// </summary>
    public async Task ApplyAsync(IReadOnlyList<TaskStateChange> changes, CancellationToken cancellationToken)
    {
        var reports = new List<(string Cluster, string TaskId, TaskStateChange Change)>();
        foreach (var change in changes)
        {
            if (arns.ResourcePath(change.TaskArn, "task") is [var cluster, var taskId] && TaskIds.IsValid(taskId))
                reports.Add((cluster, taskId, change));
            else
                logger.LogWarning("Ignoring a state change for {TaskArn}: not a task ARN", change.TaskArn);
        }
        var now = time.GetUtcNow();
        var applied = (await Task.WhenAll(reports
            .GroupBy(r => (r.Cluster, Partition: TaskIds.PartitionKey(r.Cluster, r.TaskId)))
            .Select(async partition =>
            {
                // A worker never puts two reports of one task in a message; should it, the first applies now, the next on redelivery.
                var byId = partition.GroupBy(r => r.TaskId).ToDictionary(g => g.Key, g => g.First().Change);
                var stored = byId.Count == 1
                    ? await tasks.UpdateAsync(partition.Key.Cluster, byId.Keys.Single(), t => Merge(t, byId[t.Id], now), cancellationToken) is { } one ? [one] : []
                    : await tasks.UpdateManyAsync(partition.Key.Cluster, byId.Keys, t => Merge(t, byId[t.Id], now), cancellationToken);
                foreach (var missing in byId.Keys.Except(stored.Select(t => t.Id)))
                    await StopUnknownAsync(partition.Key.Cluster, byId[missing], cancellationToken);
                return stored.Select(t => (Task: t, Change: byId[t.Id]));
            }))).SelectMany(r => r).ToList();

        foreach (var (task, change) in applied)
        {
            // One span per applied report, in the trace of the worker's start (and so of the API call).
            using var activity = Telemetry.Telemetry.StartFrom(Telemetry.Telemetry.Source, "ApplyTaskState", change.TraceParent);
            activity?.SetTag("ecs.task_arn", change.TaskArn).SetTag("ecs.last_status", task.LastStatus);
            logger.LogInformation("{TaskArn} is {LastStatus} (desired {DesiredStatus}), reported {ReportedStatus}",
                change.TaskArn, task.LastStatus, task.DesiredStatus, change.LastStatus);
        }
        await Task.WhenAll(applied.Where(a => a.Task.IsStopped)
            .GroupBy(a => (a.Task.Cluster, a.Task.ContainerInstanceId))
            .Select(g => instances.ReleaseAsync(g.Key.Cluster, g.Key.ContainerInstanceId, g.Select(a => a.Task.Id).ToList(), cancellationToken)));
        // A service's task started or stopped: its service decides what follows (replace it, advance
        // a rollout). PENDING and STOPPING change nothing a reconcile would act on, so they cost none.
        foreach (var service in applied
                     .Where(a => a.Task.ServiceName is not null && a.Change.LastStatus is EcsTaskStatus.Running or EcsTaskStatus.Stopped)
                     .Select(a => new ServiceKey(a.Task.Cluster, a.Task.ServiceName!)).Distinct())
            await reconcile.EnqueueAsync(service, null, cancellationToken);
    }

    /// <summary>
    /// A report of a task that has no row: a task that still runs is told to stop (a row is written
    /// before its Start is sent, so a worker runs a task without one only after something was lost);
    /// a STOPPED one is the answer to that Stop, or the late report of a task long removed.
    /// </summary>
    private async Task StopUnknownAsync(string cluster, TaskStateChange change, CancellationToken cancellationToken)
    {
        if (change.LastStatus == EcsTaskStatus.Stopped || arns.ParseClusterScoped(change.ContainerInstanceArn, "container-instance") is not { } instance)
        {
            logger.LogWarning("Ignoring a state change for unknown task {TaskArn}", change.TaskArn);
            return;
        }
        logger.LogWarning("{TaskArn} runs on {ContainerInstanceArn} but has no row: telling its worker to stop it", change.TaskArn, change.ContainerInstanceArn);
        await launcher.SendStopOfUnknownAsync(cluster, instance.Id, change.TaskArn, cancellationToken);
    }

    /// <summary>
    /// The task after <paramref name="change"/>, or null when the report adds nothing: statuses
    /// only move forward, timestamps are set once, health follows the newest observation.
    /// </summary>
    public static TaskRecord? Merge(TaskRecord task, TaskStateChange change, DateTimeOffset now)
    {
        // A stopped task is final: a later STOPPED report may only fill in exit codes it lacked.
        if (task.IsStopped)
        {
            if (change.LastStatus != EcsTaskStatus.Stopped) return null;
            var completed = task with
            {
                Containers = task.Containers.Select(c => change.Containers.FirstOrDefault(r => r.Name == c.Name) is { } report
                    ? c with { ExitCode = c.ExitCode ?? report.ExitCode, Reason = c.Reason ?? report.Reason, RuntimeId = c.RuntimeId ?? report.RuntimeId }
                    : c).ToList(),
            };
            completed = completed with { Attachment = task.Attachment?.Apply(change.NetworkInterface, taskStopped: true) };
            return Same(task, completed) ? null : completed;
        }

        var newer = task.ObservedAt is null || change.ObservedAt >= task.ObservedAt;
        var forward = EcsTaskStatus.IsForward(task.LastStatus, change.LastStatus);
        var stopping = forward && change.LastStatus == EcsTaskStatus.Stopped;

        var containers = task.Containers.Select(c =>
        {
            var report = change.Containers.FirstOrDefault(r => r.Name == c.Name);
            var merged = report is null ? c : c with
            {
                LastStatus = EcsTaskStatus.IsForward(c.LastStatus, report.LastStatus) ? report.LastStatus : c.LastStatus,
                RuntimeId = c.RuntimeId ?? report.RuntimeId,
                ExitCode = c.ExitCode ?? report.ExitCode,
                Reason = c.Reason ?? report.Reason,
                ImageDigest = c.ImageDigest ?? report.ImageDigest,
                HealthStatus = newer && report.HealthStatus is not null ? report.HealthStatus : c.HealthStatus,
                NetworkBindings = report.NetworkBindings.Count > 0 && c.NetworkBindings.Count == 0 ? report.NetworkBindings : c.NetworkBindings,
            };
            // A stopped task has no running containers, whatever the last report said of each.
            return stopping && merged.LastStatus != EcsTaskStatus.Stopped ? merged with { LastStatus = EcsTaskStatus.Stopped } : merged;
        }).ToList();

        var merged = task with
        {
            LastStatus = forward ? change.LastStatus : task.LastStatus,
            Containers = containers,
            PullStartedAt = task.PullStartedAt ?? change.PullStartedAt,
            PullStoppedAt = task.PullStoppedAt ?? change.PullStoppedAt,
            StartedAt = task.StartedAt ?? change.StartedAt,
            HealthStatus = newer && change.HealthStatus is not null ? change.HealthStatus : task.HealthStatus,
            ObservedAt = newer ? change.ObservedAt : task.ObservedAt,
            Attachment = task.Attachment?.Apply(change.NetworkInterface, stopping),
        };
        if (stopping)
        {
            merged = merged with
            {
                DesiredStatus = EcsTaskStatus.Stopped,
                StoppingAt = task.StoppingAt ?? now,
                StoppedAt = now,
                ExecutionStoppedAt = task.ExecutionStoppedAt ?? change.ExecutionStoppedAt ?? now,
                // What the user or the control plane decided first (StopTask's reason) stands.
                StopCode = task.StopCode ?? change.StopCode,
                StoppedReason = task.StoppedReason ?? change.StoppedReason,
            };
        }
        else if (forward && change.LastStatus == EcsTaskStatus.Stopping)
        {
            merged = merged with { StoppingAt = task.StoppingAt ?? now };
        }
        return Same(task, merged) ? null : merged;
    }

    // A task's first report is never "nothing new", whatever it says: it is the worker's
    // acknowledgement of the Start (ObservedAt set), which the start deadline reads.
    private static bool Same(TaskRecord a, TaskRecord b)
        => a with { Containers = [], ObservedAt = null } == b with { Containers = [], ObservedAt = null }
           && (a.ObservedAt is not null || b.ObservedAt is null)
           && a.Containers.SequenceEqual(b.Containers, ContainerComparer.Instance);

    private sealed class ContainerComparer : IEqualityComparer<TaskContainer>
    {
        public static readonly ContainerComparer Instance = new();

        public bool Equals(TaskContainer? x, TaskContainer? y)
            => x is not null && y is not null
               && x with { NetworkBindings = [] } == y with { NetworkBindings = [] }
               && x.NetworkBindings.SequenceEqual(y.NetworkBindings);

        public int GetHashCode(TaskContainer obj) => obj.Name.GetHashCode(StringComparison.Ordinal);
    }
}
