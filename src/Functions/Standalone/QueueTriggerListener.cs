using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Storage;

namespace Serverless.Functions.Standalone;

/// <summary>
/// Drives one queue-triggered function with the host's queue semantics (host.json <c>extensions.queues</c>):
/// polls in batches with exponential back-off while the queue is empty, runs up to
/// <c>batchSize + newBatchThreshold</c> messages at once, keeps each message invisible while its function
/// runs, deletes it on success, makes it visible again after <c>visibilityTimeout</c> on failure, and moves
/// it to <c>&lt;queue&gt;-poison</c> once it has been dequeued <c>maxDequeueCount</c> times.
/// </summary>
public sealed partial class QueueTriggerListener
{
    private readonly string _function;
    private readonly QueueClient _queue;
    private readonly QueueClient _poisonQueue;
    private readonly QueueTriggerOptions _options;
    private readonly Func<QueueMessage, BinaryData, CancellationToken, Task> _handler;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PollingBackoff _backoff;
    private readonly WakeSignal? _wake;
    private readonly SemaphoreSlim _completed = new(0);
    private readonly HashSet<Task> _inFlight = [];
    private bool _poisonQueueExists;
    private long _pollCount;
    private long _idleWaits;

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
    public QueueTriggerListener(
        string function, QueueClient queue, QueueClient poisonQueue, QueueTriggerOptions options,
        Func<QueueMessage, BinaryData, CancellationToken, Task> handler, TimeProvider time, ILogger logger, WakeSignal? wake = null)
    {
        _wake = wake;
        _function = function;
        _queue = queue;
        _poisonQueue = poisonQueue;
        _options = options;
        _handler = handler;
        _time = time;
        _logger = logger;
        _backoff = new PollingBackoff(QueueTriggerOptions.MinimumPollingInterval, options.MaxPollingInterval);
    }

    public string QueueName => _queue.Name;

    /// <summary>How many times the queue has been polled.</summary>
    public long PollCount => Interlocked.Read(ref _pollCount);

    /// <summary>How many times the listener has started waiting before its next poll.</summary>
    public long IdleWaits => Interlocked.Read(ref _idleWaits);

    /// <summary>The wait in progress (or last started) before the next poll.</summary>
    public TimeSpan CurrentIdleDelay { get; private set; }

    /// <summary>How many messages are being processed right now.</summary>
    public int InFlightCount
    {
        get
        {
            lock (_inFlight) return _inFlight.Count;
        }
    }

    /// <summary>
    /// Polls until <paramref name="stoppingToken"/> is signalled, then waits for the messages in flight.
    /// Functions receive <paramref name="stoppingToken"/> as their cancellation token.
    /// </summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        try
        {
            await PollAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        await DrainAsync();
    }

    /// <summary>Logs every message still running: it is not deleted, and becomes visible again when its lease ends.</summary>
    public void ReportAbandoned()
    {
        var count = InFlightCount;
        if (count > 0) LogAbandoned(_logger, count, _function, _queue.Name, _options.MessageLease);
    }

    private async Task PollAsync(CancellationToken stoppingToken)
    {
        await EnsureQueueExistsAsync(stoppingToken);
        LogListening(_logger, _function, _queue.Name, _options.BatchSize, _options.NewBatchThreshold, _options.MaxPollingInterval);

        while (!stoppingToken.IsCancellationRequested)
        {
            // A new batch only when the previous ones have drained down to the threshold.
            while (InFlightCount > _options.NewBatchThreshold)
            {
                await _completed.WaitAsync(stoppingToken);
            }

            QueueMessage[] messages;
            try
            {
                Interlocked.Increment(ref _pollCount);
                messages = (await _queue.ReceiveMessagesAsync(_options.BatchSize, _options.MessageLease, stoppingToken)).Value;
            }
            catch (RequestFailedException e) when (e.ErrorCode == QueueErrorCode.QueueNotFound)
            {
                await EnsureQueueExistsAsync(stoppingToken);
                continue;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogPollFailed(_logger, e, _function, _queue.Name, e.Message);
                await IdleAsync(stoppingToken);
                continue;
            }

            if (messages.Length == 0)
            {
                await IdleAsync(stoppingToken);
                continue;
            }

            foreach (var message in messages)
            {
                Track(Task.Run(() => ProcessAsync(message, stoppingToken), CancellationToken.None));
            }

            if (_wake is null)
            {
                // Busy: poll fast again, as the host does.
                _backoff.Reset();
            }
            else if (messages.Length < _options.BatchSize)
            {
                // A short batch drained the queue, and whoever sends next wakes us: polling again now, and
                // fast after that, would only cost storage calls. The back-off covers a message sent without a wake.
                await IdleAsync(stoppingToken);
            }
        }
    }

    private async Task IdleAsync(CancellationToken stoppingToken)
    {
        var delay = _backoff.Next();
        // Start the timer before publishing the wait, so an observer that sees it can advance a fake clock past it.
        var wait = _wake?.WaitAsync(delay, _time, stoppingToken) ?? SleepAsync(delay, stoppingToken);
        CurrentIdleDelay = delay;
        Interlocked.Increment(ref _idleWaits);
        // Woken or not, the back-off stays where it is: with wakes it is only the safety net for a lost one.
        await wait;
    }

    private async Task<bool> SleepAsync(TimeSpan delay, CancellationToken stoppingToken)
    {
        await Task.Delay(delay, _time, stoppingToken);
        return false;
    }

    private async Task EnsureQueueExistsAsync(CancellationToken stoppingToken)
    {
        while (true)
        {
            try
            {
                await _queue.CreateIfNotExistsAsync(cancellationToken: stoppingToken);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                // Storage not reachable yet (Azurite still starting): keep trying, slowly.
                LogPollFailed(_logger, e, _function, _queue.Name, e.Message);
                await IdleAsync(stoppingToken);
            }
        }
    }

    private void Track(Task processing)
    {
        lock (_inFlight) _inFlight.Add(processing);
        processing.ContinueWith(
            (task, state) =>
            {
                var listener = (QueueTriggerListener)state!;
                lock (listener._inFlight) listener._inFlight.Remove(task);
                listener._completed.Release();
            },
            this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task DrainAsync()
    {
        Task[] remaining;
        lock (_inFlight) remaining = [.. _inFlight];
        await Task.WhenAll(remaining);
    }

    private async Task ProcessAsync(QueueMessage message, CancellationToken stoppingToken)
    {
        try
        {
            // Dequeued more often than allowed without ever completing (a crashed or killed instance): never run it again.
            if (message.DequeueCount > _options.MaxDequeueCount)
            {
                await MoveToPoisonAsync(message, message.PopReceipt,
                    $"dequeued {message.DequeueCount} times without completing");
                return;
            }

            BinaryData body;
            try
            {
                body = Decode(message.Body);
            }
            catch (FormatException e)
            {
                await MoveToPoisonAsync(message, message.PopReceipt, $"the body is not valid {_options.MessageEncoding}: {e.Message}");
                return;
            }

            var lease = new MessageLease(this, message);
            Exception? failure = null;
            try
            {
                await _handler(message, body, stoppingToken);
            }
            catch (Exception e)
            {
                failure = e;
            }
            var popReceipt = await lease.StopAsync();

            if (failure is null)
            {
                await _queue.DeleteMessageAsync(message.MessageId, popReceipt, CancellationToken.None);
                LogCompleted(_logger, _function, message.MessageId);
            }
            else if (failure is OperationCanceledException && stoppingToken.IsCancellationRequested)
            {
                // Shutting down is not the message's fault: hand it straight back for another instance.
                await _queue.UpdateMessageAsync(message.MessageId, popReceipt, messageText: null, TimeSpan.Zero, CancellationToken.None);
                LogReleasedOnShutdown(_logger, _function, message.MessageId);
            }
            else if (message.DequeueCount >= _options.MaxDequeueCount)
            {
                await MoveToPoisonAsync(message, popReceipt, failure.Message);
            }
            else
            {
                LogFailed(_logger, failure, _function, message.MessageId, message.DequeueCount, _options.MaxDequeueCount,
                    _options.VisibilityTimeout, failure.Message);
                await _queue.UpdateMessageAsync(
                    message.MessageId, popReceipt, messageText: null, _options.VisibilityTimeout, CancellationToken.None);
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

    private async Task MoveToPoisonAsync(QueueMessage message, string popReceipt, string reason)
    {
        if (!_poisonQueueExists)
        {
            await _poisonQueue.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None);
            _poisonQueueExists = true;
        }
        // The body as received, still encoded, so the poison message reads like the original.
        await _poisonQueue.SendMessageAsync(message.Body, cancellationToken: CancellationToken.None);
        await _queue.DeleteMessageAsync(message.MessageId, popReceipt, CancellationToken.None);
        LogPoisoned(_logger, message.MessageId, _function, _poisonQueue.Name, message.DequeueCount, reason);
    }

    /// <summary>Keeps a message invisible while its function runs, renewing at half the lease.</summary>
    private sealed class MessageLease
    {
        private readonly QueueTriggerListener _listener;
        private readonly QueueMessage _message;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewing;
        private string _popReceipt;

        public MessageLease(QueueTriggerListener listener, QueueMessage message)
        {
            _listener = listener;
            _message = message;
            _popReceipt = message.PopReceipt;
            _renewing = RenewAsync();
        }

        /// <summary>Stops renewing and returns the current pop receipt, which completing the message needs.</summary>
        public async Task<string> StopAsync()
        {
            _stop.Cancel();
            await _renewing;
            _stop.Dispose();
            return _popReceipt;
        }

        private async Task RenewAsync()
        {
            var lease = _listener._options.MessageLease;
            try
            {
                while (true)
                {
                    await Task.Delay(lease / 2, _listener._time, _stop.Token);
                    // Not cancelled midway: a renewal that succeeded must hand back its new pop receipt.
                    var receipt = await _listener._queue.UpdateMessageAsync(
                        _message.MessageId, _popReceipt, messageText: null, lease, CancellationToken.None);
                    _popReceipt = receipt.Value.PopReceipt;
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                LogRenewFailed(_listener._logger, e, _listener._function, _message.MessageId, e.Message);
            }
        }
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Queue function {Function} could not poll {Queue}: {Error}")]
    private static partial void LogPollFailed(ILogger logger, Exception exception, string function, string queue, string error);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Function {Function} could not complete message {MessageId}; it becomes visible again when its lease ends: {Error}")]
    private static partial void LogCompletionFailed(ILogger logger, Exception exception, string function, string messageId, string error);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Function {Function} could not extend the lease of message {MessageId}; it may be delivered again while running: {Error}")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception, string function, string messageId, string error);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Stopped with {Count} messages of function {Function} still running; they stay in {Queue} and become visible again within {Lease}")]
    private static partial void LogAbandoned(ILogger logger, int count, string function, string queue, TimeSpan lease);
}
