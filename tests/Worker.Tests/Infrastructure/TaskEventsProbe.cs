using Azure.Storage.Queues;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Tests.Infrastructure;

/// <summary>
/// Reads the <c>task-events</c> queue as the control plane would and keeps every report, so a
/// test can wait for the one it expects (and see all the others when it does not come).
/// </summary>
public sealed class TaskEventsProbe(QueueClient queue)
{
    private readonly List<TaskStateChange> _seen = [];
    private readonly SemaphoreSlim _drain = new(1, 1);

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How many reports each message received so far carried, in queue order.</summary>
    public List<int> MessageSizes { get; } = [];

    /// <summary>Every report of <paramref name="taskArn"/> received so far, in queue order.</summary>
    public async Task<IReadOnlyList<TaskStateChange>> ReportsAsync(string taskArn, CancellationToken cancellationToken)
    {
        await DrainAsync(cancellationToken);
        lock (_seen) return _seen.Where(r => r.TaskArn == taskArn).ToList();
    }

    /// <summary>The first report of <paramref name="taskArn"/> matching <paramref name="match"/>; fails with the reports seen after the timeout.</summary>
    public async Task<TaskStateChange> WaitForAsync(string taskArn, Func<TaskStateChange, bool> match, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        var deadline = DateTimeOffset.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            var reports = await ReportsAsync(taskArn, cancellationToken);
            if (reports.FirstOrDefault(match) is { } found) return found;
            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"No matching report of {taskArn} within {(timeout ?? DefaultTimeout).TotalSeconds:0} s. Reports seen:\n"
                    + string.Join("\n", reports.Select(TaskMessages.Serialize)));
            }
            await Task.Delay(50, cancellationToken);
        }
    }

    public Task<TaskStateChange> WaitForStatusAsync(string taskArn, string status, CancellationToken cancellationToken, TimeSpan? timeout = null)
        => WaitForAsync(taskArn, r => r.LastStatus == status, cancellationToken, timeout);

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        await _drain.WaitAsync(cancellationToken);
        try
        {
            await queue.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            while (true)
            {
                var messages = (await queue.ReceiveMessagesAsync(32, TimeSpan.FromMinutes(1), cancellationToken)).Value;
                if (messages.Length == 0) return;
                foreach (var message in messages)
                {
                    lock (_seen)
                    {
                        _seen.AddRange(TaskMessages.DeserializeReports(message.Body.ToString()));
                        MessageSizes.Add(_seen.Count - MessageSizes.Sum());
                    }
                    await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, cancellationToken);
                }
            }
        }
        finally
        {
            _drain.Release();
        }
    }
}
