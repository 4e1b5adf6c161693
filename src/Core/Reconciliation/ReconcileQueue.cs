using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;

namespace Serverless.Core.Reconciliation;

/// <summary>A reconcile message: it names the service to look at, and nothing else.</summary>
public sealed record ReconcileMessage
{
    public int V { get; init; } = 1;
    public required string Cluster { get; init; }
    public required string Service { get; init; }
}

/// <summary>
/// The <c>reconcile</c> queue. Every change that concerns a service enqueues one of these; the
/// reconcile function reads the service fresh, so duplicates and stale messages are harmless.
/// </summary>
public sealed class ReconcileQueue(StorageClients storage, QueueWake wake, TimeProvider? time = null)
{
    public const string QueueName = "reconcile";

    /// <summary>Enqueues a look at <paramref name="service"/>, visible after <paramref name="delay"/> (requeue-after).</summary>
    public async Task EnqueueAsync(ServiceKey service, TimeSpan? delay, CancellationToken cancellationToken)
    {
        var queue = await storage.QueueAsync(QueueName, cancellationToken);
        var message = TaskMessages.Serialize(new ReconcileMessage { Cluster = service.Cluster, Service = service.Name });
        var later = delay is { } d && d > TimeSpan.Zero;
        await queue.SendMessageAsync(message, visibilityTimeout: later ? delay : null, cancellationToken: cancellationToken);
        // Visible now: when this process runs the reconcile function, it need not wait for its next poll. Visible
        // later: nobody announces that moment, so this process wakes its own poller then (another control plane's
        // back-off poll finds it should this one be gone by then).
        if (!later) wake.Local(QueueName);
        else wake.LocalAfter(QueueName, delay!.Value, time ?? TimeProvider.System);
    }

    public static ServiceKey Parse(string message)
    {
        var parsed = TaskMessages.Deserialize<ReconcileMessage>(message);
        return new ServiceKey(parsed.Cluster, parsed.Service);
    }
}
