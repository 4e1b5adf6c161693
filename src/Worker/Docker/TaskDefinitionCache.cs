using System.Collections.Concurrent;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Worker.Docker;

/// <summary>
/// Task definitions by ARN. A revision never changes once registered, so one read per revision
/// serves every task of it for the worker's life (a deregistered revision still describes the same).
/// </summary>
public sealed class TaskDefinitionCache(TaskDefinitionStore store)
{
    private readonly ConcurrentDictionary<string, TaskDefinitionRecord> _byArn = new(StringComparer.Ordinal);

    /// <summary>The revision an ARN (<c>…:task-definition/family:revision</c>) names, or null when it does not exist.</summary>
    public async Task<TaskDefinitionRecord?> FindAsync(string taskDefinitionArn, CancellationToken cancellationToken)
    {
        if (_byArn.TryGetValue(taskDefinitionArn, out var cached)) return cached;
        if (Key(taskDefinitionArn) is not { } key) return null;
        var found = await store.FindAsync(key.Family, key.Revision, cancellationToken);
        // Only hits are kept: a miss may be a revision whose registration is still being written.
        if (found is not null) _byArn[taskDefinitionArn] = found;
        return found;
    }

    /// <summary>Family and revision from a task definition ARN (or a bare <c>family:revision</c>).</summary>
    public static TaskDefinitionKey? Key(string taskDefinitionArn)
    {
        var slash = taskDefinitionArn.LastIndexOf('/');
        return TaskDefinitionKey.TryParse(slash >= 0 ? taskDefinitionArn[(slash + 1)..] : taskDefinitionArn);
    }
}
