using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Storage;

namespace Serverless.Functions.Standalone;

/// <summary>
/// Drives one queue-triggered function with the host's queue semantics (host.json <c>extensions.queues</c>) on the
/// one <see cref="QueueConsumer"/>: polls in batches with exponential back-off while the queue is empty, runs up to
/// <c>batchSize + newBatchThreshold</c> messages at once, keeps each message invisible while its function runs,
/// deletes it on success, makes it visible again after <c>visibilityTimeout</c> on failure, and moves it to
/// <c>&lt;queue&gt;-poison</c> once it has been dequeued <c>maxDequeueCount</c> times.
/// </summary>
public sealed partial class QueueTriggerListener
{
    private readonly string _function;
    private readonly QueueClient _queue;
    private readonly QueueClient _poisonQueue;
    private readonly QueueTriggerOptions _options;
    private readonly Func<QueueMessage, BinaryData, CancellationToken, Task> _handler;
    private readonly ILogger _logger;
    private readonly QueueConsumer _consumer;
    private bool _poisonQueueExists;

    /// <param name="function">The function's name, for logs.</param>
    /// <param name="queue">The queue to listen to, with no message encoding of its own (bodies are decoded here).</param>
    /// <param name="poisonQueue">Where messages go after <see cref="QueueTriggerOptions.MaxDequeueCount"/> failures.</param>
    /// <param name="options">host.json <c>extensions.queues</c>.</param>
    /// <param name="handler">Runs the function for a message and its decoded body; throwing means failure.</param>
    /// <param name="time">The clock for polling delays and lease renewals.</param>
    /// <param name="logger">Receives one line per failure or poisoning, and debug lines otherwise.</param>
    /// <param name="wake">
    /// Cuts an idle wait short when set (a message was just sent to the queue); null to poll on the back-off
    /// alone. With a wake, the listener polls when woken, after a full batch, and on the back-off, which then
    /// climbs to the maximum and stays there: it only has to catch a message whose wake was lost.
    /// </param>
    /// <param name="maxPollingInterval">
    /// The back-off's ceiling when it differs from host.json's (the standalone host lets a queue it is woken for
    /// back off further: <c>Ecs__WakeFallbackPollSeconds</c>); null for host.json's <c>maxPollingInterval</c>.
    /// </param>
    public QueueTriggerListener(
        string function, QueueClient queue, QueueClient poisonQueue, QueueTriggerOptions options,
        Func<QueueMessage, BinaryData, CancellationToken, Task> handler, TimeProvider time, ILogger logger, WakeSignal? wake = null,
        TimeSpan? maxPollingInterval = null)
    {
        _function = function;
        _queue = queue;
        _poisonQueue = poisonQueue;
        _options = options;
        _handler = handler;
        _logger = logger;
        _consumer = new QueueConsumer(queue, new QueueConsumerOptions
        {
            BatchSize = options.BatchSize,
            NewBatchThreshold = options.NewBatchThreshold,
            MessageLease = options.MessageLease,
            MaxPollingInterval = maxPollingInterval ?? options.MaxPollingInterval,
            // Messages found that no wake announced: host.json's back-off for a while (QueueConsumer).
            MissedWakePollingInterval = options.MaxPollingInterval,
            TakesExpress = wake is not null,
        }, ProcessAsync, time, logger, wake);
    }

    /// <summary>A message of the queue handed over in a wake datagram (<see cref="QueueWake.TakeExpress"/>); see <see cref="QueueConsumer.DeliverExpress"/>.</summary>
    public bool DeliverExpress(string messageText, bool enqueued) => _consumer.DeliverExpress(messageText, enqueued);

    public string QueueName => _queue.Name;

    /// <summary>How many times the queue has been polled.</summary>
    public long PollCount => _consumer.PollCount;

    /// <summary>How many times the listener has started waiting before its next poll.</summary>
    public long IdleWaits => _consumer.IdleWaits;

    /// <summary>The wait in progress (or last started) before the next poll.</summary>
    public TimeSpan CurrentIdleDelay => _consumer.CurrentIdleDelay;

    /// <summary>How many messages are being processed right now.</summary>
    public int InFlightCount => _consumer.InFlightCount;

    /// <summary>
    /// Polls until <paramref name="stoppingToken"/> is signalled, then waits for the messages in flight.
    /// Functions receive <paramref name="stoppingToken"/> as their cancellation token.
    /// </summary>
    public Task RunAsync(CancellationToken stoppingToken)
    {
        LogListening(_logger, _function, _queue.Name, _options.BatchSize, _options.NewBatchThreshold, _options.MaxPollingInterval);
        return _consumer.RunAsync(stoppingToken);
    }

    /// <summary>Logs every message still running: it is not deleted, and becomes visible again when its lease ends.</summary>
    public void ReportAbandoned()
    {
        var count = InFlightCount;
        if (count > 0) LogAbandoned(_logger, count, _function, _queue.Name, _options.MessageLease);
    }

    private async Task ProcessAsync(QueueMessage message, QueueMessageLease lease, CancellationToken stoppingToken)
    {
        try
        {
            // Dequeued more often than allowed without ever completing (a crashed or killed instance): never run it again.
            if (message.DequeueCount > _options.MaxDequeueCount)
            {
                await MoveToPoisonAsync(message, lease, $"dequeued {message.DequeueCount} times without completing");
                return;
            }

            BinaryData body;
            try
            {
                body = Decode(message.Body);
            }
            catch (FormatException e)
            {
                await MoveToPoisonAsync(message, lease, $"the body is not valid {_options.MessageEncoding}: {e.Message}");
                return;
            }

            Exception? failure = null;
            try
            {
                await _handler(message, body, stoppingToken);
            }
            catch (Exception e)
            {
                failure = e;
            }

            if (failure is null)
            {
                await lease.DeleteAsync(CancellationToken.None);
                LogCompleted(_logger, _function, message.MessageId);
            }
            else if (failure is OperationCanceledException && stoppingToken.IsCancellationRequested)
            {
                // Shutting down is not the message's fault: hand it straight back for another instance.
                await lease.ReleaseAsync(TimeSpan.Zero, CancellationToken.None);
                LogReleasedOnShutdown(_logger, _function, message.MessageId);
            }
            else if (message.DequeueCount >= _options.MaxDequeueCount)
            {
                await MoveToPoisonAsync(message, lease, failure.Message);
            }
            else
            {
                LogFailed(_logger, failure, _function, message.MessageId, message.DequeueCount, _options.MaxDequeueCount,
                    _options.VisibilityTimeout, failure.Message);
                await lease.ReleaseAsync(_options.VisibilityTimeout, CancellationToken.None);
            }
        }
        catch (Exception e)
        {
            // Storage refused the delete/update (lease lost, message gone): it reappears when its lease ends.
            LogCompletionFailed(_logger, e, _function, message.MessageId, e.Message);
        }
    }

    private BinaryData Decode(BinaryData raw)
        => _options.MessageEncoding == QueueMessageEncoding.Base64
            ? new BinaryData(Convert.FromBase64String(raw.ToString()))
            : raw;

    private async Task MoveToPoisonAsync(QueueMessage message, QueueMessageLease lease, string reason)
    {
        if (!_poisonQueueExists)
        {
            await _poisonQueue.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None);
            _poisonQueueExists = true;
        }
        // The body as received, still encoded, so the poison message reads like the original.
        await _poisonQueue.SendMessageAsync(message.Body, cancellationToken: CancellationToken.None);
        await lease.DeleteAsync(CancellationToken.None);
        LogPoisoned(_logger, message.MessageId, _function, _poisonQueue.Name, message.DequeueCount, reason);
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Queue function {Function} listening to {Queue} (batch {BatchSize}, new batch at {NewBatchThreshold}, max polling interval {MaxPollingInterval})")]
    private static partial void LogListening(
        ILogger logger, string function, string queue, int batchSize, int newBatchThreshold, TimeSpan maxPollingInterval);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Function {Function} completed message {MessageId}")]
    private static partial void LogCompleted(ILogger logger, string function, string messageId);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Function {Function} failed on message {MessageId} (attempt {DequeueCount} of {MaxDequeueCount}); it is retried in {RetryDelay}: {Error}")]
    private static partial void LogFailed(
        ILogger logger, Exception exception, string function, string messageId, long dequeueCount, int maxDequeueCount,
        TimeSpan retryDelay, string error);

    [LoggerMessage(Level = LogLevel.Error,
        Message = "Moved message {MessageId} of function {Function} to {PoisonQueue} after {DequeueCount} attempts: {Reason}")]
    private static partial void LogPoisoned(
        ILogger logger, string messageId, string function, string poisonQueue, long dequeueCount, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Function {Function} was stopped by shutdown; message {MessageId} is visible again")]
    private static partial void LogReleasedOnShutdown(ILogger logger, string function, string messageId);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Function {Function} could not complete message {MessageId}; it becomes visible again when its lease ends: {Error}")]
    private static partial void LogCompletionFailed(ILogger logger, Exception exception, string function, string messageId, string error);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Stopped with {Count} messages of function {Function} still running; they stay in {Queue} and become visible again within {Lease}")]
    private static partial void LogAbandoned(ILogger logger, int count, string function, string queue, TimeSpan lease);
}
