using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Storage;
using Serverless.Functions.Standalone;
using Serverless.TestSupport;

namespace Serverless.Functions.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class QueueTriggerListenerTests(AzuriteFixture azurite)
{
    private static readonly QueueTriggerOptions Fast = new()
    {
        MaxPollingInterval = TimeSpan.FromMilliseconds(200),
        VisibilityTimeout = TimeSpan.Zero,
        MaxDequeueCount = 3,
        MessageEncoding = QueueMessageEncoding.None,
    };

    private readonly ListLogger _logger = new();

    // Unique per test, and short enough to leave room for "-poison" within the 63 characters a queue name may have.
    private static string UniqueName(string purpose) => $"fn-{purpose}-{Guid.NewGuid():N}";

    private QueueClient Queue(string name)
        => new(azurite.ConnectionString, name, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None });

    private QueueTriggerListener Listener(
        string queue, QueueTriggerOptions options, Func<QueueMessage, BinaryData, CancellationToken, Task> handler,
        TimeProvider? time = null, WakeSignal? wake = null)
        => new("TestFunction", Queue(queue), Queue(queue + "-poison"), options, handler, time ?? TimeProvider.System, _logger, wake);

    private static async Task<QueueProperties> PropertiesAsync(QueueClient queue) => (await queue.GetPropertiesAsync()).Value;

    [Fact]
    public async Task A_message_that_always_fails_ends_in_the_poison_queue_after_maxDequeueCount_attempts()
    {
        var name = UniqueName("poison");
        var queue = Queue(name);
        await queue.CreateAsync();
        var sent = (await queue.SendMessageAsync("""{"v":1,"cluster":"default"}""")).Value;
        var attempts = 0;
        var listener = Listener(name, Fast, (_, _, _) =>
        {
            Interlocked.Increment(ref attempts);
            throw new InvalidOperationException("the cluster is gone");
        });
        using var stop = new CancellationTokenSource();

        var running = listener.RunAsync(stop.Token);
        var poison = Queue(name + "-poison");
        await Eventually.TrueAsync(async () => (await poison.ExistsAsync()).Value && (await PropertiesAsync(poison)).ApproximateMessagesCount == 1,
            "the message in the poison queue");
        await stop.CancelAsync();
        await running;

        Assert.Equal(3, attempts);
        var poisoned = Assert.Single((await poison.PeekMessagesAsync()).Value);
        Assert.Equal("""{"v":1,"cluster":"default"}""", poisoned.Body.ToString());
        Assert.Equal(0, (await PropertiesAsync(queue)).ApproximateMessagesCount);
        var line = Assert.Single(_logger.At(LogLevel.Error));
        Assert.Contains("TestFunction", line);
        Assert.Contains(sent.MessageId, line);
        Assert.Contains("the cluster is gone", line);
        Assert.Equal(2, _logger.At(LogLevel.Warning).Count(l => l.Contains("retried")));
    }

    [Fact]
    public async Task A_message_whose_function_succeeds_is_deleted()
    {
        var name = UniqueName("ok");
        var queue = Queue(name);
        await queue.CreateAsync();
        await queue.SendMessageAsync("hello");
        var received = new List<string>();
        var listener = Listener(name, Fast, (_, body, _) =>
        {
            lock (received) received.Add(body.ToString());
            return Task.CompletedTask;
        });
        using var stop = new CancellationTokenSource();

        var running = listener.RunAsync(stop.Token);
        await Eventually.TrueAsync(async () => received.Count == 1 && listener.InFlightCount == 0
                                               && (await PropertiesAsync(queue)).ApproximateMessagesCount == 0,
            "the message processed and deleted");
        await stop.CancelAsync();
        await running;

        Assert.Equal(["hello"], received);
        Assert.False((await Queue(name + "-poison").ExistsAsync()).Value);
    }

    [Fact]
    public async Task A_failed_message_is_retried_and_deleted_once_it_succeeds()
    {
        var name = UniqueName("retry");
        var queue = Queue(name);
        await queue.CreateAsync();
        await queue.SendMessageAsync("flaky");
        var attempts = 0;
        var listener = Listener(name, Fast, (message, _, _) =>
            Interlocked.Increment(ref attempts) == 1 ? throw new TimeoutException("first try") : Task.CompletedTask);
        using var stop = new CancellationTokenSource();

        var running = listener.RunAsync(stop.Token);
        await Eventually.TrueAsync(async () => attempts == 2 && listener.InFlightCount == 0
                                               && (await PropertiesAsync(queue)).ApproximateMessagesCount == 0,
            "the retry to succeed");
        await stop.CancelAsync();
        await running;

        Assert.False((await Queue(name + "-poison").ExistsAsync()).Value);
    }

    [Fact]
    public async Task Base64_bodies_are_decoded_and_undecodable_ones_are_poisoned_without_running_the_function()
    {
        var name = UniqueName("b64");
        var queue = Queue(name);
        await queue.CreateAsync();
        await queue.SendMessageAsync(Convert.ToBase64String("héllo"u8.ToArray()));
        await queue.SendMessageAsync("not base64 !");
        var received = new List<string>();
        var listener = Listener(name, Fast with { MessageEncoding = QueueMessageEncoding.Base64 }, (_, body, _) =>
        {
            lock (received) received.Add(body.ToString());
            return Task.CompletedTask;
        });
        using var stop = new CancellationTokenSource();

        var running = listener.RunAsync(stop.Token);
        var poison = Queue(name + "-poison");
        await Eventually.TrueAsync(async () => received.Count == 1 && (await poison.ExistsAsync()).Value
                                               && (await PropertiesAsync(poison)).ApproximateMessagesCount == 1,
            "one message decoded, one poisoned");
        await stop.CancelAsync();
        await running;

        Assert.Equal(["héllo"], received);
        Assert.Equal("not base64 !", Assert.Single((await poison.PeekMessagesAsync()).Value).Body.ToString());
        Assert.Contains("base64", Assert.Single(_logger.At(LogLevel.Error)), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task An_empty_queue_is_polled_ever_less_often_and_fast_again_once_a_message_arrives()
    {
        var name = UniqueName("idle");
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var received = 0;
        var listener = Listener(name, Fast with { MaxPollingInterval = TimeSpan.FromMinutes(1) }, (_, _, _) =>
        {
            Interlocked.Increment(ref received);
            return Task.CompletedTask;
        }, time);
        using var stop = new CancellationTokenSource();
        var running = listener.RunAsync(stop.Token);

        // Ten idle minutes on the fake clock, advancing exactly to each poll the listener schedules.
        var idle = TimeSpan.Zero;
        var waits = 0L;
        var delays = new List<TimeSpan>();
        while (idle < TimeSpan.FromMinutes(10))
        {
            await Eventually.TrueAsync(() => listener.IdleWaits > waits, "the listener to wait for its next poll");
            waits = listener.IdleWaits;
            delays.Add(listener.CurrentIdleDelay);
            time.Advance(listener.CurrentIdleDelay);
            idle += listener.CurrentIdleDelay;
        }
        var pollsWhileIdle = listener.PollCount;

        // Polling every 100 ms would be 6,000 polls; backing off to a minute makes it about 20.
        Assert.InRange(pollsWhileIdle, 10, 25);
        Assert.InRange(delays[0], TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(120));
        Assert.InRange(delays[^1], TimeSpan.FromSeconds(48), TimeSpan.FromMinutes(1));

        // The last advance started one more poll; let it find nothing and settle into its next wait.
        await Eventually.TrueAsync(() => listener.IdleWaits > waits, "the listener to wait for its next poll");
        waits = listener.IdleWaits;
        await Queue(name).SendMessageAsync("wake up");
        time.Advance(listener.CurrentIdleDelay);
        // The poll finds the message, the next poll finds nothing, and the wait starts over from the minimum.
        await Eventually.TrueAsync(() => received == 1 && listener.IdleWaits > waits, "the message, then the next wait");

        Assert.InRange(listener.CurrentIdleDelay, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(120));
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_wake_ends_a_long_idle_wait_so_a_message_sent_then_is_taken_at_once()
    {
        var name = UniqueName("wake");
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        using var wakes = new QueueWake(NullLogger<QueueWake>.Instance);
        var received = 0;
        var listener = Listener(name, Fast with { MaxPollingInterval = TimeSpan.FromMinutes(1) }, (_, _, _) =>
        {
            Interlocked.Increment(ref received);
            return Task.CompletedTask;
        }, time, wakes.Signal(name));
        using var stop = new CancellationTokenSource();
        var running = listener.RunAsync(stop.Token);

        // Back off to the longest wait first.
        var waits = 0L;
        while (listener.CurrentIdleDelay < TimeSpan.FromSeconds(48))
        {
            await Eventually.TrueAsync(() => listener.IdleWaits > waits, "the listener to wait for its next poll");
            waits = listener.IdleWaits;
            if (listener.CurrentIdleDelay < TimeSpan.FromSeconds(48)) time.Advance(listener.CurrentIdleDelay);
        }
        var polls = listener.PollCount;
        await Queue(name).SendMessageAsync("now");
        wakes.Local(name);

        // Not a tick of the clock: the wake alone brought the poll that found the message.
        await Eventually.TrueAsync(() => received == 1, "the message to be taken");
        // And that short batch drained the queue: no second poll until the next wake or the back-off.
        await Task.Delay(300);
        Assert.Equal(polls + 1, listener.PollCount);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_message_processed_longer_than_its_lease_keeps_it_and_runs_once()
    {
        var name = UniqueName("lease");
        var queue = Queue(name);
        await queue.CreateAsync();
        await queue.SendMessageAsync("slow");
        var attempts = 0;
        // Runs for more than twice its lease: without renewals it would be received again halfway through.
        var listener = Listener(name, Fast with { MessageLease = TimeSpan.FromSeconds(3) }, async (_, _, _) =>
        {
            Interlocked.Increment(ref attempts);
            await Task.Delay(TimeSpan.FromSeconds(7));
        });
        using var stop = new CancellationTokenSource();

        var running = listener.RunAsync(stop.Token);
        await Eventually.TrueAsync(async () => attempts >= 1 && listener.InFlightCount == 0
                                               && (await PropertiesAsync(queue)).ApproximateMessagesCount == 0,
            "the slow message to complete");
        await stop.CancelAsync();
        await running;

        Assert.Equal(1, attempts);
        Assert.DoesNotContain(_logger.At(LogLevel.Warning), l => l.Contains("lease"));
    }

    [Fact]
    public async Task No_more_than_batchSize_plus_newBatchThreshold_messages_run_at_once()
    {
        var name = UniqueName("batch");
        var queue = Queue(name);
        await queue.CreateAsync();
        for (var i = 0; i < 12; i++) await queue.SendMessageAsync($"m{i}");
        int running = 0, peak = 0, done = 0;
        var listener = Listener(name, Fast with { BatchSize = 4, NewBatchThreshold = 2 }, async (_, _, _) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref peak, now);
            await Task.Delay(150);
            Interlocked.Decrement(ref running);
            Interlocked.Increment(ref done);
        });
        using var stop = new CancellationTokenSource();

        var task = listener.RunAsync(stop.Token);
        await Eventually.TrueAsync(() => done == 12, "all twelve messages");
        await stop.CancelAsync();
        await task;

        Assert.InRange(peak, 2, 6);
    }

    [Fact]
    public async Task On_shutdown_the_function_is_cancelled_and_its_message_handed_back_not_poisoned()
    {
        var name = UniqueName("stop");
        var queue = Queue(name);
        await queue.CreateAsync();
        await queue.SendMessageAsync("in flight");
        var started = new TaskCompletionSource();
        var listener = Listener(name, Fast with { MaxDequeueCount = 1 }, async (_, _, cancellationToken) =>
        {
            started.SetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        });
        using var stop = new CancellationTokenSource();

        var running = listener.RunAsync(stop.Token);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await running;

        var message = Assert.Single((await queue.PeekMessagesAsync()).Value);
        Assert.Equal("in flight", message.Body.ToString());
        Assert.False((await Queue(name + "-poison").ExistsAsync()).Value);
        Assert.Empty(_logger.At(LogLevel.Error));
    }

    [Fact]
    public async Task The_queue_is_created_when_missing()
    {
        var name = UniqueName("new");
        var listener = Listener(name, Fast, (_, _, _) => Task.CompletedTask);
        using var stop = new CancellationTokenSource();

        var running = listener.RunAsync(stop.Token);
        await Eventually.TrueAsync(async () => (await Queue(name).ExistsAsync()).Value, "the queue to exist");
        await stop.CancelAsync();
        await running;
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
