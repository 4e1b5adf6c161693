using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Registration;

/// <summary>
/// Tells the control plane the worker is alive, with its RUNNING and PENDING task counts: every
/// <see cref="WorkerOptions.HeartbeatSeconds"/>, and a second after the counts change (one write for
/// whatever changed in that second: a burst of task starts, or one task's PENDING and RUNNING). An
/// instance row that vanished is registered again.
/// </summary>
public sealed class Heartbeat(
    ContainerInstanceStore store, InstanceRegistration registration, TaskRunner runner, WorkerIdentity identity,
    WorkerOptions options, StorageClock clock, TimeProvider time, ILogger<Heartbeat> logger)
{
    public static readonly TimeSpan Debounce = TimeSpan.FromSeconds(1);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var changed = new SemaphoreSlim(0, 1);
        void OnCountsChanged()
        {
            try
            {
                if (changed.CurrentCount == 0) changed.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already signalled.
            }
        }
        runner.CountsChanged += OnCountsChanged;
        try
        {
            var interval = TimeSpan.FromSeconds(Math.Max(1, options.HeartbeatSeconds));
            (int Running, int Pending)? sent = null;
            var lastBeat = DateTimeOffset.MinValue;
            while (!cancellationToken.IsCancellationRequested)
            {
                var counts = (runner.RunningCount, runner.PendingCount);
                var due = time.GetUtcNow() - lastBeat >= interval;
                if (due || counts != sent)
                {
                    if (!due)
                    {
                        // A change waits a second for company, also after a long quiet: a launch's Start
                        // changes the counts while its container is being created, and a beat then would
                        // put three storage calls (the reservation just changed the row's ETag: a refused
                        // merge, the owner check, the merge) beside Docker's create and start, and a second
                        // beat after it for RUNNING. One beat a second later carries both.
                        await Task.Delay(Debounce, time, cancellationToken);
                        counts = (runner.RunningCount, runner.PendingCount);
                    }
                    if (await BeatAsync(counts.RunningCount, counts.PendingCount, cancellationToken))
                    {
                        sent = counts;
                    }
                    lastBeat = time.GetUtcNow();
                }
                var wait = interval - (time.GetUtcNow() - lastBeat);
                if (wait > TimeSpan.Zero)
                {
                    try
                    {
                        await changed.WaitAsync(wait, cancellationToken);
                    }
                    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                    {
                        return;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            runner.CountsChanged -= OnCountsChanged;
        }
    }

    private async Task<bool> BeatAsync(int running, int pending, CancellationToken cancellationToken)
    {
        try
        {
            await clock.SyncIfDueAsync(TaskMessages.CommandQueue(identity.InstanceId), cancellationToken);
            await store.HeartbeatAsync(identity.Cluster, identity.InstanceId, running, pending, identity.Session, cancellationToken);
            logger.LogDebug("Heartbeat of {ContainerInstanceArn}: {Running} running, {Pending} pending", identity.ContainerInstanceArn, running, pending);
            return true;
        }
        catch (InstanceOwnedElsewhereException e)
        {
            // Another worker registered this instance id: its commands and reports are that
            // worker's now. Running on would start or stop its tasks, so this worker exits.
            logger.LogCritical("{ContainerInstanceArn} was registered by another worker ({Owner}); this worker stops. Give each worker its own instance id.",
                identity.ContainerInstanceArn, e.Owner);
            throw;
        }
        catch (InvalidParameterException)
        {
            logger.LogWarning("{ContainerInstanceArn} is not registered any more; registering again", identity.ContainerInstanceArn);
            try
            {
                await registration.RegisterAsync(cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "Registering {ContainerInstanceArn} again failed", identity.ContainerInstanceArn);
            }
            return false;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Heartbeat of {ContainerInstanceArn} failed: {Error}", identity.ContainerInstanceArn, e.Message);
            return false;
        }
    }
}
