namespace Serverless.Core.Tasks;

/// <summary>
/// What no event announces about one task, as plain decisions over its row: a Stop that never
/// arrived (the task is desired STOPPED and has not stopped), and a Start its worker never
/// acknowledged (no report was ever applied). Whoever looks periodically (a service's reconcile,
/// the <see cref="TaskDeliverySweep"/>) asks these and acts; the same row always gives the same answer.
/// </summary>
public static class TaskDeadlines
{
    /// <summary>
    /// Stop is sent again this long after it was last sent. A worker takes a repeated Stop as a
    /// no-op (it is stopping or has stopped the task, or reports an unknown task STOPPED), so this
    /// only bounds the queue traffic a slow stop costs.
    /// </summary>
    public static readonly TimeSpan StopResendAfter = TimeSpan.FromSeconds(60);

    /// <summary>
    /// By default, a task whose worker has not reported on it this long after it was placed is
    /// stopped and its reservation freed: its Start was lost (RunTask interrupted after placement, a
    /// send that failed or timed out). A worker that takes a Start acknowledges it within seconds.
    /// <c>Ecs__TaskStartDeadlineSeconds</c> sets it.
    /// </summary>
    public static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(5);

    /// <summary>
    /// By default, a reservation whose task row does not exist (a control plane that crashed between
    /// reserving and inserting) is released once it is this old: long enough that an insert still
    /// under way (storage retries included) has landed. <c>Ecs__OrphanReservationGraceSeconds</c> sets it.
    /// </summary>
    public static readonly TimeSpan OrphanReservationGrace = TimeSpan.FromMinutes(5);

    public const string StartDeadlineReason = "Task was not acknowledged by its container instance within the start deadline.";

    /// <summary>Whether the task should be sent Stop (again) now.</summary>
    public static bool StopIsDue(TaskRecord task, DateTimeOffset now)
        => NextStopAt(task) is { } due && due <= now;

    /// <summary>
    /// When Stop is next due for a task told to stop that has not stopped: when its draining ends if
    /// none was sent yet, else a resend; null for any other task.
    /// </summary>
    public static DateTimeOffset? NextStopAt(TaskRecord task)
        => task.DesiredStatus != EcsTaskStatus.Stopped || task.IsStopped ? null
            : task is { StopSentAt: null, DrainingUntil: { } drained } ? drained
            : (task.StopSentAt ?? task.StoppingAt ?? task.CreatedAt) + StopResendAfter;

    /// <summary>Whether the worker has reported on the task at least once (its first report sets <see cref="TaskRecord.ObservedAt"/>).</summary>
    public static bool IsAcknowledged(TaskRecord task) => task.ObservedAt is not null;

    /// <summary>
    /// When the start deadline of a task whose worker has not reported on it yet runs from (its
    /// placement); null for a task that cannot be overdue (acknowledged, stopped, waiting for capacity).
    /// </summary>
    public static DateTimeOffset? AwaitingAckSince(TaskRecord task)
        => !task.IsStopped && !task.IsWaitingForCapacity && !IsAcknowledged(task) ? task.PlacedAt ?? task.CreatedAt : null;

    /// <summary>Whether the task's start deadline has passed with no word from its worker.</summary>
    /// A task waiting for capacity has no worker to hear from yet: its wait is bounded by the capacity loop instead.
    public static bool StartIsOverdue(TaskRecord task, DateTimeOffset now, TimeSpan deadline)
        => AwaitingAckSince(task) is { } since && since + deadline <= now;

    /// <summary>
    /// The task recorded STOPPED because its start deadline passed unacknowledged: the control
    /// plane decides it, as it does for a lost instance, since no worker will report on it; the
    /// caller sends Stop in case a worker has the Start after all, and frees the reservation.
    /// </summary>
    public static TaskRecord? Expire(TaskRecord task, DateTimeOffset now, TimeSpan deadline)
        => StartIsOverdue(task, now, deadline) ? task.RecordStopped("TaskFailedToStart", StartDeadlineReason, now) : null;
}
