using System.Collections.Concurrent;
using System.Diagnostics;
using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// A reconcile message: it names the service to look at (never a copy of its state), and carries the W3C
/// <c>traceparent</c> of what enqueued it, so the reconcile, and the worker's start of the tasks it places,
/// join the trace of the API call (or timer run) that asked for it.
/// </summary>
public sealed record ReconcileMessage
{
    public int V { get; init; } = 1;
    public required string Cluster { get; init; }
    public required string Service { get; init; }
    public string? TraceParent { get; init; }
}

/// <summary>
/// The <c>reconcile</c> queue. Every change that concerns a service enqueues one of these; the
/// reconcile function reads the service fresh, so duplicates and stale messages are harmless.
/// </summary>
public sealed class ReconcileQueue(StorageClients storage, QueueWake wake, TimeProvider? time = null)
{
    public const string QueueName = "reconcile";

    /// <summary>How long before its due time a delayed look counts as still ahead (it cannot run before then).</summary>
    private static readonly TimeSpan PendingMargin = TimeSpan.FromSeconds(1);

    private const int PendingPruneAbove = 10_000;

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>Per service, when the earliest delayed look this process enqueued and that has not come due yet comes due.</summary>
    private readonly ConcurrentDictionary<ServiceKey, DateTimeOffset> _pending = new();

    /// <summary>
    /// Enqueues a look at <paramref name="service"/>, visible after <paramref name="delay"/> (requeue-after).
    /// A delayed look that one this process already enqueued comes before is not enqueued again: that
    /// one cannot run before its due time, so it reads the service as it is now or later, and asks for
    /// the next look itself if one is still needed. During a rollout every reconcile that sees a task
    /// still starting asks to look again at its start deadline, ~5 minutes out; without this, a
    /// service scaled by 50 left ~45 such messages behind, each one more reconcile when it came due.
    /// </summary>
    public async Task EnqueueAsync(ServiceKey service, TimeSpan? delay, CancellationToken cancellationToken)
    {
        var later = delay is { } d && d > TimeSpan.Zero;
        var now = _time.GetUtcNow();
        var due = later ? now + delay!.Value : now;
        if (later && _pending.TryGetValue(service, out var pending) && pending - PendingMargin > now && pending <= due) return;

        var queue = await storage.QueueAsync(QueueName, cancellationToken);
        var message = TaskMessages.Serialize(new ReconcileMessage { Cluster = service.Cluster, Service = service.Name, TraceParent = Telemetry.Telemetry.TraceParent });
        await queue.SendMessageAsync(message, visibilityTimeout: later ? delay : null, cancellationToken: cancellationToken);
        // Visible now: when this process runs the reconcile function, it need not wait for its next poll. Visible
        // later: nobody announces that moment, so this process wakes its own poller then (another control plane's
        // back-off poll finds it should this one be gone by then).
        if (!later)
        {
            wake.Local(QueueName);
            return;
        }
        wake.LocalAfter(QueueName, delay!.Value, _time);
        // Due no later than the server makes it visible (it counts from its receipt of the send, after `now`).
        _pending.AddOrUpdate(service, due, (_, earlier) => earlier - PendingMargin > now && earlier < due ? earlier : due);
        if (_pending.Count > PendingPruneAbove)
        {
            foreach (var (key, at) in _pending)
            {
                if (at <= now) _pending.TryRemove(KeyValuePair.Create(key, at));
            }
        }
    }

    /// <summary>
    /// Reads a message: the service it names, and the activity of its reconcile, continuing the trace the
    /// message carries (null when nobody listens). The caller ends the activity when the reconcile is done.
    /// </summary>
    public static (ServiceKey Service, Activity? Activity) Begin(string message)
    {
        var parsed = TaskMessages.Deserialize<ReconcileMessage>(message);
        var activity = Telemetry.Telemetry.StartFrom(Telemetry.Telemetry.Source, "Reconcile", parsed.TraceParent);
        activity?.SetTag("ecs.cluster", parsed.Cluster);
        activity?.SetTag("ecs.service", parsed.Service);
        return (new ServiceKey(parsed.Cluster, parsed.Service), activity);
    }

    public static ServiceKey Parse(string message)
    {
        var parsed = TaskMessages.Deserialize<ReconcileMessage>(message);
        return new ServiceKey(parsed.Cluster, parsed.Service);
    }
}
