using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Storage;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Storage;

/// <summary>The one queue consumer: its back-off, its wakes and its leases, on a fake clock over real Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class QueueConsumerTests(AzuriteFixture azurite)
{
    private static readonly TimeSpan Ceiling = TimeSpan.FromSeconds(60);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private async Task<QueueClient> QueueAsync()
    {
        var queue = new QueueClient(azurite.ConnectionString, TestNames.Unique("consumer"), new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None });
        await queue.CreateIfNotExistsAsync(cancellationToken: _token);
        return queue;
    }

    private static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Ceiling;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Gave up waiting for: {what}");
            await Task.Delay(10);
        }
    }

    [Fact]
    public void The_back_off_doubles_from_the_minimum_to_the_maximum_and_starts_over_after_a_reset()
    {
        var backoff = new PollingBackoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(60), new Random(7));
        var delays = Enumerable.Range(0, 14).Select(_ => backoff.Next()).ToList();

        Assert.InRange(delays[0], TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(120));
        // Each step about twice the last (±20% jitter), never past the maximum, and there after 10 doublings.
        for (var i = 1; i < 10; i++) Assert.InRange(delays[i].TotalMilliseconds, 100 * Math.Pow(2, i) * 0.8, 100 * Math.Pow(2, i) * 1.2);
        Assert.All(delays, d => Assert.True(d <= TimeSpan.FromSeconds(60)));
        Assert.InRange(delays[^1], TimeSpan.FromSeconds(48), TimeSpan.FromSeconds(60));

        backoff.Reset();
        Assert.InRange(backoff.Next(), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(120));
    }

    [Fact]
    public async Task A_woken_consumer_backs_off_to_its_ceiling_and_a_wake_brings_the_next_message_at_once()
    {
        var queue = await QueueAsync();
        using var wakes = new QueueWake(NullLogger<QueueWake>.Instance);
        var handled = 0;
        var consumer = new QueueConsumer(queue, new QueueConsumerOptions { MaxPollingInterval = TimeSpan.FromSeconds(60) },
            async (_, lease, token) =>
            {
                Interlocked.Increment(ref handled);
                await lease.DeleteAsync(token);
            }, _time, NullLogger.Instance, wakes.Signal(queue.Name));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var running = consumer.RunAsync(stop.Token);

        // Idle: each wait twice the last, up to the ceiling, advancing the fake clock exactly to each poll.
        var waits = 0L;
        while (consumer.CurrentIdleDelay < TimeSpan.FromSeconds(48))
        {
            await UntilAsync(() => consumer.IdleWaits > waits, "the next idle wait");
            waits = consumer.IdleWaits;
            if (consumer.CurrentIdleDelay < TimeSpan.FromSeconds(48)) _time.Advance(consumer.CurrentIdleDelay);
        }
        Assert.InRange(consumer.PollCount, 8, 13);
        var polls = consumer.PollCount;

        await queue.SendMessageAsync("work", _token);
        wakes.Local(queue.Name);

        // No tick of the clock: the wake alone brought the poll, and the short batch sends it back to its long wait.
        await UntilAsync(() => Volatile.Read(ref handled) == 1 && consumer.IdleWaits > waits, "the message, then the next wait");
        Assert.Equal(polls + 1, consumer.PollCount);
        Assert.InRange(consumer.CurrentIdleDelay, TimeSpan.FromSeconds(48), TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task Without_a_wake_a_poll_that_finds_messages_starts_the_back_off_over()
    {
        var queue = await QueueAsync();
        var handled = 0;
        var consumer = new QueueConsumer(queue, new QueueConsumerOptions { MaxPollingInterval = TimeSpan.FromSeconds(60) },
            async (_, lease, token) =>
            {
                Interlocked.Increment(ref handled);
                await lease.DeleteAsync(token);
            }, _time, NullLogger.Instance);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var running = consumer.RunAsync(stop.Token);
        var waits = 0L;
        for (var i = 0; i < 6; i++)
        {
            await UntilAsync(() => consumer.IdleWaits > waits, "the next idle wait");
            waits = consumer.IdleWaits;
            _time.Advance(consumer.CurrentIdleDelay);
        }
        await UntilAsync(() => consumer.IdleWaits > waits, "the next idle wait");
        waits = consumer.IdleWaits;
        Assert.True(consumer.CurrentIdleDelay > TimeSpan.FromSeconds(2));

        await queue.SendMessageAsync("work", _token);
        _time.Advance(consumer.CurrentIdleDelay);

        await UntilAsync(() => Volatile.Read(ref handled) == 1 && consumer.IdleWaits > waits, "the message, then the next wait");
        Assert.InRange(consumer.CurrentIdleDelay, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(120));
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_message_no_wake_announced_brings_the_short_back_off_back_for_a_while()
    {
        var queue = await QueueAsync();
        using var wakes = new QueueWake(NullLogger<QueueWake>.Instance);
        var handled = 0;
        var consumer = new QueueConsumer(queue,
            new QueueConsumerOptions { MaxPollingInterval = TimeSpan.FromSeconds(120), MissedWakePollingInterval = TimeSpan.FromSeconds(2) },
            async (_, lease, token) =>
            {
                Interlocked.Increment(ref handled);
                await lease.DeleteAsync(token);
            }, _time, NullLogger.Instance, wakes.Signal(queue.Name));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var running = consumer.RunAsync(stop.Token);
        var waits = 0L;
        while (consumer.CurrentIdleDelay < TimeSpan.FromSeconds(96))
        {
            await UntilAsync(() => consumer.IdleWaits > waits, "the next idle wait");
            waits = consumer.IdleWaits;
            if (consumer.CurrentIdleDelay < TimeSpan.FromSeconds(96)) _time.Advance(consumer.CurrentIdleDelay);
        }
        Assert.False(consumer.MissingWakes);

        // Sent without a wake: only the safety-net poll finds it.
        await queue.SendMessageAsync("lost wake", _token);
        _time.Advance(consumer.CurrentIdleDelay);
        await UntilAsync(() => Volatile.Read(ref handled) == 1 && consumer.IdleWaits > waits, "the message, then the next wait");

        // From now on the queue is polled as without wakes: fast, backing off to 2 s, not 120 s.
        Assert.True(consumer.MissingWakes);
        var missedAt = _time.GetUtcNow();
        for (var i = 0; i < 8; i++)
        {
            await UntilAsync(() => consumer.IdleWaits > waits, "the next idle wait");
            waits = consumer.IdleWaits;
            Assert.True(consumer.CurrentIdleDelay <= TimeSpan.FromSeconds(2), $"wait {consumer.CurrentIdleDelay}");
            _time.Advance(consumer.CurrentIdleDelay);
        }
        // A message a fast poll finds meanwhile does not prolong it: the window ends where the safety net's find put it.
        await queue.SendMessageAsync("found fast", _token);
        await UntilAsync(() => consumer.IdleWaits > waits, "the next idle wait");
        _time.Advance(consumer.CurrentIdleDelay);
        await UntilAsync(() => Volatile.Read(ref handled) == 2, "the second message");
        _time.Advance(missedAt + QueueConsumerOptions.MissedWakeWindow - _time.GetUtcNow());
        Assert.False(consumer.MissingWakes);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_message_left_unsettled_wakes_its_poller_when_its_lease_ends()
    {
        var queue = await QueueAsync();
        using var wakes = new QueueWake(NullLogger<QueueWake>.Instance);
        var deliveries = 0;
        var consumer = new QueueConsumer(queue,
            new QueueConsumerOptions { MaxPollingInterval = TimeSpan.FromSeconds(120), MessageLease = TimeSpan.FromSeconds(1) },
            async (_, lease, token) =>
            {
                // The first delivery fails without settling; the second succeeds.
                if (Interlocked.Increment(ref deliveries) > 1) await lease.DeleteAsync(token);
            }, _time, NullLogger.Instance, wakes.Signal(queue.Name));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var running = consumer.RunAsync(stop.Token);
        await UntilAsync(() => consumer.IdleWaits > 0, "the first idle wait");

        await queue.SendMessageAsync("fails once", _token);
        wakes.Local(queue.Name);
        await UntilAsync(() => Volatile.Read(ref deliveries) == 1 && consumer.InFlightCount == 0, "the failed delivery");
        var polls = consumer.PollCount;
        // Visible again once its lease has run out (storage's own clock)...
        var deadline = DateTime.UtcNow + Ceiling;
        while ((await queue.PeekMessagesAsync(1, _token)).Value.Length == 0)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the message never became visible again");
            await Task.Delay(50, _token);
        }
        Assert.Equal(polls, consumer.PollCount);

        // ...and taken at the lease's end on the consumer's clock, long before the 120 s safety net.
        _time.Advance(TimeSpan.FromSeconds(1));
        await UntilAsync(() => Volatile.Read(ref deliveries) == 2, "the second delivery");
        Assert.False(consumer.MissingWakes);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_lease_renews_the_message_at_half_its_length_and_settles_with_the_newest_receipt()
    {
        var queue = await QueueAsync();
        await queue.SendMessageAsync("long work", _token);
        var message = Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30), _token)).Value);
        await using var lease = new QueueMessageLease(queue, message, TimeSpan.FromSeconds(30), _time, NullLogger.Instance);

        for (var i = 1; i <= 2; i++)
        {
            var before = lease.PopReceipt;
            _time.Advance(TimeSpan.FromSeconds(15));
            await UntilAsync(() => lease.PopReceipt != before, $"renewal {i}");
        }
        Assert.NotEqual(message.PopReceipt, lease.PopReceipt);
        // Still invisible to anyone else while leased.
        Assert.Empty((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(1), _token)).Value);

        await lease.DeleteAsync(_token);
        Assert.Equal(0, (await queue.GetPropertiesAsync(_token)).Value.ApproximateMessagesCount);
        await Assert.ThrowsAsync<InvalidOperationException>(() => lease.DeleteAsync(_token));
    }

    [Fact]
    public async Task A_lease_that_ran_out_and_was_taken_by_a_redelivery_settles_quietly_and_leaves_the_message_to_it()
    {
        // Storage too slow to renew in time: the message became visible and another receive holds it now.
        var queue = await QueueAsync();
        await queue.SendMessageAsync("start", _token);
        var first = Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(1), _token)).Value);
        await using var stale = new QueueMessageLease(queue, first, TimeSpan.FromMinutes(10), _time, NullLogger.Instance);
        await Task.Delay(TimeSpan.FromSeconds(2), _token);
        var again = Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30), _token)).Value);
        Assert.Equal(first.MessageId, again.MessageId);

        await stale.DeleteAsync(_token);   // the work was done; the redelivery does it again, idempotently
        await using var staleToo = new QueueMessageLease(queue, first, TimeSpan.FromMinutes(10), _time, NullLogger.Instance);
        await staleToo.ReleaseAsync(TimeSpan.Zero, _token);

        // The redelivery's holder still settles it.
        await queue.DeleteMessageAsync(again.MessageId, again.PopReceipt, _token);
        Assert.Equal(0, (await queue.GetPropertiesAsync(_token)).Value.ApproximateMessagesCount);
    }

    [Fact]
    public async Task A_message_handed_back_for_later_wakes_its_poller_when_it_is_due()
    {
        var queue = await QueueAsync();
        await queue.SendMessageAsync("retry me", _token);
        var message = Assert.Single((await queue.ReceiveMessagesAsync(1, TimeSpan.FromSeconds(30), _token)).Value);
        using var wakes = new QueueWake(NullLogger<QueueWake>.Instance);
        var signal = wakes.Signal(queue.Name);
        var lease = new QueueMessageLease(queue, message, TimeSpan.FromSeconds(30), _time, NullLogger.Instance, delay => signal.SetAfter(delay, _time));

        await lease.ReleaseAsync(TimeSpan.FromSeconds(10), _token);
        var woken = signal.WaitAsync(TimeSpan.FromMinutes(5), _time, _token);
        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(woken.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(await woken.WaitAsync(Ceiling, _token));
        await lease.DisposeAsync();
    }

    [Fact]
    public async Task A_requeue_after_wakes_this_processs_own_poller_when_the_message_becomes_visible()
    {
        using var wakes = new QueueWake(NullLogger<QueueWake>.Instance);
        var signal = wakes.Signal("reconcile");
        var woken = signal.WaitAsync(TimeSpan.FromMinutes(5), _time, _token);

        wakes.LocalAfter("reconcile", TimeSpan.FromSeconds(20), _time);
        _time.Advance(TimeSpan.FromSeconds(19));
        Assert.False(woken.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(await woken.WaitAsync(Ceiling, _token));
    }

    /// <summary>A consumer that takes express messages, with a handler that records each text and settles it as told.</summary>
    private (QueueConsumer Consumer, List<string> Handled, QueueWake Wakes) ExpressConsumer(QueueClient queue, Func<string, bool>? done = null)
    {
        var wakes = new QueueWake(NullLogger<QueueWake>.Instance);
        var handled = new List<string>();
        var consumer = new QueueConsumer(queue, new QueueConsumerOptions { MaxPollingInterval = TimeSpan.FromSeconds(60), TakesExpress = true },
            async (message, lease, token) =>
            {
                var text = message.Body.ToString();
                lock (handled) handled.Add(text);
                if (done?.Invoke(text) ?? true) await lease.DeleteAsync(token);
                else await lease.ReleaseAsync(TimeSpan.Zero, token);
            }, _time, NullLogger.Instance, wakes.Signal(queue.Name));
        return (consumer, handled, wakes);
    }

    private static int CountOf(List<string> handled)
    {
        lock (handled) return handled.Count;
    }

    [Fact]
    public async Task A_message_sent_express_and_queued_is_handled_once_and_its_queued_twin_only_deleted()
    {
        var queue = await QueueAsync();
        var (consumer, handled, wakes) = ExpressConsumer(queue);
        using var _ = wakes;
        Assert.False(consumer.DeliverExpress("before it runs", enqueued: false));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var running = consumer.RunAsync(stop.Token);
        await UntilAsync(() => consumer.IdleWaits > 0, "the first idle wait");

        await queue.SendMessageAsync("start task 1", _token);
        Assert.True(consumer.DeliverExpress("start task 1", enqueued: true));

        // Handled from the datagram; a little later the consumer polls and only deletes the queued copy.
        await UntilAsync(() => CountOf(handled) == 1, "the express copy handled");
        var polls = consumer.PollCount;
        await Task.Delay(100, _token);
        Assert.Equal(polls, consumer.PollCount);
        _time.Advance(QueueConsumerOptions.TwinCollectionDelay);
        await UntilAsync(() => queue.GetProperties(_token).Value.ApproximateMessagesCount == 0, "the queued twin deleted");
        Assert.Equal(["start task 1"], handled);
        // A second datagram of the same message (a replay, or a retry of the send) is not handled again.
        Assert.True(consumer.DeliverExpress("start task 1", enqueued: true));
        await Task.Delay(100, _token);
        Assert.Single(handled);

        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task An_express_copy_handed_back_leaves_its_queued_twin_to_be_handled_as_usual()
    {
        var queue = await QueueAsync();
        var attempts = 0;
        var (consumer, handled, wakes) = ExpressConsumer(queue, _ => Interlocked.Increment(ref attempts) > 1);
        using var _ = wakes;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var running = consumer.RunAsync(stop.Token);
        await UntilAsync(() => consumer.IdleWaits > 0, "the first idle wait");

        await queue.SendMessageAsync("stop task 2", _token);
        consumer.DeliverExpress("stop task 2", enqueued: true);

        await UntilAsync(() => CountOf(handled) == 2, "the queued twin handled after the express copy failed");
        await UntilAsync(() => queue.GetProperties(_token).Value.ApproximateMessagesCount == 0, "the queued copy deleted by its handler");
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task An_express_copy_that_comes_after_its_queued_twin_is_dropped()
    {
        var queue = await QueueAsync();
        var (consumer, handled, wakes) = ExpressConsumer(queue);
        using var _ = wakes;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var running = consumer.RunAsync(stop.Token);
        await UntilAsync(() => consumer.IdleWaits > 0, "the first idle wait");

        await queue.SendMessageAsync("report task 3 RUNNING", _token);
        wakes.Local(queue.Name);
        await UntilAsync(() => CountOf(handled) == 1, "the queued copy handled");
        Assert.True(consumer.DeliverExpress("report task 3 RUNNING", enqueued: false));
        // A different message is still taken express.
        Assert.True(consumer.DeliverExpress("report task 4 RUNNING", enqueued: false));

        await UntilAsync(() => CountOf(handled) == 2, "the other express message handled");
        Assert.Equal(["report task 3 RUNNING", "report task 4 RUNNING"], handled);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_consumer_at_its_limit_takes_no_express_message_and_leaves_it_to_the_queue()
    {
        var queue = await QueueAsync();
        using var wakes = new QueueWake(NullLogger<QueueWake>.Instance);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handled = new List<string>();
        var consumer = new QueueConsumer(queue,
            new QueueConsumerOptions { BatchSize = 1, NewBatchThreshold = 0, MaxInFlight = 1, MaxPollingInterval = TimeSpan.FromSeconds(60), TakesExpress = true },
            async (message, lease, token) =>
            {
                lock (handled) handled.Add(message.Body.ToString());
                await gate.Task.WaitAsync(token);
                await lease.DeleteAsync(token);
            }, _time, NullLogger.Instance, wakes.Signal(queue.Name));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var running = consumer.RunAsync(stop.Token);
        await UntilAsync(() => consumer.IdleWaits > 0, "the first idle wait");

        Assert.True(consumer.DeliverExpress("first", enqueued: false));
        await UntilAsync(() => consumer.InFlightCount == 1, "the first one in flight");
        // As many in flight as it may have: the second is left to its queued copy.
        Assert.False(consumer.DeliverExpress("second", enqueued: true));
        await queue.SendMessageAsync("second", _token);
        gate.SetResult();
        wakes.Local(queue.Name);

        await UntilAsync(() => CountOf(handled) == 2, "the queued copy handled");
        await UntilAsync(() => queue.GetProperties(_token).Value.ApproximateMessagesCount == 0, "the queued copy deleted");
        await stop.CancelAsync();
        await running;
    }
}
