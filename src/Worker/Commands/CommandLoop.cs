using System.Text.Json;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;
using Serverless.Worker.Registration;
using Serverless.Worker.Reporting;

namespace Serverless.Worker.Commands;

/// <summary>
/// Takes Start and Stop commands from this instance's queue and hands them to the
/// <see cref="TaskRunner"/>, many at once. A message is deleted only once its command is durably
/// handled (the task's state reported, or known to be final); a command that fails comes back
/// with a growing delay, and after <see cref="WorkerOptions.MaxCommandDequeueCount"/> deliveries
/// it is given up — its task reported STOPPED with the reason — so it never blocks the others.
/// </summary>
public sealed class CommandLoop(
    StorageClients storage, TaskRunner runner, TaskStateReporter reporter, QueueWake wake, WorkerIdentity identity, WorkerOptions options, TimeProvider time, ILogger<CommandLoop> logger)
{
    /// <summary>Queue Storage's most messages per receive.</summary>
    public const int MaxBatch = 32;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var queue = await OpenQueueAsync(cancellationToken);
        var woken = wake.Signal(TaskMessages.CommandQueue(identity.InstanceId));
        var cap = TimeSpan.FromMilliseconds(options.CommandPollMaxDelayMilliseconds);
        using var slots = new SemaphoreSlim(options.MaxConcurrentCommands, options.MaxConcurrentCommands);
        var delay = TimeSpan.Zero;
        logger.LogInformation("Taking commands from queue {Queue}", queue.Name);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await slots.WaitAsync(cancellationToken);
                var batch = Math.Min(MaxBatch, slots.CurrentCount + 1);
                QueueMessage[] messages;
                try
                {
                    messages = (await queue.ReceiveMessagesAsync(batch, MessageLease.VisibilityTimeout, cancellationToken)).Value;
                }
                catch
                {
                    slots.Release();
                    throw;
                }
                // The first slot is already held; the rest were free when the batch size was chosen.
                for (var i = 1; i < messages.Length; i++) await slots.WaitAsync(cancellationToken);
                if (messages.Length == 0) slots.Release();

                foreach (var message in messages)
                {
                    _ = Task.Run(async () =>
                    {
                        try
                        {
                            await HandleAsync(queue, message, cancellationToken);
                        }
                        finally
                        {
                            slots.Release();
                        }
                    }, CancellationToken.None);
                }
                delay = wake.Endpoint is null
                    ? PollDelay.Next(delay, messages.Length > 0, cap)
                    // The control plane wakes us when it sends: poll again at once only when the batch was full.
                    : messages.Length == batch ? TimeSpan.Zero : cap;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Could not receive commands: {Error}", e.Message);
                delay = cap;
            }
            // The control plane wakes us right after it sends a command; the back-off only covers a lost wake.
            if (delay > TimeSpan.Zero && await WaitAsync(woken, delay, cancellationToken)) delay = TimeSpan.Zero;
        }
    }

    private async Task<bool> WaitAsync(WakeSignal woken, TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            return await woken.WaitAsync(delay, time, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task<QueueClient> OpenQueueAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await storage.QueueAsync(TaskMessages.CommandQueue(identity.InstanceId), cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Could not open the command queue (attempt {Attempt}): {Error}", attempt, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(30, attempt * 2)), time, cancellationToken);
            }
        }
    }

    /// <summary>One command, from its message to its deletion (or its return for a retry).</summary>
    internal async Task HandleAsync(QueueClient queue, QueueMessage message, CancellationToken cancellationToken)
    {
        TaskCommand command;
        try
        {
            command = TaskMessages.Deserialize<TaskCommand>(message.Body.ToString());
        }
        catch (JsonException e)
        {
            // No task to report on: drop it, loudly, rather than let it come back forever.
            logger.LogError("Deleting unreadable command message {MessageId}: {Error}", message.MessageId, e.Message);
            await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, CancellationToken.None);
            return;
        }

        // Reports about this task (and any other) wake the control plane that sent the latest command.
        if (command.ReportWake is { } reportWake) reporter.ReportWake = reportWake;
        await using var lease = new MessageLease(queue, message, time, logger);
        try
        {
            if (message.DequeueCount > options.MaxCommandDequeueCount)
            {
                var reason = $"The worker could not handle the {command.Type} command after {options.MaxCommandDequeueCount} attempts";
                logger.LogError("Giving up {CommandType} of {TaskArn}: {Reason}", command.Type, command.TaskArn, reason);
                await runner.AbandonAsync(command, reason, cancellationToken);
                await lease.DeleteAsync(cancellationToken);
                return;
            }

            switch (command.Type)
            {
                case TaskCommand.Start:
                    await runner.StartAsync(command, redelivered: message.DequeueCount > 1, cancellationToken);
                    break;
                case TaskCommand.Stop:
                    await runner.StopAsync(command, cancellationToken);
                    break;
                default:
                    logger.LogError("Deleting command {MessageId} of unknown type {CommandType} for {TaskArn}", message.MessageId, command.Type, command.TaskArn);
                    break;
            }
            await lease.DeleteAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The worker is stopping: the message comes back when its lease runs out.
        }
        catch (Exception e)
        {
            var retryIn = TimeSpan.FromSeconds(Math.Min(30, 1 << (int)Math.Min(message.DequeueCount, 5)));
            logger.LogWarning(e, "{CommandType} of {TaskArn} failed (delivery {DequeueCount}); retrying in {RetryIn}",
                command.Type, command.TaskArn, message.DequeueCount, retryIn);
            await lease.RetryAfterAsync(retryIn, CancellationToken.None);
        }
    }
}
