using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Storage;

namespace Serverless.Core.Tests.Storage;

public sealed class QueueWakeTests
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    private static QueueWake NewWake() => new(NullLogger<QueueWake>.Instance);

    [Fact]
    public async Task A_datagram_naming_a_queue_wakes_that_queues_poller_in_another_process()
    {
        using var worker = NewWake();
        using var controlPlane = NewWake();
        var endpoint = worker.Listen(0, "127.0.0.1");
        Assert.NotNull(endpoint);
        var commands = worker.Signal("ci-0123");
        var waiting = commands.WaitAsync(Long, TimeProvider.System, _token);

        controlPlane.Send(endpoint, "ci-0123");

        Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(30), _token));
    }

    [Fact]
    public async Task A_datagram_naming_another_queue_wakes_nobody()
    {
        using var worker = NewWake();
        using var sender = NewWake();
        var endpoint = worker.Listen(0, "127.0.0.1");
        var commands = worker.Signal("ci-0123");
        var time = new FakeTimeProvider();
        var waiting = commands.WaitAsync(TimeSpan.FromSeconds(2), time, _token);

        sender.Send(endpoint, "ci-9999");
        // A wake for our own queue afterwards still arrives: the first one was read and dropped.
        sender.Send(endpoint, "reconcile");
        await Task.Delay(200, _token);

        Assert.False(waiting.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.False(await waiting);
    }

    [Fact]
    public async Task A_wake_that_arrives_while_nobody_waits_ends_the_next_wait_at_once()
    {
        using var wake = NewWake();
        var signal = wake.Signal("task-events");

        wake.Local("task-events");

        // The poller was busy polling when the wake came: its next wait must not sleep through it.
        Assert.True(await signal.WaitAsync(Long, new FakeTimeProvider(), _token));
    }

    [Fact]
    public async Task Without_a_wake_the_wait_lasts_its_whole_delay_and_one_wake_serves_one_wait()
    {
        using var wake = NewWake();
        var signal = wake.Signal("reconcile");
        var time = new FakeTimeProvider();
        wake.Local("reconcile");
        Assert.True(await signal.WaitAsync(Long, time, _token));

        var second = signal.WaitAsync(TimeSpan.FromSeconds(2), time, _token);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(second.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(await second);
    }

    [Fact]
    public async Task A_cancelled_wait_throws_rather_than_reporting_a_wake()
    {
        using var wake = NewWake();
        using var cancel = new CancellationTokenSource();
        var waiting = wake.Signal("reconcile").WaitAsync(Long, TimeProvider.System, cancel.Token);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("not-an-endpoint")]
    [InlineData("127.0.0.1:0")]
    public void Sending_to_no_usable_endpoint_is_a_quiet_no_op(string? endpoint)
    {
        using var wake = NewWake();
        wake.Send(endpoint, "reconcile");
    }

    [Fact]
    public void A_process_that_is_told_not_to_listen_advertises_no_endpoint()
    {
        using var wake = NewWake();
        Assert.Null(wake.Listen(-1, null));
        Assert.Null(wake.Endpoint);
    }

    [Fact]
    public async Task Sending_to_ones_own_endpoint_wakes_the_local_poller_without_the_network()
    {
        using var wake = NewWake();
        var endpoint = wake.Listen(0, "127.0.0.1");
        var signal = wake.Signal("task-events");

        wake.Send(endpoint, "task-events");

        Assert.True(await signal.WaitAsync(TimeSpan.Zero, new FakeTimeProvider(), _token));
    }
}
