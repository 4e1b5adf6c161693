using System.Runtime.CompilerServices;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Logs;

/// <summary>
/// The <c>LogEvents</c> table: a partition per stream (its id), a row per <see cref="LogChunk"/> keyed by
/// the chunk's first timestamp. Why this layout:
/// <list type="bullet">
/// <item>Appends are cheap: one PutLogEvents of up to 10,000 events is one entity-group transaction of
/// one or two chunks (1,000 lines of 100 bytes are ~112 KB: one entity), where a row per event would
/// cost ten transactions of 100 and a row per event's 255-property limit forbids packing by column.</item>
/// <item>A stream's partition takes only that stream's write rate; no partition sees a group- or
/// cluster-wide rate.</item>
/// <item>A time-range read is one row-key range of one partition: a chunk spans at most
/// <see cref="LogChunk.MaxSpanMilliseconds"/>, so events from T on live in chunks keyed from T minus that.
/// FilterLogEvents over many streams reads one such range per stream whose time bounds
/// (<see cref="LogStream.FirstBound"/>, <see cref="LogStream.LastBound"/>) meet the asked range.</item>
/// </list>
/// Append Blobs would append at a similar price but cannot be read by time without an index of
/// their own, and would add a second storage client and its limits for no gain on the read path.
/// </summary>
public sealed class LogEventStore(StorageClients storage)
{
    private const string TableName = "LogEvents";

    /// <summary>Stores the chunks of one stream in one transaction per 100 (a PutLogEvents makes one or two).</summary>
    public async Task AppendAsync(string streamId, IReadOnlyList<LogChunk> chunks, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        foreach (var batch in chunks.Chunk(TableQueries.MaxBatchOperations))
        {
            if (batch.Length == 1) await table.AddEntityAsync(batch[0].ToEntity(streamId), cancellationToken);
            else await table.SubmitTransactionAsync(batch.Select(c => new TableTransactionAction(TableTransactionActionType.Add, c.ToEntity(streamId))), cancellationToken);
        }
    }

    /// <summary>
    /// The stream's events with <paramref name="from"/> &lt;= timestamp &lt; <paramref name="until"/> and an
    /// eventId after <paramref name="afterEventId"/>, in order (timestamp, then eventId), read lazily.
    /// </summary>
    public async IAsyncEnumerable<LogEvent> ReadForwardAsync(
        LogStream stream, long from, long until, string? afterEventId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {stream.Id} and RowKey ge {LogKeys.Time(Math.Max(0, from - LogChunk.MaxSpanMilliseconds))} and RowKey lt {LogKeys.Time(until)}");
        var pending = new PriorityQueue<LogEvent, string>(StringComparer.Ordinal);
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            var chunk = LogChunk.FromEntity(row);
            // Every later chunk starts at or after this one: what is pending before its start is final.
            while (pending.TryPeek(out var next, out _) && next.Timestamp < chunk.FirstTimestamp) yield return pending.Dequeue();
            foreach (var e in chunk.Read(stream.Number))
            {
                if (e.Timestamp >= from && e.Timestamp < until && (afterEventId is null || string.CompareOrdinal(e.EventId, afterEventId) > 0))
                    pending.Enqueue(e, e.EventId);
            }
        }
        while (pending.Count > 0) yield return pending.Dequeue();
    }

    /// <summary>
    /// The same range newest first: reads windows of chunks backwards from <paramref name="until"/>, each
    /// twice as long as the last, until <paramref name="from"/> or the stream's first event is passed.
    /// </summary>
    public async IAsyncEnumerable<LogEvent> ReadBackwardAsync(
        LogStream stream, long from, long until, string? beforeEventId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (stream.FirstBound is not { } firstBound || stream.LastBound is not { } lastBound) yield break;
        var table = await storage.TableAsync(TableName, cancellationToken);
        from = Math.Max(from, firstBound);
        var high = Math.Min(until, lastBound + 1);
        var window = 5 * 60_000L;
        var pending = new PriorityQueue<LogEvent, string>(Comparer<string>.Create((a, b) => string.CompareOrdinal(b, a)));
        while (true)
        {
            var low = Math.Max(0, high - window);
            var filter = TableClient.CreateQueryFilter(
                $"PartitionKey eq {stream.Id} and RowKey ge {LogKeys.Time(low)} and RowKey lt {LogKeys.Time(high)}");
            await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            {
                foreach (var e in LogChunk.FromEntity(row).Read(stream.Number))
                {
                    if (e.Timestamp >= from && e.Timestamp < until && (beforeEventId is null || string.CompareOrdinal(e.EventId, beforeEventId) < 0))
                        pending.Enqueue(e, e.EventId);
                }
            }
            var done = low <= 0 || low < from - LogChunk.MaxSpanMilliseconds;
            // Chunks starting before `low` hold nothing at or after low + span: what is pending from there on is final.
            while (pending.TryPeek(out var next, out _) && (done || next.Timestamp >= low + LogChunk.MaxSpanMilliseconds)) yield return pending.Dequeue();
            if (done) yield break;
            high = low;
            window *= 2;
        }
    }

    /// <summary>
    /// The <see cref="LogChunk.Cursor"/> stored last (the latest ingestion) in the stream, or null when no chunk
    /// has one. Reads only those two properties of the chunks in a window before the stream's last bound,
    /// widening it back to the stream's first event until one is found.
    /// </summary>
    public async Task<string?> LastCursorAsync(LogStream stream, CancellationToken cancellationToken)
    {
        if (stream.FirstBound is not { } firstBound || stream.LastBound is not { } lastBound) return null;
        var table = await storage.TableAsync(TableName, cancellationToken);
        for (var window = 3 * LogChunk.MaxSpanMilliseconds; ; window *= 4)
        {
            var low = Math.Max(0, lastBound - window);
            var filter = TableClient.CreateQueryFilter($"PartitionKey eq {stream.Id} and RowKey ge {LogKeys.Time(low)}");
            (long Ingested, string RowKey, string Cursor)? last = null;
            await foreach (var row in table.QueryAsync<TableEntity>(filter, select: ["RowKey", "Ingested", LogChunk.CursorProperty], cancellationToken: cancellationToken))
            {
                if (row.GetString(LogChunk.CursorProperty) is not { } cursor) continue;
                var ingested = row.GetInt64("Ingested") ?? 0;
                if (last is not { } best || ingested > best.Ingested || (ingested == best.Ingested && string.CompareOrdinal(row.RowKey, best.RowKey) > 0))
                    last = (ingested, row.RowKey, cursor);
            }
            if (last is { } found) return found.Cursor;
            if (low <= 0 || low < firstBound - LogChunk.MaxSpanMilliseconds) return null;
        }
    }

    /// <summary>Deletes every chunk of the stream (after its row is gone, so nobody reads them meanwhile).</summary>
    public async Task DeleteAllAsync(string streamId, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"PartitionKey eq {streamId}"), cancellationToken);
    }

    /// <summary>Deletes the chunks whose every event is older than <paramref name="cutoff"/>; returns how many.</summary>
    public async Task<int> DeleteBeforeAsync(string streamId, long cutoff, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await table.DeleteMatchingAsync(TableClient.CreateQueryFilter(
            $"PartitionKey eq {streamId} and RowKey lt {LogKeys.Time(cutoff)} and Last lt {cutoff}"), cancellationToken);
    }
}
