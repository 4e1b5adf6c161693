using Microsoft.Extensions.Logging;
using Serverless.Core.Api;

namespace Serverless.Core.Tasks;

/// <summary>
/// ECS keeps a stopped task describable for about an hour, then it is gone. This deletes task rows
/// STOPPED longer than <see cref="EcsOptions.StoppedTaskRetentionMinutes"/> ago, and clientToken
/// records older than <see cref="ClientTokens.Retention"/>, so that what reads a service's or a
/// cluster's tasks (every reconcile, ListTasks) costs what is alive rather than all history.
/// </summary>
public sealed class TaskRetention(TaskStore tasks, ClientTokens tokens, EcsOptions options, TimeProvider time, ILogger<TaskRetention> logger)
{
    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var stoppedTasks = await tasks.DeleteStoppedBeforeAsync(now - TimeSpan.FromMinutes(options.StoppedTaskRetentionMinutes), cancellationToken);
        var answeredTokens = await tokens.DeleteClaimedBeforeAsync(now - ClientTokens.Retention, cancellationToken);
        if (stoppedTasks + answeredTokens > 0)
            logger.LogInformation("Retention: deleted {Tasks} stopped task(s) and {Tokens} clientToken record(s)", stoppedTasks, answeredTokens);
    }
}
