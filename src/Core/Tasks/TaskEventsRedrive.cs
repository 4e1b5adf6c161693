using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Storage;

namespace Serverless.Core.Tasks;

/// <summary>
/// Gives <c>task-events</c> messages that ended in the poison queue another chance. A report that
/// failed <c>maxDequeueCount</c> times in a row usually met a short storage outage, not a bad
/// message, and reports are idempotent to apply (a late one never moves a task backwards), so
/// they go back to the main queue, each carrying how often it was sent back
/// (<see cref="RedrivenMember"/>, which readers of reports ignore). After <see cref="MaxRedrives"/>
/// it is given up with a log line that says so, as is a message that is not a JSON object.
/// </summary>
public sealed class TaskEventsRedrive(StorageClients storage, ILogger<TaskEventsRedrive> logger)
{
    /// <summary>Where the queue trigger puts a message after <c>maxDequeueCount</c> failures (the Functions host's naming).</summary>
    public const string PoisonQueue = TaskMessages.TaskEventsQueue + "-poison";

    /// <summary>The message member that counts re-drives.</summary>
    public const string RedrivenMember = "redriven";

    public const int MaxRedrives = 5;

    /// <summary>At most this many messages per run, so one run stays short whatever piled up.</summary>
    public const int MaxPerRun = 256;

    /// <summary>Moves poisoned reports back to <c>task-events</c>; returns how many were moved.</summary>
    public async Task<int> RedriveAsync(CancellationToken cancellationToken)
    {
        var poison = storage.Queue(PoisonQueue);
        var moved = 0;
        for (var looked = 0; looked < MaxPerRun;)
        {
            QueueMessage[] batch;
            try
            {
                batch = (await poison.ReceiveMessagesAsync(32, TimeSpan.FromMinutes(1), cancellationToken)).Value;
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                return moved;   // no poison queue: nothing ever failed for good
            }
            if (batch.Length == 0) break;
            var main = await storage.QueueAsync(TaskMessages.TaskEventsQueue, cancellationToken);
            foreach (var message in batch)
            {
                looked++;
                var (body, redriven) = Marked(message.Body.ToString());
                if (body is null || redriven > MaxRedrives)
                {
                    logger.LogError("Giving up task-events message {MessageId} after {Redrives} re-drives from {PoisonQueue}: {Body}",
                        message.MessageId, redriven - 1, PoisonQueue, Truncated(message.Body.ToString()));
                    await poison.DeleteMessageAsync(message.MessageId, message.PopReceipt, cancellationToken);
                    continue;
                }
                try
                {
                    await main.SendMessageAsync(body, cancellationToken);
                }
                catch (RequestFailedException e) when (e.Status is >= 400 and < 500 and not 408)
                {
                    // Refused (grown past the queue's size limit by the counter): it can never go back.
                    logger.LogError("Giving up task-events message {MessageId}: {PoisonQueue} cannot send it back ({Error})", message.MessageId, PoisonQueue, e.Message);
                    await poison.DeleteMessageAsync(message.MessageId, message.PopReceipt, cancellationToken);
                    continue;
                }
                // Deleted only once it is back: at worst a report is applied twice, which changes nothing.
                await poison.DeleteMessageAsync(message.MessageId, message.PopReceipt, cancellationToken);
                moved++;
            }
        }
        if (moved > 0) logger.LogWarning("Re-drove {Count} task-events message(s) from {PoisonQueue}", moved, PoisonQueue);
        return moved;
    }

    /// <summary>The body with its re-drive count raised by one, and that count; a null body when it is not a JSON object.</summary>
    private static (string? Body, int Redriven) Marked(string body)
    {
        try
        {
            if (JsonNode.Parse(body) is not JsonObject message) return (null, 1);
            var redriven = (message[RedrivenMember] as JsonValue)?.TryGetValue<int>(out var count) == true ? count + 1 : 1;
            message[RedrivenMember] = redriven;
            return (message.ToJsonString(), redriven);
        }
        catch (JsonException)
        {
            return (null, 1);
        }
    }

    private static string Truncated(string body) => body.Length <= 512 ? body : body[..512] + "...";
}
