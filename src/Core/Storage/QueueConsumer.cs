using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Telemetry;

namespace Serverless.Core.Storage;

/// <summary>How a <see cref="QueueConsumer"/> polls, batches and leases.</summary>
public sealed record QueueConsumerOptions
{
    /// <summary>Queue Storage's most messages per receive.</summary>
    public const int MaxBatchSize = 32;

    /// <summary>The shortest wait between polls, where the back-off starts over.</summary>
    public static readonly TimeSpan MinimumPollingInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>Messages asked for per poll (at most <see cref="MaxBatchSize"/>).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>A new poll only once the messages in flight are down to this many.</summary>
    public int NewBatchThreshold { get; init; } = 8;

    /// <summary>The most messages handled at once; by default a batch on top of the threshold, as the Functions host runs them.</summary>
    public int? MaxInFlight { get; init; }

    /// <summary>How long a received message stays invisible; renewed at half of it while its handler runs.</summary>
    public TimeSpan MessageLease { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The ceiling of the idle back-off. A consumer that takes wakes only polls on this back-off to find a message
    /// whose wake was lost, so this bounds how late such a message is taken.
    /// </summary>
    public TimeSpan MaxPollingInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// For a consumer that takes wakes: the ceiling of its back-off for <see cref="MissedWakeWindow"/> after a poll
    /// that no wake brought found messages (their wakes were lost, or their sender sends none). It then polls as a
    /// consumer without wakes does, so wakes that keep being lost (a sender that cannot reach this process, one that
    /// names an endpoint this process no longer listens on) cost this much each, not <see cref="MaxPollingInterval"/>.
    /// Null: the ceiling stays <see cref="MaxPollingInterval"/>.
    /// </summary>
    public TimeSpan? MissedWakePollingInterval { get; init; }

    /// <summary>How long a consumer keeps the shorter back-off of <see cref="MissedWakePollingInterval"/> after a missed wake (at most 150 polls at 2 s).</summary>
    public static readonly TimeSpan MissedWakeWindow = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Whether messages may also arrive express (<see cref="QueueConsumer.DeliverExpress"/>): each received message is then
    /// matched against them (<see cref="ExpressTwins"/>), so one sent both ways is handled once.
    /// </summary>
    public bool TakesExpress { get; init; }

    /// <summary>How long after an express message was handled its consumer polls to collect the queued twin (and those of any that follow).</summary>
    public static readonly TimeSpan TwinCollectionDelay = TimeSpan.FromSeconds(1);

    internal int InFlightLimit => MaxInFlight ?? BatchSize + NewBatchThreshold;
}

/// <summary>
/// The delay between polls of an empty queue: starts at <see cref="QueueConsumerOptions.MinimumPollingInterval"/>,
/// doubles (with ±20% jitter, so many pollers do not poll in step) up to the maximum, and starts over after
/// <see cref="Reset"/> — the Functions host's randomized exponential back-off, the one back-off of every queue poller here.
/// </summary>
public sealed class PollingBackoff(TimeSpan minimum, TimeSpan maximum, Random? random = null)
{
    private readonly Random _random = random ?? Random.Shared;
    private TimeSpan _current = TimeSpan.Zero;

    /// <summary>The next delay after a poll that found nothing.</summary>
    public TimeSpan Next()
    {
        var doubled = _current == TimeSpan.Zero ? minimum : _current * 2;
        _current = doubled > maximum ? maximum : doubled;
        var jittered = _current * (0.8 + 0.4 * _random.NextDouble());
        return jittered > maximum ? maximum : jittered < minimum ? minimum : jittered;
    }

    /// <summary>A poll found messages: poll fast again.</summary>
    public void Reset() => _current = TimeSpan.Zero;
}

/// <summary>
/// Takes messages from one queue and runs a handler for each, many at once: the one queue consumer of the
/// control plane's standalone queue triggers and of the worker's command queue. It polls in batches while
/// messages keep coming, backs off (<see cref="PollingBackoff"/>) while the queue is empty, and keeps each
/// message invisible with a <see cref="QueueMessageLease"/> while its handler runs.
/// </summary>
/// <remarks>
/// With a <see cref="WakeSignal"/> it polls when woken (whoever sends to the queue wakes it:
/// <see cref="QueueWake"/>), again at once after a full batch, and otherwise on the back-off, which then
/// climbs to <see cref="QueueConsumerOptions.MaxPollingInterval"/> and stays there: it only has to catch a
/// message whose wake was lost, and a message that a lease hands back for later wakes it when it is due.
/// Without a signal the back-off starts over whenever a poll finds messages, as the Functions host's does.
/// </remarks>
public sealed partial class QueueConsumer
{
    private readonly QueueClient _queue;
    private readonly QueueConsumerOptions _options;
    private readonly Func<QueueMessage, QueueMessageLease, CancellationToken, Task> _handler;
    private readonly WakeSignal? _wake;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PollingBackoff _backoff;
    private readonly PollingBackoff? _missedWakeBackoff;
    private DateTimeOffset _wakesMissedUntil = DateTimeOffset.MinValue;
    private readonly SemaphoreSlim _completed = new(0);
    private readonly HashSet<Task> _inFlight = [];
    private readonly ExpressTwins? _twins;
    private CancellationToken? _running;
    private int _collecting;
    private long _pollCount;
    private long _idleWaits;

    /// <param name="queue">The queue, with no message encoding of its own.</param>
    /// <param name="options">Batching, lease and back-off.</param>
    /// <param name="handler">
    /// Handles one message and settles its lease: <see cref="QueueMessageLease.DeleteAsync"/> when done,
    /// <see cref="QueueMessageLease.ReleaseAsync"/> to see it again later. A message left unsettled (the handler
    /// threw, or returned without settling) becomes visible again when its lease runs out.
    /// </param>
    /// <param name="time">The clock for polling delays and lease renewals.</param>
    /// <param name="logger">Receives poll and lease failures.</param>
    /// <param name="wake">Cuts an idle wait short when set; null to poll on the back-off alone.</param>
    public QueueConsumer(
        QueueClient queue, QueueConsumerOptions options, Func<QueueMessage, QueueMessageLease, CancellationToken, Task> handler,
        TimeProvider time, ILogger logger, WakeSignal? wake = null)
    {
        if (options.BatchSize is < 1 or > QueueConsumerOptions.MaxBatchSize)
            throw new ArgumentOutOfRangeException(nameof(options), $"BatchSize must be 1 to {QueueConsumerOptions.MaxBatchSize}");
        _queue = queue;
        _options = options;
        _handler = handler;
        _time = time;
        _logger = logger;
        _wake = wake;
        var floor = QueueConsumerOptions.MinimumPollingInterval;
        _backoff = new PollingBackoff(floor, options.MaxPollingInterval > floor ? options.MaxPollingInterval : floor);
        if (wake is not null && options.MissedWakePollingInterval is { } missed && missed < options.MaxPollingInterval)
            _missedWakeBackoff = new PollingBackoff(floor, missed > floor ? missed : floor);
        if (options.TakesExpress) _twins = new ExpressTwins(time);
    }

    public string QueueName => _queue.Name;

    /// <summary>How many times the queue has been polled.</summary>
    public long PollCount => Interlocked.Read(ref _pollCount);

    /// <summary>How many times the consumer has started waiting before its next poll.</summary>
    public long IdleWaits => Interlocked.Read(ref _idleWaits);

    /// <summary>The wait in progress (or last started) before the next poll.</summary>
    public TimeSpan CurrentIdleDelay { get; private set; }

    /// <summary>Whether the consumer is polling on the shorter back-off after a missed wake (<see cref="QueueConsumerOptions.MissedWakePollingInterval"/>).</summary>
    public bool MissingWakes => _missedWakeBackoff is not null && _time.GetUtcNow() < _wakesMissedUntil;

    /// <summary>How many messages are being handled right now.</summary>
    public int InFlightCount
    {
        get
        {
            lock (_inFlight) return _inFlight.Count;
        }
    }

    /// <summary>
    /// Polls until <paramref name="stoppingToken"/> is signalled, then waits for the handlers in flight.
    /// Handlers receive <paramref name="stoppingToken"/> as their cancellation token.
    /// </summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        _running = stoppingToken;
        try
        {
            await PollAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        _running = null;
        Task[] remaining;
        lock (_inFlight) remaining = [.. _inFlight];
        await Task.WhenAll(remaining);
    }

    private async Task PollAsync(CancellationToken stoppingToken)
    {
        await EnsureQueueExistsAsync(stoppingToken);
        using var depth = StorageTelemetry.ObserveDepth(_queue, _time);
        // Whether the coming poll was brought by a wake (the first one counts as woken: what it finds was sent before we listened).
        var woken = true;
        while (!stoppingToken.IsCancellationRequested)
        {
            // A new batch only when the previous ones have drained down to the threshold.
            while (InFlightCount > _options.NewBatchThreshold)
            {
                await _completed.WaitAsync(stoppingToken);
            }
            var batch = Math.Clamp(_options.InFlightLimit - InFlightCount, 1, _options.BatchSize);

            QueueMessage[] messages;
            try
            {
                Interlocked.Increment(ref _pollCount);
                // This poll collects whatever express twins are queued by now.
                Volatile.Write(ref _collecting, 0);
                messages = (await _queue.ReceiveMessagesAsync(batch, _options.MessageLease, stoppingToken)).Value;
            }
            catch (RequestFailedException e) when (e.ErrorCode == QueueErrorCode.QueueNotFound)
            {
                await EnsureQueueExistsAsync(stoppingToken);
                continue;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogPollFailed(_logger, e, _queue.Name, e.Message);
                woken = await IdleAsync(stoppingToken);
                continue;
            }

            if (messages.Length == 0)
            {
                woken = await IdleAsync(stoppingToken);
                continue;
            }

            if (!woken && _missedWakeBackoff is not null && !MissingWakes)
            {
                // Work found by the safety-net poll, which no wake announced: poll as without wakes for a while, so the
                // next lost wakes cost seconds. Only the long wait counts: a fast poll meanwhile may simply beat a wake
                // on its way, and must not keep this going.
                LogWakesMissed(_logger, _queue.Name, messages.Length, _options.MissedWakePollingInterval!.Value);
                _wakesMissedUntil = _time.GetUtcNow() + QueueConsumerOptions.MissedWakeWindow;
            }

            var received = _time.GetUtcNow();
            foreach (var message in messages)
            {
                StorageTelemetry.RecordReceived(_queue.Name, message.InsertedOn, received);
                Track(Task.Run(() => HandleAsync(message, stoppingToken), CancellationToken.None));
            }

            if (_wake is null)
            {
                // Busy: poll fast again, as the host does.
                _backoff.Reset();
            }
            else if (MissingWakes)
            {
                // Wakes are being lost: poll again at once and fast after that, as without wakes.
                _missedWakeBackoff!.Reset();
            }
            else if (messages.Length < batch)
            {
                // A short batch drained the queue, and whoever sends next wakes us: polling again now, and fast
                // after that, would only cost storage calls. The back-off covers a message sent without a wake.
                woken = await IdleAsync(stoppingToken);
            }
        }
    }

    /// <summary>
    /// A message that came express (<see cref="QueueWake.TakeExpress"/>): handled now, beside the polls; its queued
    /// twin is then only deleted, or handled as usual when this copy was not settled as done. False when this
    /// consumer takes no express messages, is not running, or already handles as many messages as it may at once (the
    /// caller then wakes it to poll instead: the queued copy waits its turn, as it would have without the datagram).
    /// </summary>
    /// <param name="messageText">The message's text, exactly as it is (or will be) on the queue.</param>
    /// <param name="enqueued">Whether the queued copy is already there: the consumer then polls for it once this one is handled.</param>
    public bool DeliverExpress(string messageText, bool enqueued)
    {
        if (_twins is null || _running is not { } stoppingToken || stoppingToken.IsCancellationRequested
            || InFlightCount >= _options.InFlightLimit) return false;
        var key = ExpressTwins.KeyOf(System.Text.Encoding.UTF8.GetBytes(messageText));
        // Its queued twin, or an earlier express copy, was taken already.
        if (_twins.Expressed(key) is not { } handled) return true;
        var now = _time.GetUtcNow();
        var message = QueuesModelFactory.QueueMessage(
            $"express-{key:x32}", popReceipt: "", BinaryData.FromString(messageText), dequeueCount: 1, nextVisibleOn: null, insertedOn: now, expiresOn: null);
        Track(Task.Run(async () =>
        {
            var settledDone = false;
            try
            {
                settledDone = await HandleExpressAsync(message, stoppingToken);
            }
            finally
            {
                handled.TrySetResult(settledDone);
                // Collect the queued twin soon rather than at the idle back-off (a sender ahead of its queued copy wakes us
                // itself): one poll a little later collects the twins of a whole burst.
                if (enqueued && _wake is not null && Interlocked.Exchange(ref _collecting, 1) == 0)
                    _wake.SetAfter(QueueConsumerOptions.TwinCollectionDelay, _time);
            }
        }, CancellationToken.None));
        return true;
    }

    private async Task<bool> HandleExpressAsync(QueueMessage message, CancellationToken stoppingToken)
    {
        await using var lease = QueueMessageLease.Express(message, _logger, _wake is null ? null : delay => _wake.SetAfter(delay, _time));
        try
        {
            await _handler(message, lease, stoppingToken);
        }
        catch (Exception e)
        {
            LogHandlerFailed(_logger, e, message.MessageId, _queue.Name, e.Message);
        }
        return lease.IsDone;
    }

    private async Task HandleAsync(QueueMessage message, CancellationToken stoppingToken)
    {
        await using var lease = new QueueMessageLease(_queue, message, _options.MessageLease, _time, _logger,
            _wake is null ? null : delay => _wake.SetAfter(delay, _time));
        try
        {
            if (_twins?.Queued(ExpressTwins.KeyOf(message.Body.ToMemory().Span)) is { } expressed && await expressed)
            {
                // Its express twin was handled to the end: this copy is only taken off the queue.
                await lease.DeleteAsync(CancellationToken.None);
                LogTwinDeleted(_logger, message.MessageId, _queue.Name);
                return;
            }
            await _handler(message, lease, stoppingToken);
        }
        catch (Exception e)
        {
            // The handler's own failure policy did not settle it: the message comes back when its lease runs out.
            LogHandlerFailed(_logger, e, message.MessageId, _queue.Name, e.Message);
        }
        // Unsettled, it becomes visible again within a lease, announced by no one: look then, not at the idle back-off.
        if (!lease.IsSettled && _wake is not null && !stoppingToken.IsCancellationRequested) _wake.SetAfter(_options.MessageLease, _time);
    }

    /// <returns>True when a wake ended the wait.</returns>
    private async Task<bool> IdleAsync(CancellationToken stoppingToken)
    {
        var delay = MissingWakes ? _missedWakeBackoff!.Next() : _backoff.Next();
        // Start the timer before publishing the wait, so an observer that sees it can advance a fake clock past it.
        var wait = _wake?.WaitAsync(delay, _time, stoppingToken) ?? SleepAsync(delay, stoppingToken);
        CurrentIdleDelay = delay;
        Interlocked.Increment(ref _idleWaits);
        // Woken or not, the back-off stays where it is: with wakes it is only the safety net for a lost one.
        return await wait;
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
                // Storage not reachable yet (Azurite still starting): keep trying, on the back-off.
                LogPollFailed(_logger, e, _queue.Name, e.Message);
                await IdleAsync(stoppingToken);
            }
        }
    }

    private void Track(Task handling)
    {
        lock (_inFlight) _inFlight.Add(handling);
        handling.ContinueWith(
            (task, state) =>
            {
                var consumer = (QueueConsumer)state!;
                lock (consumer._inFlight) consumer._inFlight.Remove(task);
                consumer._completed.Release();
            },
            this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Queue {Queue}: a poll no wake brought found {Count} message(s); polling at most every {Interval} for a while")]
    private static partial void LogWakesMissed(ILogger logger, string queue, int count, TimeSpan interval);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Deleted message {MessageId} of {Queue}: its express twin was handled")]
    private static partial void LogTwinDeleted(ILogger logger, string messageId, string queue);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not poll queue {Queue}: {Error}")]
    private static partial void LogPollFailed(ILogger logger, Exception exception, string queue, string error);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Handling message {MessageId} of {Queue} failed; it becomes visible again when its lease ends: {Error}")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string messageId, string queue, string error);
}

/// <summary>
/// Keeps a received message invisible while it is being handled, renewing its visibility at half the lease,
/// and settles it once: deleted, or handed back for later. Tracks the pop receipt, which every visibility
/// update replaces. Disposing without settling stops the renewals: the message comes back when the lease ends.
/// </summary>
public sealed partial class QueueMessageLease : IAsyncDisposable
{
    private readonly QueueClient? _queue;
    private readonly QueueMessage _message;
    private readonly TimeSpan _lease;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Action<TimeSpan>? _released;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _renewing;
    private string _popReceipt;
    private int _settled;

    /// <param name="released">Told when the message was handed back visible after a delay (to wake its poller then).</param>
    public QueueMessageLease(QueueClient queue, QueueMessage message, TimeSpan lease, TimeProvider time, ILogger logger, Action<TimeSpan>? released = null)
    {
        _queue = queue;
        _message = message;
        _lease = lease;
        _time = time;
        _logger = logger;
        _released = released;
        _popReceipt = message.PopReceipt;
        _renewing = RenewAsync(queue);
    }

    private QueueMessageLease(QueueMessage message, ILogger logger, Action<TimeSpan>? released)
    {
        _message = message;
        _logger = logger;
        _released = released;
        _time = TimeProvider.System;
        _popReceipt = message.PopReceipt;
        _renewing = Task.CompletedTask;
    }

    /// <summary>
    /// The lease of an express copy (<see cref="QueueConsumer.DeliverExpress"/>), which is on no queue: settling it
    /// touches no storage and only decides what becomes of its queued twin (deleted when this one is done, handled
    /// again when it was handed back).
    /// </summary>
    public static QueueMessageLease Express(QueueMessage message, ILogger logger, Action<TimeSpan>? released)
        => new(message, logger, released);

    /// <summary>Whether the message was deleted or handed back (by this lease).</summary>
    public bool IsSettled => Volatile.Read(ref _settled) == 1;

    /// <summary>Whether the message was settled as done (deleted).</summary>
    public bool IsDone { get; private set; }

    /// <summary>The current pop receipt (for a caller that settles the message itself after <see cref="StopRenewingAsync"/>).</summary>
    public string PopReceipt => Volatile.Read(ref _popReceipt);

    /// <summary>Done with: the message goes. A message already gone, or taken by a redelivery after the lease ran out, is not an error.</summary>
    public Task DeleteAsync(CancellationToken cancellationToken) => SettleAsync(async receipt =>
    {
        IsDone = true;
        if (_queue is null) return;
        try
        {
            await _queue.DeleteMessageAsync(_message.MessageId, receipt, cancellationToken);
        }
        catch (RequestFailedException e) when (IsLost(e))
        {
            _logger.LogInformation("Message {MessageId} was no longer ours to delete ({Error}): its redelivery settles it", _message.MessageId, e.ErrorCode);
        }
    });

    /// <summary>
    /// The message is no longer this lease's: deleted (404), or its lease ran out before a renewal and a
    /// receive took it with a new pop receipt (400 <c>PopReceiptMismatch</c>), so its redelivery settles it.
    /// </summary>
    private static bool IsLost(RequestFailedException e) => e.Status == 404 || e.ErrorCode == "PopReceiptMismatch";

    /// <summary>Hands the message back, visible again after <paramref name="delay"/> (zero: at once) for another try.</summary>
    public Task ReleaseAsync(TimeSpan delay, CancellationToken cancellationToken) => SettleAsync(async receipt =>
    {
        if (_queue is not null)
        {
            try
            {
                await _queue.UpdateMessageAsync(_message.MessageId, receipt, messageText: null, delay, cancellationToken);
            }
            catch (RequestFailedException e) when (IsLost(e))
            {
                return;   // gone, or visible again and taken by a redelivery: it comes back without us
            }
        }
        // An express copy handed back: its queued twin, handled as usual, is the retry, when it is due.
        _released?.Invoke(delay);
    });

    /// <summary>Stops renewing and settles nothing: the message keeps its current visibility.</summary>
    public async Task StopRenewingAsync()
    {
        await _stop.CancelAsync();
        await _renewing;
    }

    public async ValueTask DisposeAsync()
    {
        await StopRenewingAsync();
        _stop.Dispose();
    }

    private async Task SettleAsync(Func<string, Task> settle)
    {
        if (Interlocked.Exchange(ref _settled, 1) == 1) throw new InvalidOperationException($"Message {_message.MessageId} is already settled");
        await StopRenewingAsync();
        await settle(PopReceipt);
    }

    private async Task RenewAsync(QueueClient queue)
    {
        while (true)
        {
            try
            {
                await Task.Delay(_lease / 2, _time, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                // Not cancelled midway: a renewal that succeeded must hand back its new pop receipt.
                var receipt = await queue.UpdateMessageAsync(_message.MessageId, PopReceipt, messageText: null, _lease, CancellationToken.None);
                Volatile.Write(ref _popReceipt, receipt.Value.PopReceipt);
            }
            catch (RequestFailedException e) when (e.Status is 400 or 404)
            {
                // The receipt no longer matches (the lease ran out and someone else took it) or the message is gone.
                LogRenewFailed(_logger, e, _message.MessageId, queue.Name, e.Message);
                return;
            }
            catch (Exception e)
            {
                // Storage busy or unreachable: try again at the next half lease, which still falls within this one.
                LogRenewFailed(_logger, e, _message.MessageId, queue.Name, e.Message);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Could not extend the lease of message {MessageId} of {Queue}; it may be delivered again while still handled: {Error}")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception, string messageId, string queue, string error);
}
