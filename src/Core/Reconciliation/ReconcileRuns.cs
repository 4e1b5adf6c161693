using Serverless.Core.Services;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// One reconcile of a service at a time in this process, as controller-runtime's work queue never hands one key to
/// two workers at once. A message for a service whose reconcile is running waits for the run after it, which starts
/// once the running one has ended and so reads everything that was written before the message was sent; every
/// message that arrives meanwhile shares that same run. A burst of reports for one service (fifty tasks starting)
/// then costs a few reconciles rather than one each, and they no longer race each other for the service row.
/// </summary>
/// <remarks>
/// A message is settled only once the run that covers it has ended, so a process that dies meanwhile leaves it on
/// the queue. Control planes in other processes still reconcile the same service at once; the service row's lease
/// and conditional writes (<see cref="ServiceLease"/>) keep that safe.
/// </remarks>
public sealed class ReconcileRuns(Func<ServiceKey, CancellationToken, Task<ReconcileResult>> reconcile)
{
    public ReconcileRuns(ServiceReconciler reconciler) : this(reconciler.ReconcileAsync)
    {
    }

    private readonly Lock _gate = new();
    private readonly Dictionary<ServiceKey, Slot> _slots = [];

    private sealed class Slot
    {
        /// <summary>The run in progress, or a completed task when none is.</summary>
        public Task Running = Task.CompletedTask;

        /// <summary>The run after it, not started yet, shared by every message that arrives until it starts.</summary>
        public Task<ReconcileResult>? Next;

        /// <summary>Messages waiting on this slot; the slot goes when the last one is done.</summary>
        public int Waiting;
    }

    /// <summary>
    /// Reconciles <paramref name="key"/> in a run that starts after this call: the result, with the look-again it asks
    /// for, to the message that started the run; <see cref="ReconcileResult.Done"/> to the messages that shared it
    /// (their look-again is the starter's, and enqueueing it once is enough).
    /// </summary>
    public async Task<ReconcileResult> ReconcileAsync(ServiceKey key, CancellationToken cancellationToken)
    {
        Slot slot;
        Task<ReconcileResult> run;
        bool started;
        lock (_gate)
        {
            if (!_slots.TryGetValue(key, out slot!)) _slots[key] = slot = new Slot();
            slot.Waiting++;
            started = slot.Next is null;
            // Started on the thread pool: the run must not start (and clear Next) before Next is set here.
            run = slot.Next ??= Task.Run(() => RunAfterAsync(key, slot, slot.Running, cancellationToken), CancellationToken.None);
        }
        try
        {
            var result = await run.WaitAsync(cancellationToken);
            return started ? result : ReconcileResult.Done;
        }
        finally
        {
            lock (_gate)
            {
                if (--slot.Waiting == 0) _slots.Remove(key);
            }
        }
    }

    private async Task<ReconcileResult> RunAfterAsync(ServiceKey key, Slot slot, Task previous, CancellationToken cancellationToken)
    {
        try
        {
            await previous;
        }
        catch
        {
            // The previous run's failure is its own messages' to report.
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            // From here on a new message waits for the run after this one: this one may have read the service already.
            slot.Next = null;
            slot.Running = done.Task;
        }
        try
        {
            return await reconcile(key, cancellationToken);
        }
        finally
        {
            done.SetResult();
        }
    }
}
