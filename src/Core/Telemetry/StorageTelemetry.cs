using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Queues;

namespace Serverless.Core.Telemetry;

/// <summary>
/// Storage as the control plane and the worker use it, measured: every try of every call (a storage
/// transaction, as the account bills it) and the conflicts among them, the age of each queue message taken,
/// and the depth of each queue a consumer takes from.
/// </summary>
public static class StorageTelemetry
{
    /// <summary>Storage calls, one per try, by <c>storage.service</c> (table, queue) and <c>http.response.status_code</c>.</summary>
    public static readonly Counter<long> Calls = Telemetry.Meter.CreateCounter<long>("storage.calls", "{call}", "Storage calls (each try is a transaction)");

    /// <summary>Calls refused for a conflict (409) or a failed precondition (412: an ETag that moved), by <c>storage.service</c>.</summary>
    public static readonly Counter<long> Conflicts = Telemetry.Meter.CreateCounter<long>("storage.conflicts", "{call}", "Storage calls refused for a conflict or a moved ETag");

    /// <summary>How long a message waited in its queue before a consumer took it, by <c>messaging.destination.name</c>.</summary>
    public static readonly Histogram<double> MessageAge = Telemetry.Meter.CreateHistogram<double>("queue.message_age", "s", "Time from a message's insertion to its receipt");

    /// <summary>How long a refreshed queue depth is shown before it is read again.</summary>
    public static readonly TimeSpan DepthMaxAge = TimeSpan.FromSeconds(30);

    private static readonly ConcurrentDictionary<string, DepthProbe> Probes = new(StringComparer.Ordinal);

    // Read only when a metrics exporter collects (none is configured locally by default): then one
    // GetProperties call per queue and DepthMaxAge at most, in the background, never on the collection's thread.
    public static readonly ObservableGauge<long> QueueDepth = Telemetry.Meter.CreateObservableGauge(
        "queue.depth", ObserveDepths, "{message}", "Approximate number of messages in the queue");

    /// <summary>The pipeline policy that counts <paramref name="service"/>'s calls; it goes at <see cref="HttpPipelinePosition.PerRetry"/>.</summary>
    public static HttpPipelinePolicy CallCounter(string service) => new CallCountingPolicy(service);

    /// <summary>Records the age of a message taken from <paramref name="queue"/>.</summary>
    public static void RecordReceived(string queue, DateTimeOffset? insertedOn, DateTimeOffset now)
    {
        if (insertedOn is { } inserted)
            MessageAge.Record(Math.Max(0, (now - inserted).TotalSeconds), new KeyValuePair<string, object?>("messaging.destination.name", queue));
    }

    /// <summary>Makes <paramref name="queue"/>'s depth part of <c>queue.depth</c> until the returned handle is disposed.</summary>
    public static IDisposable ObserveDepth(QueueClient queue, TimeProvider time)
    {
        var probe = new DepthProbe(queue, time);
        Probes[queue.Name] = probe;
        return new Registration(() => Probes.TryRemove(new KeyValuePair<string, DepthProbe>(queue.Name, probe)));
    }

    private static IEnumerable<Measurement<long>> ObserveDepths()
    {
        foreach (var probe in Probes.Values)
        {
            probe.RefreshIfStale();
            if (probe.Last is { } depth)
                yield return new Measurement<long>(depth, new KeyValuePair<string, object?>("messaging.destination.name", probe.Queue.Name));
        }
    }

    private sealed class DepthProbe(QueueClient queue, TimeProvider time)
    {
        private int _refreshing;
        private long _readAtTicks;
        private long _last = -1;

        public QueueClient Queue => queue;

        /// <summary>The depth read last, or null (never read, or the last read failed).</summary>
        public long? Last => Interlocked.Read(ref _last) is var last and >= 0 ? last : null;

        public void RefreshIfStale()
        {
            if (time.GetUtcNow().UtcTicks - Interlocked.Read(ref _readAtTicks) < DepthMaxAge.Ticks || Interlocked.Exchange(ref _refreshing, 1) == 1) return;
            _ = Task.Run(async () =>
            {
                try
                {
                    Interlocked.Exchange(ref _last, (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
                    Interlocked.Exchange(ref _readAtTicks, time.GetUtcNow().UtcTicks);
                }
                catch (Exception)
                {
                    // Storage unreachable: the depth is not shown until a read succeeds (tried at the next collection).
                    Interlocked.Exchange(ref _last, -1);
                }
                finally
                {
                    Volatile.Write(ref _refreshing, 0);
                }
            });
        }
    }

    private sealed class Registration(Action dispose) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) dispose();
        }
    }

    private sealed class CallCountingPolicy(string service) : HttpPipelineSynchronousPolicy
    {
        public override void OnReceivedResponse(HttpMessage message)
        {
            var status = message.Response.Status;
            var serviceTag = new KeyValuePair<string, object?>("storage.service", service);
            Calls.Add(1, serviceTag, new KeyValuePair<string, object?>("http.response.status_code", status));
            if (status is 409 or 412) Conflicts.Add(1, serviceTag);
        }
    }
}
