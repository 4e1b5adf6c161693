using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Azure;
using Microsoft.Extensions.Logging;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Reporting;

/// <summary>
/// Sends task state changes to the <c>task-events</c> queue, at most one at a time per task and
/// only when something changed. Every report costs storage transactions (send, receive, delete,
/// the task row's write), so transitional states are coalesced: PENDING goes out only when RUNNING
/// did not follow within <see cref="WorkerOptions.TransitionReportDelayMilliseconds"/>, STOPPING
/// only when STOPPED did not. Reports share messages: one sender takes every report waiting when
/// it is free (a lone report leaves at once); transitional ones wait up to
/// <see cref="WorkerOptions.TransitionReportBatchMilliseconds"/> for company.
/// </summary>
public sealed class TaskStateReporter(StorageClients storage, QueueWake wake, WorkerOptions options, TimeProvider time, ILogger<TaskStateReporter> logger)
{
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    /// <summary>Reports per message at most, and the UTF-8 bytes of their JSON: well inside a 64 KiB queue message.</summary>
    private const int MaxBatch = 32;
    private const int MaxBatchBytes = 32 * 1024;

    /// <summary>
    /// The UTF-8 bytes one report may take. A queue message holds 64 KiB; a report over this is
    /// trimmed (<see cref="Fit"/>), never refused, so one oversized report cannot stall the sender.
    /// </summary>
    public const int MaxReportBytes = 48 * 1024;

    /// <summary>Reasons are cut to this when a report must shrink (ECS's own reasons are far shorter).</summary>
    private const int MaxReasonChars = 1024;

    private sealed record Outgoing(TaskStateChange Change, string Json, bool Transitional)
    {
        public int Bytes { get; } = Encoding.UTF8.GetByteCount(Json);

        public TaskCompletionSource Sent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly Channel<Outgoing> _outbox = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });
    private Outgoing? _carried;
    private int _senderStarted;

    public TimeSpan TransitionDelay => TimeSpan.FromMilliseconds(options.TransitionReportDelayMilliseconds);

    /// <summary>The control plane to wake after a report (the latest command's <see cref="TaskCommand.ReportWake"/>).</summary>
    public string? ReportWake { get; set; }

    /// <summary>
    /// Takes a snapshot (under the task's report lock, so reports leave in the order they were
    /// observed) and sends it if <see cref="TaskStatusRules.ShouldReport"/> agrees. The snapshot
    /// function returns null when there is nothing reportable. Retries until the report is queued
    /// or <paramref name="cancellationToken"/> ends: a lost STOPPED report would lose the task.
    /// </summary>
    /// <returns>Whether a report was sent.</returns>
    public async Task<bool> PublishAsync(TaskReportState state, Func<TaskStateChange?> snapshot, CancellationToken cancellationToken)
    {
        await state.Lock.WaitAsync(cancellationToken);
        try
        {
            var change = snapshot();
            if (change is null) return false;
            var fingerprint = Fingerprint(change);
            if (!TaskStatusRules.ShouldReport(state.LastStatus, state.LastFingerprint, change.LastStatus, fingerprint)) return false;

            await SendAsync(change, transitional: change.LastStatus is EcsTaskStatus.Pending or EcsTaskStatus.Stopping, cancellationToken);
            state.Sent(change.LastStatus, fingerprint);
            logger.LogInformation("Reported {TaskArn} {LastStatus} ({Containers})", change.TaskArn, change.LastStatus,
                string.Join(", ", change.Containers.Select(c => $"{c.Name} {c.LastStatus}{(c.ExitCode is { } code ? $" exit {code}" : "")}")));
            return true;
        }
        finally
        {
            state.Lock.Release();
        }
    }

    /// <summary>
    /// After <see cref="TransitionDelay"/>, publishes a transitional state (PENDING, STOPPING) if the
    /// task is still in it: <paramref name="snapshot"/> decides, returning null when it moved on.
    /// </summary>
    public void PublishLater(TaskReportState state, Func<TaskStateChange?> snapshot, CancellationToken cancellationToken)
    {
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(TransitionDelay, time, cancellationToken);
                await PublishAsync(state, snapshot, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The worker is stopping; the restarted worker reports the current state.
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Could not send a delayed task report");
            }
        }, CancellationToken.None);
    }

    /// <summary>Opens (creates if need be) the <c>task-events</c> queue, so the first report pays no set-up.</summary>
    public Task OpenAsync(CancellationToken cancellationToken) => storage.QueueAsync(TaskMessages.TaskEventsQueue, cancellationToken);

    /// <summary>
    /// Queues one report (in a message with whatever else is waiting) and returns once it is queued;
    /// the sender retries with a capped backoff until it is. <paramref name="transitional"/> reports
    /// may wait a little for others to share their message.
    /// </summary>
    public Task SendAsync(TaskStateChange change, bool transitional, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _senderStarted, 1) == 0) _ = Task.Run(SendLoopAsync, CancellationToken.None);
        var (fitted, json) = Fit(change);
        if (!ReferenceEquals(fitted, change))
        {
            logger.LogWarning("The {LastStatus} report of {TaskArn} is over {MaxBytes} bytes; sending it trimmed ({Bindings} of {AllBindings} network bindings)",
                change.LastStatus, change.TaskArn, MaxReportBytes,
                fitted.Containers.Sum(c => c.NetworkBindings.Count), change.Containers.Sum(c => c.NetworkBindings.Count));
        }
        var outgoing = new Outgoing(fitted, json, transitional);
        _outbox.Writer.TryWrite(outgoing);
        return outgoing.Sent.Task.WaitAsync(cancellationToken);
    }

    private async Task SendLoopAsync()
    {
        var linger = TimeSpan.FromMilliseconds(options.TransitionReportBatchMilliseconds);
        while (true)
        {
            try
            {
                var batch = await NextBatchAsync(linger);
                await SendBatchAsync(batch);
                foreach (var item in batch) item.Sent.TrySetResult();
            }
            catch (Exception e)
            {
                // Never ends: a report that cannot be queued is retried inside SendBatchAsync.
                logger.LogError(e, "Task report sender failed; continuing");
            }
        }
    }

    /// <summary>Every report waiting now; when all are transitional, also those arriving within <paramref name="linger"/>.</summary>
    private async Task<List<Outgoing>> NextBatchAsync(TimeSpan linger)
    {
        var batch = new List<Outgoing>();
        var bytes = 0;
        if (_carried is { } carried) { batch.Add(carried); bytes = carried.Bytes; _carried = null; }
        else
        {
            var first = await _outbox.Reader.ReadAsync();
            batch.Add(first);
            bytes = first.Bytes;
        }
        bool Take()
        {
            while (batch.Count < MaxBatch && _outbox.Reader.TryRead(out var next))
            {
                if (bytes + next.Bytes > MaxBatchBytes) { _carried = next; return false; }
                batch.Add(next);
                bytes += next.Bytes;
            }
            return batch.Count < MaxBatch;
        }
        if (!Take() || linger <= TimeSpan.Zero) return batch;

        var until = time.GetUtcNow() + linger;
        while (batch.TrueForAll(o => o.Transitional) && time.GetUtcNow() < until)
        {
            using var timeout = new CancellationTokenSource(until - time.GetUtcNow(), time);
            try
            {
                if (!await _outbox.Reader.WaitToReadAsync(timeout.Token)) break;
            }
            catch (OperationCanceledException)
            {
                break;
            }
            if (!Take()) break;
        }
        return batch;
    }

    private async Task SendBatchAsync(List<Outgoing> batch)
    {
        var body = batch.Count == 1 ? batch[0].Json : TaskMessages.SerializeReports(batch.Select(o => o.Change));
        var delay = TimeSpan.FromMilliseconds(250);
        // A report is a fact, not a command: the control plane may apply it before its queued copy exists, so it goes
        // express ahead of the queue; the wake after the send has the queued twin collected (or handled, when the
        // express copy was lost or could not be opened).
        wake.SendExpress(ReportWake, TaskMessages.TaskEventsQueue, body, enqueued: false);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var queue = await storage.QueueAsync(TaskMessages.TaskEventsQueue, CancellationToken.None);
                await queue.SendMessageAsync(body, CancellationToken.None);
                wake.Send(ReportWake, TaskMessages.TaskEventsQueue);
                return;
            }
            catch (RequestFailedException e) when (e.Status is 400 or 413)
            {
                // Refused for good (retrying the same body would stall every later report): a batch
                // goes again one report per message; a lone report the queue will not take fails alone.
                if (batch.Count > 1)
                {
                    foreach (var single in batch) await SendBatchAsync([single]);
                    return;
                }
                logger.LogError(e, "The queue refused the {LastStatus} report of {TaskArn} ({Bytes} bytes); it is dropped", batch[0].Change.LastStatus, batch[0].Change.TaskArn, batch[0].Bytes);
                batch[0].Sent.TrySetException(e);
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Could not queue {Count} task report(s), the first {LastStatus} of {TaskArn} (attempt {Attempt}); retrying in {Delay}",
                    batch.Count, batch[0].Change.LastStatus, batch[0].Change.TaskArn, attempt, delay);
                await Task.Delay(delay, time);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
            }
        }
    }

    /// <summary>
    /// The report and its JSON, within <see cref="MaxReportBytes"/>. What must reach the control
    /// plane stays whole: the status, stop code, timestamps, every container's status and exit code.
    /// What may be cut is cut in this order until it fits: long reasons (shortened), network bindings
    /// (each container keeps the first ones, as many as fit: a host-mode port range binds thousands),
    /// then everything but each container's name, runtime id, status and exit code.
    /// </summary>
    public static (TaskStateChange Change, string Json) Fit(TaskStateChange change)
    {
        var json = TaskMessages.Serialize(change);
        if (Fits(json)) return (change, json);

        var shortened = change with
        {
            StoppedReason = Shorten(change.StoppedReason),
            Containers = change.Containers.Select(c => c with { Reason = Shorten(c.Reason) }).ToList(),
        };
        json = TaskMessages.Serialize(shortened);
        if (Fits(json)) return (shortened, json);

        // The most bindings per container that fit, by bisection (0 always leaves the smallest form).
        int low = 0, high = shortened.Containers.Select(c => c.NetworkBindings.Count).DefaultIfEmpty(0).Max();
        while (low < high)
        {
            var middle = (low + high + 1) / 2;
            if (Fits(TaskMessages.Serialize(KeepBindings(shortened, middle)))) low = middle;
            else high = middle - 1;
        }
        var capped = KeepBindings(shortened, low);
        json = TaskMessages.Serialize(capped);
        if (Fits(json)) return (capped, json);

        var bare = capped with
        {
            StoppedReason = Shorten(capped.StoppedReason, 255),
            Containers = capped.Containers.Select(c => new ContainerStateChange
            {
                Name = c.Name, RuntimeId = c.RuntimeId, LastStatus = c.LastStatus, ExitCode = c.ExitCode, Reason = Shorten(c.Reason, 255),
            }).ToList(),
        };
        return (bare, TaskMessages.Serialize(bare));

        static bool Fits(string text) => Encoding.UTF8.GetByteCount(text) <= MaxReportBytes;

        static TaskStateChange KeepBindings(TaskStateChange report, int count) => report with
        {
            Containers = report.Containers.Select(c => c.NetworkBindings.Count <= count ? c : c with { NetworkBindings = c.NetworkBindings.Take(count).ToList() }).ToList(),
        };

        static string? Shorten(string? text, int max = MaxReasonChars) => text is { } t && t.Length > max ? t[..(max - 1)] + "…" : text;
    }

    /// <summary>What a report says, without when it was observed: equal fingerprints mean nothing changed.</summary>
    private static string Fingerprint(TaskStateChange change)
    {
        var node = JsonSerializer.SerializeToNode(change, TaskMessages.Json)!.AsObject();
        node.Remove("observedAt");
        return node.ToJsonString();
    }
}

/// <summary>What was last reported for one task, and who waits for which report.</summary>
public sealed class TaskReportState
{
    private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopping = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal SemaphoreSlim Lock { get; } = new(1, 1);

    public string? LastStatus { get; private set; }

    internal string? LastFingerprint { get; private set; }

    /// <summary>Completes when the first report (of any status) was queued.</summary>
    public Task FirstReported => _first.Task;

    /// <summary>Completes when STOPPING or STOPPED was queued.</summary>
    public Task StoppingReported => _stopping.Task;

    /// <summary>Completes when STOPPED was queued.</summary>
    public Task StoppedReported => _stopped.Task;

    internal void Sent(string status, string fingerprint)
    {
        LastStatus = status;
        LastFingerprint = fingerprint;
        _first.TrySetResult();
        if (EcsTaskStatus.Rank(status) >= EcsTaskStatus.Rank(EcsTaskStatus.Stopping)) _stopping.TrySetResult();
        if (status == EcsTaskStatus.Stopped) _stopped.TrySetResult();
    }
}
