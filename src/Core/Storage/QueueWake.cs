using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Serverless.Core.Storage;

/// <summary>
/// "Look at queue Q now", between processes: one UDP datagram whose payload is the queue's name,
/// sent right after a message was put on Q. It carries no state (the message is already in the
/// queue), so a wake that is lost, duplicated, late or forged costs at most one extra poll, and a
/// poller that never hears one still finds the message at its next back-off poll. Pollers can
/// therefore back off to seconds while idle (an idle cluster costs almost nothing) without making a
/// RunTask wait for that back-off: the same idea as the Functions host's shared queue watcher,
/// which polls a queue at once when the host itself added a message to it, carried across processes.
/// </summary>
/// <remarks>
/// One instance per process. <see cref="Listen"/> opens this process's receiving socket; a poller
/// waits on <see cref="Signal"/> for its queue between polls. Senders learn where to send from
/// storage (a worker registers its endpoint with its container instance) or from the message they
/// answer (a Start command names the control plane that sent it). The advertised endpoint carries
/// this process's public key (<c>ip:port~key</c>), so a datagram may also carry a message itself,
/// sealed for its receiver (<see cref="SendExpress"/>, <see cref="ExpressKeys"/>): a stranger can still
/// only wake a poller, never hand it a message.
/// </remarks>
public sealed partial class QueueWake(ILogger<QueueWake> logger, TimeProvider? time = null) : IDisposable
{
    /// <summary>
    /// Wake-driven polls of one queue per second, at most, once a burst of <see cref="WakeBurst"/> is
    /// spent: a flood of datagrams (or of local wakes) costs at most this many extra storage calls.
    /// </summary>
    public const int MaxWakesPerSecond = 20;

    /// <summary>Wakes one queue may take back to back before <see cref="MaxWakesPerSecond"/> applies.</summary>
    public const int WakeBurst = 8;

    // Between an endpoint's socket address and its key: a character that is neither in an IP endpoint nor in
    // base64url, and that a table key may hold (endpoints are row keys too; '#' may not be).
    private const char KeySeparator = '~';

    // An Azure queue name is at most 63 characters.
    private const int MaxQueueName = 63;

    private readonly ConcurrentDictionary<string, WakeSignal> _signals = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Func<string, bool, bool>> _express = new(StringComparer.Ordinal);
    private readonly ExpressKeys _keys = new(time);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _closing = new();
    private Socket? _listening;
    private Socket? _sender4;
    private Socket? _sender6;

    /// <summary>
    /// Where this process listens for wakes, with the public key express messages to it are sealed for
    /// (<c>address:port~key</c>), or null when it does not listen.
    /// </summary>
    public string? Endpoint { get; private set; }

    /// <summary>The signal a poller of <paramref name="queueName"/> waits on; set by a wake naming that queue.</summary>
    public WakeSignal Signal(string queueName) => _signals.GetOrAdd(queueName, _ => new WakeSignal());

    /// <summary>
    /// Starts receiving wakes on UDP <paramref name="port"/> (0: any free port) of
    /// <paramref name="address"/> alone, and advertises that address: loopback unless configured, so a
    /// host takes wakes from the network only when its settings say so (one machine needs no more).
    /// Does nothing when <paramref name="port"/> is negative; an address that is not a unicast IP or a
    /// port that cannot be bound is logged, and this process's pollers then poll on their back-off alone.
    /// </summary>
    /// <returns>The advertised endpoint, or null when not listening.</returns>
    public string? Listen(int port, string? address)
    {
        if (port < 0) return null;
        lock (_gate)
        {
            if (_listening is not null) return Endpoint;
            var ip = IPAddress.Loopback;
            if (address is { Length: > 0 } && (!IPAddress.TryParse(address, out ip!) || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)))
            {
                // An unspecified address would take wakes from everywhere and could not be advertised.
                LogNotListening(logger, port, $"'{address}' is not one IP address of this host");
                return null;
            }
            var socket = new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                socket.Bind(new IPEndPoint(ip, port));
            }
            catch (SocketException e)
            {
                socket.Dispose();
                LogNotListening(logger, port, e.Message);
                return null;
            }
            var bound = (IPEndPoint)socket.LocalEndPoint!;
            _listening = socket;
            Endpoint = $"{bound}{KeySeparator}{_keys.PublicKey}";
            _ = Task.Run(() => ReceiveAsync(socket, _closing.Token));
            LogListening(logger, Endpoint);
            return Endpoint;
        }
    }

    /// <summary>Tells the process at <paramref name="endpoint"/> to poll <paramref name="queueName"/>. Best effort, never throws.</summary>
    public void Send(string? endpoint, string queueName)
    {
        if (Target(endpoint) is not { } target) return;
        if (endpoint == Endpoint)
        {
            // Ourselves: no datagram needed.
            Local(queueName);
            return;
        }
        SendTo(target.Address, Encoding.ASCII.GetBytes(queueName), queueName, endpoint!);
    }

    /// <summary>
    /// Hands <paramref name="messageText"/>, a message of <paramref name="queueName"/>, to the process at
    /// <paramref name="endpoint"/> in the wake datagram itself, sealed for it; a plain wake when that process
    /// advertised no key, the message is too large for a datagram, or the endpoint is this process. Best effort,
    /// never throws. The same text must be (or be about to be) on the queue: a datagram may be lost.
    /// </summary>
    /// <param name="enqueued">
    /// True when the text is already on the queue: the datagram is then also the wake for it. False when it is sent
    /// ahead of the queued copy, which then needs its own <see cref="Send"/> once queued.
    /// </param>
    public void SendExpress(string? endpoint, string queueName, string messageText, bool enqueued)
    {
        if (Target(endpoint) is not { } target) return;
        var datagram = endpoint != Endpoint && target.PublicKey is { } key && _keys.Learn(key)
            ? _keys.Seal(key, queueName, messageText, enqueued)
            : null;
        if (datagram is not null) SendTo(target.Address, datagram, queueName, endpoint!);
        else if (enqueued) Send(endpoint, queueName);
    }

    /// <summary>
    /// Remembers the key in <paramref name="endpoint"/>, an address read from storage or from a queued message (never
    /// from a datagram), so express messages from that process can be opened before this one ever sends to it.
    /// </summary>
    public void Learn(string? endpoint)
    {
        if (Target(endpoint) is { PublicKey: { } key }) _keys.Learn(key);
    }

    /// <summary>
    /// Express messages of <paramref name="queueName"/> go to <paramref name="deliver"/> (its text, and whether it is
    /// already queued), until disposed; when it returns false (not taking them now) the datagram is a plain wake.
    /// </summary>
    public IDisposable TakeExpress(string queueName, Func<string, bool, bool> deliver)
    {
        _express[queueName] = deliver;
        return new ExpressRegistration(this, queueName, deliver);
    }

    private sealed class ExpressRegistration(QueueWake wake, string queueName, Func<string, bool, bool> deliver) : IDisposable
    {
        public void Dispose() => wake._express.TryRemove(KeyValuePair.Create(queueName, deliver));
    }

    private static (IPEndPoint Address, string? PublicKey)? Target(string? endpoint)
    {
        if (endpoint is null) return null;
        var separator = endpoint.IndexOf(KeySeparator);
        var address = separator < 0 ? endpoint : endpoint[..separator];
        if (!IPEndPoint.TryParse(address, out var target) || target.Port == 0) return null;
        return (target, separator < 0 ? null : endpoint[(separator + 1)..]);
    }

    private void SendTo(IPEndPoint target, byte[] datagram, string queueName, string endpoint)
    {
        try
        {
            var socket = SenderFor(target.AddressFamily);
            socket.SendTo(datagram, SocketFlags.None, target);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            LogSendFailed(logger, queueName, endpoint, e.Message);
        }
    }

    /// <summary>Wakes this process's own poller of <paramref name="queueName"/>, if it has one.</summary>
    public void Local(string queueName)
    {
        if (_signals.TryGetValue(queueName, out var signal)) signal.Set();
    }

    /// <summary>
    /// Wakes this process's own poller of <paramref name="queueName"/> after <paramref name="delay"/>: for a message
    /// sent invisible until then (a requeue-after), which no sender will announce when it becomes visible.
    /// </summary>
    public void LocalAfter(string queueName, TimeSpan delay, TimeProvider time)
    {
        if (_signals.TryGetValue(queueName, out var signal)) signal.SetAfter(delay, time);
    }

    public void Dispose()
    {
        _closing.Cancel();
        lock (_gate)
        {
            _listening?.Dispose();
            _sender4?.Dispose();
            _sender6?.Dispose();
        }
        _closing.Dispose();
        _keys.Dispose();
    }

    private Socket SenderFor(AddressFamily family)
    {
        lock (_gate)
        {
            ref var socket = ref family == AddressFamily.InterNetworkV6 ? ref _sender6 : ref _sender4;
            return socket ??= new Socket(family, SocketType.Dgram, ProtocolType.Udp);
        }
    }

    private async Task ReceiveAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[ExpressKeys.MaxDatagramBytes + 1];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken);
                Receive(buffer.AsSpan(0, received.ReceivedBytes));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // ICMP "port unreachable" from an earlier send and the like: keep listening.
                LogReceiveFailed(logger, e.Message);
            }
        }
    }

    /// <summary>
    /// One datagram: a queue name wakes that queue's poller; an express message this process can open goes to its
    /// queue's taker; one it cannot open (or that nobody here takes) is a plain wake for the queue it names. Anything
    /// else is dropped unread, so a stranger's datagram costs a receive and at most one poll.
    /// </summary>
    internal void Receive(ReadOnlySpan<byte> payload)
    {
        if (payload.Length > 0 && payload[0] == ExpressKeys.Marker)
        {
            if (_keys.TryOpen(payload, out var queue, out var text, out var enqueued)
                && _express.TryGetValue(queue, out var deliver) && deliver(text, enqueued)) return;
            if (ExpressKeys.QueueNameOf(payload) is { } named) Local(named);
            return;
        }
        if (IsQueueName(payload)) Local(Encoding.ASCII.GetString(payload));
    }

    /// <summary>Azure's rule for a queue name: 3-63 of a-z, 0-9 and single hyphens, a letter or digit at each end.</summary>
    internal static bool IsQueueName(ReadOnlySpan<byte> name)
    {
        if (name.Length is < 3 or > MaxQueueName || name[0] == '-' || name[^1] == '-') return false;
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (c == '-' ? name[i - 1] == '-' : !(char.IsAsciiLetterLower((char)c) || char.IsAsciiDigit((char)c))) return false;
        }
        return true;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening for queue wakes on {Endpoint} (UDP)")]
    private static partial void LogListening(ILogger logger, string endpoint);

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Not listening for queue wakes on UDP port {Port}: {Error}; queues are found by polling alone")]
    private static partial void LogNotListening(ILogger logger, int port, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not wake the poller of {Queue} at {Endpoint}: {Error}")]
    private static partial void LogSendFailed(ILogger logger, string queue, string endpoint, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Queue wake receive failed: {Error}")]
    private static partial void LogReceiveFailed(ILogger logger, string error);
}

/// <summary>
/// A latched wake-up for one poller: a <see cref="Set"/> that arrives while nobody waits is kept for
/// the next <see cref="WaitAsync"/>, so a wake sent while the poller was busy polling is not lost.
/// </summary>
public sealed class WakeSignal
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HashSet<PendingWake> _pending = [];

    // Token bucket of wake-driven polls (QueueWake.MaxWakesPerSecond, QueueWake.WakeBurst), in the
    // timestamps of the TimeProvider the poller waits with. Only the one poller of the queue takes tokens.
    private double _tokens = QueueWake.WakeBurst;
    private long _refilledAt = -1;

    public void Set()
    {
        lock (_gate) _next.TrySetResult();
    }

    /// <summary>
    /// <see cref="Set"/> after <paramref name="delay"/>: a message that becomes visible only then (handed back for
    /// a retry, or sent for later) is taken when it is due, not at the poller's next back-off poll.
    /// </summary>
    public void SetAfter(TimeSpan delay, TimeProvider time)
    {
        if (delay <= TimeSpan.Zero)
        {
            Set();
            return;
        }
        // One-shot, held until it fires (an unreferenced timer may be collected before), then disposed.
        // A wake a little early or late costs at most one poll.
        var pending = new PendingWake(this);
        lock (_gate)
        {
            _pending.Add(pending);
            pending.Timer = time.CreateTimer(static state => ((PendingWake)state!).Fire(), pending, delay, Timeout.InfiniteTimeSpan);
        }
    }

    private sealed class PendingWake(WakeSignal signal)
    {
        public ITimer? Timer { get; set; }

        public void Fire()
        {
            lock (signal._gate) signal._pending.Remove(this);
            signal.Set();
            // Created under the gate, so it is assigned before this can run.
            lock (signal._gate) Timer?.Dispose();
        }
    }

    /// <summary>
    /// Waits for <paramref name="delay"/> or until woken, whichever is first.
    /// </summary>
    /// <returns>True when woken (or a wake was already pending), false when the delay ran out.</returns>
    public async Task<bool> WaitAsync(TimeSpan delay, TimeProvider time, CancellationToken cancellationToken)
    {
        Task woken;
        lock (_gate) woken = _next.Task;

        if (!woken.IsCompleted && delay > TimeSpan.Zero)
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var timer = Task.Delay(delay, time, stop.Token);
            if (await Task.WhenAny(woken, timer) == timer)
            {
                await timer; // throws when cancellationToken ended the wait
                return false;
            }
            await stop.CancelAsync();
        }
        else if (!woken.IsCompleted)
        {
            return false;
        }

        lock (_gate) _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // A wake may poll now if the bucket holds a token; otherwise it polls when the next one is due.
        var wait = TakeToken(time);
        if (wait > TimeSpan.Zero) await Task.Delay(wait, time, cancellationToken);
        return true;
    }

    /// <summary>Takes a token (possibly one not yet refilled) and returns how long until it is due.</summary>
    private TimeSpan TakeToken(TimeProvider time)
    {
        var now = time.GetTimestamp();
        if (_refilledAt >= 0)
        {
            var earned = time.GetElapsedTime(_refilledAt, now).TotalSeconds * QueueWake.MaxWakesPerSecond;
            _tokens = Math.Min(QueueWake.WakeBurst, _tokens + earned);
        }
        _refilledAt = now;
        _tokens -= 1;
        return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / QueueWake.MaxWakesPerSecond);
    }
}
