using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Storage;

namespace Serverless.Core.Tests.Storage;

public sealed class QueueWakeTests
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    private static QueueWake NewWake() => new(NullLogger<QueueWake>.Instance);

    /// <summary>The socket address of an advertised endpoint (<c>ip:port~key</c>).</summary>
    private static IPEndPoint SocketOf(string endpoint) => IPEndPoint.Parse(endpoint.Split('~')[0]);

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

    [Fact]
    public void Without_an_address_a_process_listens_on_loopback_alone()
    {
        using var wake = NewWake();

        var endpoint = wake.Listen(0, null);

        Assert.NotNull(endpoint);
        Assert.True(IPAddress.IsLoopback(SocketOf(endpoint).Address), endpoint);
    }

    [Fact]
    public async Task A_datagram_to_another_address_of_the_host_wakes_nobody()
    {
        var other = NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.OperationalStatus == OperationalStatus.Up)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        Assert.NotNull(other); // the test machines have one; without it this test proves nothing
        using var wake = NewWake();
        var port = SocketOf(wake.Listen(0, null)!).Port;
        var signal = wake.Signal("reconcile");
        using var stranger = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);

        stranger.SendTo("reconcile"u8.ToArray(), new IPEndPoint(other, port));
        // The same datagram to the bound address does arrive: the first was refused, not slow.
        stranger.SendTo("task-events"u8.ToArray(), new IPEndPoint(IPAddress.Loopback, port));
        var arrived = wake.Signal("task-events").WaitAsync(Long, TimeProvider.System, _token);
        Assert.True(await arrived.WaitAsync(TimeSpan.FromSeconds(30), _token));

        Assert.False(await signal.WaitAsync(TimeSpan.Zero, new FakeTimeProvider(), _token));
    }

    [Fact]
    public void An_address_that_is_not_one_ip_of_this_host_is_not_listened_on()
    {
        using var wake = NewWake();
        Assert.Null(wake.Listen(0, "0.0.0.0"));
        Assert.Null(wake.Listen(0, "not-an-address"));
    }

    [Theory]
    [InlineData("reconcile", true)]
    [InlineData("task-events", true)]
    [InlineData("ci-0123abcd", true)]
    [InlineData("ab", false)]
    [InlineData("Reconcile", false)]
    [InlineData("-reconcile", false)]
    [InlineData("reconcile-", false)]
    [InlineData("re--concile", false)]
    [InlineData("re concile", false)]
    [InlineData("reconcile\n", false)]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    public void Only_an_azure_queue_name_is_taken_from_a_datagram(string payload, bool taken)
        => Assert.Equal(taken, QueueWake.IsQueueName(Encoding.UTF8.GetBytes(payload)));

    [Fact]
    public async Task A_flood_of_wakes_costs_at_most_the_burst_and_the_rate_in_extra_polls_per_second()
    {
        using var wake = NewWake();
        var endpoint = wake.Listen(0, null)!;
        var signal = wake.Signal("reconcile");
        var time = new FakeTimeProvider();
        using var flooding = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var flood = Task.Run(async () =>
        {
            using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            var target = SocketOf(endpoint);
            var junk = new byte[63];
            while (!flooding.IsCancellationRequested)
            {
                for (var i = 0; i < 200; i++)
                {
                    sender.SendTo("reconcile"u8, SocketFlags.None, target);
                    sender.SendTo(junk, SocketFlags.None, target);
                }
                await Task.Yield();
            }
        }, _token);

        // The poller polls whenever woken, for one second of its clock, while the flood goes on.
        var polls = 0;
        var elapsed = TimeSpan.Zero;
        var step = TimeSpan.FromMilliseconds(10);
        while (elapsed < TimeSpan.FromSeconds(1))
        {
            var woken = signal.WaitAsync(Long, time, _token);
            while (!woken.IsCompleted && elapsed < TimeSpan.FromSeconds(1))
            {
                // A bounded wait for the wake to land (or the rate-limit delay to start), then time moves.
                await Task.WhenAny(woken, Task.Delay(20, _token));
                if (woken.IsCompleted) break;
                time.Advance(step);
                elapsed += step;
            }
            if (woken.IsCompleted && await woken) polls++;
        }
        await flooding.CancelAsync();
        await flood;

        Assert.InRange(polls, QueueWake.WakeBurst, QueueWake.WakeBurst + QueueWake.MaxWakesPerSecond + 1);
    }
}
