using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Tasks;

namespace Serverless.Functions.Tasks;

/// <summary>Applies workers' task state changes (queue <c>task-events</c>; a message may carry several).</summary>
public sealed class TaskEventsFunction(TaskStateApplier applier)
{
    [Function("TaskEvents")]
    public Task Run([QueueTrigger(TaskMessages.TaskEventsQueue)] string message, CancellationToken cancellationToken)
        => applier.ApplyAsync(TaskMessages.DeserializeReports(message), cancellationToken);
}
