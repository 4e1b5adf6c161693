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
    /// <summary>How long a received command stays invisible; renewed while it is handled (a Stop may take a container's whole stopTimeout).</summary>
    public static readonly TimeSpan CommandLease = TimeSpan.FromSeconds(60);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        QueueClient queue;
        try
        {
            queue = await OpenQueueAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return;
        }
        var consumer = new QueueConsumer(queue, Options(options, wake.Endpoint is not null),
            (message, lease, token) => HandleAsync(message, lease, token), time, logger,
            // Without wakes, poll fast again after every batch, as a plain poller does.
            wake.Endpoint is null ? null : wake.Signal(queue.Name));
        logger.LogInformation("Taking commands from queue {Queue}", queue.Name);
        // Commands sealed for this worker arrive in the wake datagram too, ahead of the poll that would bring them.
        using var express = wake.TakeExpress(queue.Name, consumer.DeliverExpress);
        await consumer.RunAsync(cancellationToken);
    }

    /// <summary>
    /// As many commands at once as <see cref="WorkerOptions.MaxConcurrentCommands"/>, a receive whenever one of
    /// them is free; while idle the queue is polled at most every <see cref="WorkerOptions.CommandPollMaxDelayMilliseconds"/>,
    /// or every <see cref="WorkerOptions.WakeFallbackPollSeconds"/> when the control plane wakes this worker.
    /// </summary>
    internal static QueueConsumerOptions Options(WorkerOptions options, bool takesWakes)
    {
        var poll = TimeSpan.FromMilliseconds(options.CommandPollMaxDelayMilliseconds);
        var fallback = TimeSpan.FromSeconds(options.WakeFallbackPollSeconds);
        var concurrent = Math.Max(1, options.MaxConcurrentCommands);
        return new QueueConsumerOptions
        {
            BatchSize = Math.Min(QueueConsumerOptions.MaxBatchSize, concurrent),
            NewBatchThreshold = concurrent - 1,
            MaxInFlight = concurrent,
            MessageLease = CommandLease,
            MaxPollingInterval = takesWakes && fallback > poll ? fallback : poll,
            // Commands found that no wake announced: the back-off without wakes for a while (QueueConsumer).
            MissedWakePollingInterval = poll,
            TakesExpress = takesWakes,
        };
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
    internal async Task HandleAsync(QueueMessage message, QueueMessageLease lease, CancellationToken cancellationToken)
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
            await lease.DeleteAsync(CancellationToken.None);
            return;
        }

        // Reports about this task (and any other) wake the control plane that sent the latest command, which is
        // known from now on: its express commands can be opened.
        if (command.ReportWake is { } reportWake)
        {
            reporter.ReportWake = reportWake;
            wake.Learn(reportWake);
        }
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
            await lease.ReleaseAsync(retryIn, CancellationToken.None);
        }
    }
}
