using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Logs;

namespace Serverless.Functions.Logs;

/// <summary>Every 10 minutes: delete log events older than their group's retention (PutRetentionPolicy).</summary>
public sealed class LogRetentionFunction(LogRetention retention)
{
    [Function("LogRetention")]
    public Task Run([TimerTrigger("0 */10 * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => retention.SweepAsync(cancellationToken);
}
