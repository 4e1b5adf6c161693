using Azure.Storage.Queues;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// Reports poisoned by a storage outage go back to <c>task-events</c>. The two queues have fixed
/// names, so each test reads back only the messages that name its own task.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskEventsRedriveTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;
    private readonly QueueServiceClient _queues = azurite.CreateQueueServiceClient();
    private readonly TaskEventsRedrive _redrive = new(
        new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("Redrive") }), NullLogger<TaskEventsRedrive>.Instance);
    private readonly string _taskArn = TaskRows.Arns.Task("redrive", TaskIds.New("family:web"));

    private TaskStateChange Report(string status) => new()
    {
        Cluster = "redrive", TaskArn = _taskArn, ContainerInstanceArn = "arn", LastStatus = status, ObservedAt = DateTimeOffset.UnixEpoch,
    };

    private async Task PoisonAsync(string body)
    {
        var poison = _queues.GetQueueClient(TaskEventsRedrive.PoisonQueue);
        await poison.CreateIfNotExistsAsync(cancellationToken: _token);
        await poison.SendMessageAsync(body, _token);
    }

    /// <summary>This test's messages on <paramref name="queue"/>, removed from it.</summary>
    private async Task<List<string>> TakeAsync(string queue)
    {
        var client = _queues.GetQueueClient(queue);
        await client.CreateIfNotExistsAsync(cancellationToken: _token);
        var mine = new List<string>();
        while (true)
        {
            var batch = (await client.ReceiveMessagesAsync(32, TimeSpan.FromSeconds(2), _token)).Value;
            if (batch.Length == 0) return mine;
            foreach (var message in batch.Where(m => m.Body.ToString().Contains(_taskArn, StringComparison.Ordinal)))
            {
                mine.Add(message.Body.ToString());
                await client.DeleteMessageAsync(message.MessageId, message.PopReceipt, _token);
            }
        }
    }

    [Fact]
    public async Task A_poisoned_report_goes_back_to_task_events_and_still_reads_as_the_same_report()
    {
        await PoisonAsync(TaskMessages.SerializeReports([Report(EcsTaskStatus.Running), Report(EcsTaskStatus.Stopped)]));

        await _redrive.RedriveAsync(_token);

        var back = Assert.Single(await TakeAsync(TaskMessages.TaskEventsQueue));
        Assert.Equal([EcsTaskStatus.Running, EcsTaskStatus.Stopped], TaskMessages.DeserializeReports(back).Select(r => r.LastStatus));
        Assert.Contains("\"redriven\":1", back);
        Assert.Empty(await TakeAsync(TaskEventsRedrive.PoisonQueue));
    }

    [Fact]
    public async Task A_report_poisoned_again_after_the_last_redrive_is_given_up()
    {
        var again = System.Text.Json.Nodes.JsonNode.Parse(TaskMessages.Serialize(Report(EcsTaskStatus.Running)))!.AsObject();
        again["redriven"] = TaskEventsRedrive.MaxRedrives;
        await PoisonAsync(again.ToJsonString());
        await PoisonAsync(TaskMessages.Serialize(Report(EcsTaskStatus.Pending)));

        await _redrive.RedriveAsync(_token);

        var back = Assert.Single(await TakeAsync(TaskMessages.TaskEventsQueue));
        Assert.Equal(EcsTaskStatus.Pending, Assert.Single(TaskMessages.DeserializeReports(back)).LastStatus);
        Assert.Empty(await TakeAsync(TaskEventsRedrive.PoisonQueue));
    }
}
