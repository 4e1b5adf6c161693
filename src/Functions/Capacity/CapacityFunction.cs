using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Capacity;

namespace Serverless.Functions.Capacity;

/// <summary>The capacity loop's timer: tasks waiting for capacity, and managed scaling.</summary>
public sealed class CapacityFunction(CapacityLoop loop)
{
    /// <summary>
    /// Every 2 seconds the waiting tasks are looked at (one small table read when none wait); managed
    /// scaling runs once per <c>Capacity__ScalingSeconds</c>.
    /// </summary>
    [Function("CapacityLoop")]
    public Task Run([TimerTrigger("*/2 * * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => loop.TickAsync(cancellationToken);
}
