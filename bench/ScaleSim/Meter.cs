using System.Collections.Concurrent;
using Serverless.TestSupport.Storage;

namespace Serverless.ScaleSim;

/// <summary>Where a transaction came from and what it addressed.</summary>
public readonly record struct MeterKey(string Source, string Service, string Resource, string Partition, string Kind);

/// <summary>Counts the storage transactions every proxy sees, by source, table or queue, partition and kind.</summary>
public sealed class Meter
{
    private readonly ConcurrentDictionary<MeterKey, long[]> _counts = new();

    public Action<StorageRequest> For(string source) => request =>
    {
        var key = new MeterKey(source, request.Service == StorageService.Queue ? "queue" : "table",
            request.Resource ?? "-", request.Partition ?? "-", request.Kind);
        var counts = _counts.GetOrAdd(key, _ => new long[2]);
        Interlocked.Increment(ref counts[0]);
        Interlocked.Add(ref counts[1], request.Entities);
    };

    public long Total => _counts.Values.Sum(c => Interlocked.Read(ref c[0]));

    public Snapshot Take() => new(_counts.ToDictionary(c => c.Key, c => (Interlocked.Read(ref c.Value[0]), Interlocked.Read(ref c.Value[1]))), DateTimeOffset.UtcNow);
}

public sealed record Snapshot(Dictionary<MeterKey, (long Requests, long Entities)> Counts, DateTimeOffset At)
{
    /// <summary>What happened between <paramref name="before"/> and this snapshot.</summary>
    public Window Since(Snapshot before)
    {
        var counts = new Dictionary<MeterKey, (long Requests, long Entities)>();
        foreach (var (key, (requests, entities)) in Counts)
        {
            var (r0, e0) = before.Counts.GetValueOrDefault(key);
            if (requests - r0 > 0) counts[key] = (requests - r0, entities - e0);
        }
        return new Window(counts, (At - before.At).TotalSeconds);
    }
}

public sealed record Window(Dictionary<MeterKey, (long Requests, long Entities)> Counts, double Seconds)
{
    public long Total => Counts.Values.Sum(c => c.Requests);
}
