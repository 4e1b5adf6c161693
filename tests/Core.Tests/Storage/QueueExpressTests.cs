using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Storage;

namespace Serverless.Core.Tests.Storage;

/// <summary>Express messages in wake datagrams: sealed for one peer, refused from anyone else, and a plain wake when they cannot be opened.</summary>
public sealed class QueueExpressTests
{
    private const string Queue = "task-events";
    private const string Text = """{"v":1,"cluster":"c","taskArn":"arn:aws:ecs:us-east-1:000000000000:task/c/0123","lastStatus":"RUNNING"}""";

    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private (ExpressKeys Sender, ExpressKeys Receiver) Pair()
    {
        var sender = new ExpressKeys(_time);
        var receiver = new ExpressKeys(_time);
        Assert.True(sender.Learn(receiver.PublicKey));
        Assert.True(receiver.Learn(sender.PublicKey));
        return (sender, receiver);
    }

    [Fact]
    public void A_message_sealed_for_a_peer_opens_there_once_with_its_queue_and_flag()
    {
        var (sender, receiver) = Pair();
        var datagram = sender.Seal(receiver.PublicKey, Queue, Text, enqueued: true)!;

        Assert.True(receiver.TryOpen(datagram, out var queue, out var text, out var enqueued));
        Assert.Equal((Queue, Text, true), (queue, text, enqueued));
        // The text is not readable on the wire.
        Assert.False(new ReadOnlySpan<byte>(datagram).IndexOf("RUNNING"u8) >= 0);
        // A replay of the same datagram is refused.
        Assert.False(receiver.TryOpen(datagram, out _, out _, out _));
    }

    [Fact]
    public void Every_changed_byte_makes_the_datagram_unopenable()
    {
        var (sender, receiver) = Pair();
        var datagram = sender.Seal(receiver.PublicKey, Queue, Text, enqueued: false)!;
        for (var i = 1; i < datagram.Length; i++)
        {
            var tampered = (byte[])datagram.Clone();
            tampered[i] ^= 0x01;
            Assert.False(receiver.TryOpen(tampered, out _, out _, out _), $"byte {i} changed");
        }
        Assert.True(receiver.TryOpen(datagram, out _, out _, out _));
    }

    [Fact]
    public void Only_the_peer_it_was_sealed_for_opens_it_and_never_from_a_stranger()
    {
        var (sender, receiver) = Pair();
        using var other = new ExpressKeys(_time);
        Assert.True(other.Learn(sender.PublicKey));
        var datagram = sender.Seal(receiver.PublicKey, Queue, Text, enqueued: true)!;

        // Another process that knows the sender still cannot open what was sealed for the receiver.
        Assert.False(other.TryOpen(datagram, out _, out _, out _));
        // A stranger the receiver never learned (from storage or a queued message) is refused before any decryption.
        using var stranger = new ExpressKeys(_time);
        stranger.Learn(receiver.PublicKey);
        Assert.False(receiver.TryOpen(stranger.Seal(receiver.PublicKey, Queue, Text, enqueued: true)!, out _, out _, out _));
        // Sent back to its own sender, it is not a peer's.
        Assert.False(sender.TryOpen(datagram, out _, out _, out _));
        Assert.True(receiver.TryOpen(datagram, out _, out _, out _));
    }

    [Fact]
    public void A_datagram_older_or_newer_than_the_window_is_refused()
    {
        var (sender, receiver) = Pair();
        var old = sender.Seal(receiver.PublicKey, Queue, Text, enqueued: true)!;
        _time.Advance(ExpressKeys.MaxAge + TimeSpan.FromSeconds(1));
        Assert.False(receiver.TryOpen(old, out _, out _, out _));

        // A sender whose clock runs ahead of the receiver's by more than the window.
        var ahead = new FakeTimeProvider(_time.GetUtcNow() + ExpressKeys.MaxAge + TimeSpan.FromSeconds(1));
        using var hasty = new ExpressKeys(ahead);
        hasty.Learn(receiver.PublicKey);
        receiver.Learn(hasty.PublicKey);
        Assert.False(receiver.TryOpen(hasty.Seal(receiver.PublicKey, Queue, Text, enqueued: true)!, out _, out _, out _));
        Assert.True(receiver.TryOpen(sender.Seal(receiver.PublicKey, Queue, Text, enqueued: true)!, out _, out _, out _));
    }

    [Fact]
    public void Nothing_is_sealed_for_an_unknown_peer_or_beyond_one_datagram()
    {
        var (sender, receiver) = Pair();
        using var unknown = new ExpressKeys(_time);
        Assert.Null(sender.Seal(unknown.PublicKey, Queue, Text, enqueued: true));
        Assert.Null(sender.Seal(receiver.PublicKey, Queue, new string('x', ExpressKeys.MaxDatagramBytes), enqueued: true));
        Assert.NotNull(sender.Seal(receiver.PublicKey, Queue, new string('x', ExpressKeys.MaxDatagramBytes - 200), enqueued: true));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not base64url!")]
    [InlineData("AAAA")]
    public void A_key_that_is_not_a_p256_point_is_not_learned(string publicKey)
    {
        using var keys = new ExpressKeys(_time);
        Assert.False(keys.Learn(publicKey));
        // 64 bytes, but not a point on the curve.
        Assert.False(keys.Learn(System.Buffers.Text.Base64Url.EncodeToString(Enumerable.Repeat((byte)7, 64).ToArray())));
    }

    [Fact]
    public async Task Between_processes_an_express_message_reaches_its_taker_and_a_strangers_is_only_a_wake()
    {
        using var worker = new QueueWake(NullLogger<QueueWake>.Instance);
        using var controlPlane = new QueueWake(NullLogger<QueueWake>.Instance);
        var workerEndpoint = worker.Listen(0, "127.0.0.1")!;
        var controlPlaneEndpoint = controlPlane.Listen(0, "127.0.0.1")!;
        Assert.Contains('~', workerEndpoint);
        var delivered = new TaskCompletionSource<(string, bool)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var taking = controlPlane.TakeExpress(Queue, (text, enqueued) => delivered.TrySetResult((text, enqueued)));

        // The worker knows the control plane (its address came in a queued command); the control plane learns the worker's
        // from storage (its instance row) before it sends it anything.
        worker.Learn(controlPlaneEndpoint);
        controlPlane.Learn(workerEndpoint);
        worker.SendExpress(controlPlaneEndpoint, Queue, Text, enqueued: false);
        Assert.Equal((Text, false), await delivered.Task.WaitAsync(TimeSpan.FromSeconds(30), _token));

        // A process the control plane never learned: its datagram cannot be opened, and only wakes the queue's poller.
        using var stranger = new QueueWake(NullLogger<QueueWake>.Instance);
        var signal = controlPlane.Signal(Queue);
        var woken = signal.WaitAsync(TimeSpan.FromMinutes(5), TimeProvider.System, _token);
        stranger.SendExpress(controlPlaneEndpoint, Queue, Text.Replace("RUNNING", "STOPPED"), enqueued: true);
        Assert.True(await woken.WaitAsync(TimeSpan.FromSeconds(30), _token));
    }

    [Fact]
    public async Task A_datagram_that_cannot_be_opened_wakes_the_queue_it_names_and_nothing_is_delivered()
    {
        using var wake = new QueueWake(NullLogger<QueueWake>.Instance);
        var delivered = 0;
        using var taking = wake.TakeExpress(Queue, (_, _) => Interlocked.Increment(ref delivered) > 0);
        var signal = wake.Signal(Queue);
        using var stranger = new ExpressKeys(_time);
        using var us = new ExpressKeys(_time);
        stranger.Learn(us.PublicKey);

        wake.Receive(stranger.Seal(us.PublicKey, Queue, Text, enqueued: true));

        Assert.Equal(0, delivered);
        Assert.True(await signal.WaitAsync(TimeSpan.Zero, _time, _token));
    }

    [Fact]
    public async Task An_express_message_with_no_taker_is_a_plain_wake()
    {
        using var controlPlane = new QueueWake(NullLogger<QueueWake>.Instance);
        var endpoint = controlPlane.Listen(0, "127.0.0.1")!;
        using var worker = new QueueWake(NullLogger<QueueWake>.Instance);
        worker.Listen(0, "127.0.0.1");
        worker.Learn(endpoint);
        // What the worker would send, captured by sending it to a socket of our own instead.
        using var capture = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        capture.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var captureEndpoint = $"{capture.LocalEndPoint}~{endpoint.Split('~')[1]}";
        worker.SendExpress(captureEndpoint, Queue, Text, enqueued: true);
        var buffer = new byte[ExpressKeys.MaxDatagramBytes];
        capture.ReceiveTimeout = 30_000;
        var length = capture.Receive(buffer);
        Assert.Equal(ExpressKeys.Marker, buffer[0]);

        var signal = controlPlane.Signal(Queue);
        controlPlane.Learn(worker.Endpoint);
        controlPlane.Receive(buffer.AsSpan(0, length));

        Assert.True(await signal.WaitAsync(TimeSpan.Zero, _time, _token));
    }
}
