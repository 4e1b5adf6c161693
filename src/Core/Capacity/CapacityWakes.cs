using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core.Storage;

namespace Serverless.Core.Capacity;

/// <summary>
/// Runs the capacity loop's placement of waiting tasks as soon as a wake named
/// <see cref="CapacityLoop.WakeName"/> arrives (a worker registered in a cluster where tasks wait),
/// instead of at the timer's next tick. A wake carries nothing: lost, the tick still places the task;
/// forged or repeated, it costs one read of the waiting tasks (rate-limited by <see cref="WakeSignal"/>).
/// </summary>
public sealed class CapacityWakes(CapacityLoop loop, QueueWake wake, TimeProvider time, ILogger<CapacityWakes> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var signal = wake.Signal(CapacityLoop.WakeName);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!await signal.WaitAsync(TimeSpan.FromMinutes(10), time, stoppingToken)) continue;
                await loop.PlaceWaitingAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Placing waiting tasks after a wake failed: {Error}; the next tick tries again", e.Message);
            }
        }
    }
}
