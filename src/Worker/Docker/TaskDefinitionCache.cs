using Serverless.Core.TaskDefinitions;

namespace Serverless.Worker.Docker;

/// <summary>
/// Task definitions by ARN. A revision never changes once registered, so one read per revision
/// serves every task of it (a deregistered revision still describes the same). At most
/// <c>capacity</c> revisions are kept, the least recently used going first: a long-lived worker
/// that sees a new revision per deployment must not grow without bound.
/// </summary>
public sealed class TaskDefinitionCache(TaskDefinitionStore store, int capacity = TaskDefinitionCache.DefaultCapacity)
{
    /// <summary>Revisions kept by default: a task definition is at most 64 KiB, so this is a few MiB at worst.</summary>
    public const int DefaultCapacity = 128;

    private readonly object _gate = new();
    private readonly Dictionary<string, LinkedListNode<(string Arn, TaskDefinitionRecord Record)>> _byArn = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Arn, TaskDefinitionRecord Record)> _recency = new(); // most recently used first

    /// <summary>Revisions held now (never more than the capacity).</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _byArn.Count;
        }
    }

    /// <summary>Whether the revision is held, without counting as a use.</summary>
    public bool Contains(string taskDefinitionArn)
    {
        lock (_gate) return _byArn.ContainsKey(taskDefinitionArn);
    }

    /// <summary>The revision an ARN (<c>…:task-definition/family:revision</c>) names, or null when it does not exist.</summary>
    public async Task<TaskDefinitionRecord?> FindAsync(string taskDefinitionArn, CancellationToken cancellationToken)
    {
        if (TryGet(taskDefinitionArn) is { } cached) return cached;
        if (Key(taskDefinitionArn) is not { } key) return null;
        var found = await store.FindAsync(key.Family, key.Revision, cancellationToken);
        // Only hits are kept: a miss may be a revision whose registration is still being written.
        if (found is not null) Keep(taskDefinitionArn, found);
        return found;
    }

    private TaskDefinitionRecord? TryGet(string arn)
    {
        lock (_gate)
        {
            if (!_byArn.TryGetValue(arn, out var node)) return null;
            _recency.Remove(node);
            _recency.AddFirst(node);
            return node.Value.Record;
        }
    }

    private void Keep(string arn, TaskDefinitionRecord record)
    {
        lock (_gate)
        {
            if (_byArn.TryGetValue(arn, out var existing)) _recency.Remove(existing);
            _byArn[arn] = _recency.AddFirst((arn, record));
            while (_byArn.Count > Math.Max(1, capacity))
            {
                var oldest = _recency.Last!;
                _recency.RemoveLast();
                _byArn.Remove(oldest.Value.Arn);
            }
        }
    }

    /// <summary>Family and revision from a task definition ARN (or a bare <c>family:revision</c>).</summary>
    public static TaskDefinitionKey? Key(string taskDefinitionArn)
        => TaskDefinitionKey.TryParse(Core.Arns.LastSegment(taskDefinitionArn));
}
