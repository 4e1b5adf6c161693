using Microsoft.Extensions.Logging;
using Serverless.Core.Api;

namespace Serverless.Core.Deploy;

/// <summary>
/// The timer's part of exactly-once: a delivery whose attempt died mid-way (the control plane
/// crashed between registering the revision and updating the service) and that nobody sends again
/// is finished here, from the steps its row recorded. And deliveries are forgotten after
/// <see cref="Retention"/>, so a repeat within it always answers as the first.
/// </summary>
public sealed class DeploySweep(DeliveryStore deliveries, DeployRunner runner, TimeProvider time, ILogger<DeploySweep> logger)
{
    public static readonly TimeSpan Retention = TimeSpan.FromDays(7);

    /// <summary>How often the forgetting part runs: a week's retention need not be kept to the minute.</summary>
    public static readonly TimeSpan RetentionSweepInterval = TimeSpan.FromMinutes(10);

    private DateTimeOffset _forgotAt = DateTimeOffset.MinValue;

    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await foreach (var stale in deliveries.ListUnansweredAsync(now - DeployRunner.ClaimTimeout, cancellationToken))
        {
            try
            {
                // Conditional on the row read: of several sweeping control planes, one takes it.
                var taken = await deliveries.SaveAsync(stale with { ClaimedAt = time.GetUtcNow() }, cancellationToken);
                logger.LogInformation("Finishing deploy delivery {DeliveryId}, whose attempt stopped", stale.Id);
                await runner.RunAsync(taken, cancellationToken);
            }
            catch (ConcurrentUpdateException)
            {
                // Taken over by another attempt meanwhile, or a service stayed locked: the next sweep looks again.
            }
        }
        if (now - _forgotAt < RetentionSweepInterval) return;
        _forgotAt = now;
        var forgotten = await deliveries.DeleteReceivedBeforeAsync(now - Retention, cancellationToken);
        if (forgotten > 0) logger.LogInformation("Forgot {Count} deploy deliveries and status links older than {Days} days", forgotten, Retention.TotalDays);
    }
}
