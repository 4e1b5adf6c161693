using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Tasks;

namespace Serverless.Functions.Tasks;

/// <summary>Every 5 minutes: reports that reached <c>task-events-poison</c> (a storage outage outlasting the retries) go back to <c>task-events</c>.</summary>
public sealed class TaskEventsRedriveFunction(TaskEventsRedrive redrive)
{
    [Function("TaskEventsRedrive")]
    public Task Run([TimerTrigger("30 */5 * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => redrive.RedriveAsync(cancellationToken);
}
