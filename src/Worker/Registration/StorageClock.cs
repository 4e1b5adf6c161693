using Serverless.Core.Storage;

namespace Serverless.Worker.Registration;

/// <summary>
/// The storage account's clock, as this worker reads it: the host's clock corrected by the offset
/// measured from the <c>Date</c> of a storage response. The control plane judges heartbeats with
/// its own clock, so what the worker stamps must not carry the host's skew (a host minutes behind
/// would look lost, one minutes ahead would look alive long after it died). Timers and timestamps
/// are the host's; only the wall-clock time is corrected.
/// </summary>
public sealed class StorageClock(TimeProvider local, StorageClients storage) : TimeProvider
{
    /// <summary>How often the offset is measured again: clocks drift slowly.</summary>
    public static readonly TimeSpan SyncEvery = TimeSpan.FromMinutes(5);

    private long _offsetTicks;
    private long _syncedAt = long.MinValue;

    /// <summary>The last measured difference: storage minus host.</summary>
    public TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    public override DateTimeOffset GetUtcNow() => local.GetUtcNow() + Offset;

    public override long GetTimestamp() => local.GetTimestamp();

    public override long TimestampFrequency => local.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => local.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        => local.CreateTimer(callback, state, dueTime, period);

    /// <summary>Measures the offset when it was never measured or <see cref="SyncEvery"/> has passed.</summary>
    public async Task SyncIfDueAsync(string queueName, CancellationToken cancellationToken)
    {
        var last = Interlocked.Read(ref _syncedAt);
        if (last != long.MinValue && local.GetElapsedTime(last) < SyncEvery) return;
        await SyncAsync(queueName, cancellationToken);
    }

    /// <summary>
    /// Asks storage for <paramref name="queueName"/>'s properties (one small request) and takes the
    /// offset from the response's <c>Date</c>, to the midpoint of the request. <c>Date</c> has whole
    /// seconds, so the server's time is taken as half a second after it.
    /// </summary>
    public async Task SyncAsync(string queueName, CancellationToken cancellationToken)
    {
        var queue = await storage.QueueAsync(queueName, cancellationToken);
        var sent = local.GetUtcNow();
        var response = await queue.GetPropertiesAsync(cancellationToken);
        var received = local.GetUtcNow();
        if (response.GetRawResponse().Headers.Date is not { } date) return;
        var server = date + TimeSpan.FromMilliseconds(500);
        var midpoint = sent + (received - sent) / 2;
        Interlocked.Exchange(ref _offsetTicks, (server - midpoint).Ticks);
        Interlocked.Exchange(ref _syncedAt, local.GetTimestamp());
    }
}
