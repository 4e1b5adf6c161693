using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Reconciliation;
using Serverless.Core.Tasks;

namespace Serverless.Functions.Reconciliation;

/// <summary>Timers for what no event announces.</summary>
public sealed class SweepFunctions(
    ServiceResync resync, InstanceHealthSweep healthSweep, TaskRetention retention, TaskDeliverySweep delivery, SweepReads reads, TimeProvider time)
{
    /// <summary>Every minute: re-enqueue every active service that is not steady, and the steady ones in turn, in case a message was lost.</summary>
    [Function("ServiceResync")]
    public Task Resync([TimerTrigger("0 * * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => resync.ResyncAsync(cancellationToken);

    /// <summary>
    /// Every minute: replace the tasks of workers that stopped heartbeating (silent for
    /// <c>Ecs__AgentLostAfterSeconds</c>, 180 s: found 180-240 s after the last heartbeat). Two seconds after
    /// TaskDeliverySweep, on the same reads of the clusters and their instances (<see cref="SweepReads"/>).
    /// </summary>
    [Function("InstanceHealthSweep")]
    public Task Sweep([TimerTrigger("17 * * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => healthSweep.SweepAsync(reads.For(time.GetUtcNow()), cancellationToken);

    /// <summary>
    /// Every minute: send lost Stops again, stop tasks whose Start was never acknowledged, free orphaned reservations
    /// (deadlines of 60 s and more, so a minute's cadence delays them at most that much).
    /// </summary>
    [Function("TaskDeliverySweep")]
    public Task Deliver([TimerTrigger("15 * * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => delivery.SweepAsync(reads.For(time.GetUtcNow()), cancellationToken);

    /// <summary>Every 5 minutes: forget tasks stopped more than an hour ago, as ECS does.</summary>
    [Function("TaskRetention")]
    public Task Retain([TimerTrigger("0 */5 * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => retention.SweepAsync(cancellationToken);
}
