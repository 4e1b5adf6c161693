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
/// answer (a Start command names the control plane that sent it).
/// </remarks>
public sealed partial class QueueWake(ILogger<QueueWake> logger) : IDisposable
{
    /// <summary>Wake-driven polls of one queue are at least this far apart, so a flood of datagrams cannot turn into a flood of storage calls.</summary>
    public static readonly TimeSpan MinimumSpacing = TimeSpan.FromMilliseconds(5);

    private const int MaxPayload = 64;

    private readonly ConcurrentDictionary<string, WakeSignal> _signals = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _closing = new();
    private Socket? _listening;
    private Socket? _sender4;
    private Socket? _sender6;

    /// <summary>Where this process listens for wakes (<c>address:port</c>), or null when it does not.</summary>
    public string? Endpoint { get; private set; }

    /// <summary>The signal a poller of <paramref name="queueName"/> waits on; set by a wake naming that queue.</summary>
    public WakeSignal Signal(string queueName) => _signals.GetOrAdd(queueName, _ => new WakeSignal());

    /// <summary>
    /// Starts receiving wakes on UDP <paramref name="port"/> (0: any free port) of every local
    /// address, and advertises <paramref name="advertisedAddress"/> (default: the address this host
    /// routes outwards from, or loopback). Does nothing when <paramref name="port"/> is negative; a port
    /// that cannot be bound is logged, and this process's pollers then poll on their back-off alone.
    /// </summary>
    /// <returns>The advertised endpoint, or null when not listening.</returns>
    public string? Listen(int port, string? advertisedAddress)
    {
        if (port < 0) return null;
        lock (_gate)
        {
            if (_listening is not null) return Endpoint;
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                socket.Bind(new IPEndPoint(IPAddress.Any, port));
            }
            catch (SocketException e)
            {
                socket.Dispose();
                LogNotListening(logger, port, e.Message);
                return null;
            }
            var bound = ((IPEndPoint)socket.LocalEndPoint!).Port;
            var address = advertisedAddress is { Length: > 0 } configured ? configured : OutwardAddress().ToString();
            _listening = socket;
            Endpoint = $"{address}:{bound}";
            _ = Task.Run(() => ReceiveAsync(socket, _closing.Token));
            LogListening(logger, Endpoint);
            return Endpoint;
        }
    }

    /// <summary>Tells the process at <paramref name="endpoint"/> to poll <paramref name="queueName"/>. Best effort, never throws.</summary>
    public void Send(string? endpoint, string queueName)
    {
        if (endpoint is null || !IPEndPoint.TryParse(endpoint, out var target) || target.Port == 0) return;
        if (endpoint == Endpoint)
        {
            // Ourselves: no datagram needed.
            Local(queueName);
            return;
        }
        try
        {
            var socket = SenderFor(target.AddressFamily);
            socket.SendTo(Encoding.ASCII.GetBytes(queueName), SocketFlags.None, target);
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
        var buffer = new byte[MaxPayload + 1];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken);
                if (received.ReceivedBytes is 0 or > MaxPayload) continue;
                // Only queues someone here polls: anything else is noise and is dropped.
                var name = Encoding.ASCII.GetString(buffer, 0, received.ReceivedBytes);
                Local(name);
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

    /// <summary>The local address of the route outwards (no packet is sent), or loopback when there is none.</summary>
    private static IPAddress OutwardAddress()
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            probe.Connect(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 9));
            return ((IPEndPoint)probe.LocalEndPoint!).Address;
        }
        catch (SocketException)
        {
            return IPAddress.Loopback;
        }
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
    private long _lastWakeTicks;

    public void Set()
    {
        lock (_gate) _next.TrySetResult();
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
        // Keep wake-driven polls apart (see QueueWake.MinimumSpacing).
        var now = time.GetTimestamp();
        var since = time.GetElapsedTime(Interlocked.Exchange(ref _lastWakeTicks, now), now);
        if (since < QueueWake.MinimumSpacing)
            await Task.Delay(QueueWake.MinimumSpacing - since, time, cancellationToken);
        return true;
    }
}
