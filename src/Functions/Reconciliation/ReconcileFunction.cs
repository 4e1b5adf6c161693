using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Reconciliation;

namespace Serverless.Functions.Reconciliation;

/// <summary>
/// Reconciles the service a message names (queue <c>reconcile</c>), one run at a time per service in this process
/// (<see cref="ReconcileRuns"/>); "look again in T" becomes a delayed message.
/// </summary>
public sealed class ReconcileFunction(ReconcileRuns runs, ReconcileQueue queue)
{
    [Function("Reconcile")]
    public async Task Run([QueueTrigger(ReconcileQueue.QueueName)] string message, CancellationToken cancellationToken)
    {
        // In the trace of what enqueued the message: the worker's start of a task placed here joins it too.
        var (key, activity) = ReconcileQueue.Begin(message);
        using (activity)
        {
            var result = await runs.ReconcileAsync(key, cancellationToken);
            if (result.RequeueAfter is { } delay) await queue.EnqueueAsync(key, delay, cancellationToken);
        }
    }
}
