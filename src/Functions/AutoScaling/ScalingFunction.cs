using Microsoft.Azure.Functions.Worker;
using Serverless.Core.AutoScaling;

namespace Serverless.Functions.AutoScaling;

/// <summary>Application Auto Scaling's evaluation timer.</summary>
public sealed class ScalingFunction(ScalingEvaluator evaluator)
{
    /// <summary>Every 5 seconds a cheap check; the targets are evaluated once per <c>AutoScaling__EvaluationSeconds</c>.</summary>
    [Function("ScalingEvaluation")]
    public Task Evaluate([TimerTrigger("*/5 * * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => evaluator.TickAsync(cancellationToken);
}
