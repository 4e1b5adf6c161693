using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Azure.Data.Tables;

namespace Serverless.Core.Logs;

/// <summary>One stored log event, as GetLogEvents and FilterLogEvents answer it.</summary>
public sealed record LogEvent(long Timestamp, string Message, long IngestionTime, string EventId);

/// <summary>
/// Several consecutive events of one stream stored as one entity of the <c>LogEvents</c> table (see
/// <see cref="LogEventStore"/>): row key <c>{first timestamp:D15}-{chunk id}</c>, the events packed
/// as binary (<c>timestamp:int64, length:int32, UTF-8</c> each) cut into properties of at most 64 KiB.
/// <see cref="Cursor"/> is the writer's own note of where its source was once these events were read
/// (the awslogs shipper's position in Docker's log), stored in the same write as the events.
/// </summary>
public sealed record LogChunk(string ChunkId, long IngestionTime, IReadOnlyList<(long Timestamp, string Message)> Events, string? Cursor = null)
{
    /// <summary>Under the 1 MiB entity limit with room for keys and the other properties.</summary>
    public const int MaxPayloadBytes = 960 * 1024;

    /// <summary>
    /// A chunk covers at most this much event time, so a read of events from time T needs only chunks
    /// that start after T minus this: a time-range read is one row-key range.
    /// </summary>
    public const long MaxSpanMilliseconds = 60_000;

    private const int PropertyBytes = 64 * 1024;

    internal const string CursorProperty = "Cursor";

    /// <summary>Bytes one event takes in the payload.</summary>
    public static int PackedSize(string message) => 12 + Encoding.UTF8.GetByteCount(message);

    public long FirstTimestamp => Events[0].Timestamp;

    public long LastTimestamp => Events[^1].Timestamp;

    public string RowKey => $"{LogKeys.Time(FirstTimestamp)}-{ChunkId}";

    /// <summary>
    /// The events with their <c>eventId</c>s: digits only, as AWS's are, ordered as the events are
    /// (timestamp, then chunk, then position), and unique within the stream and, through the stream's
    /// number, across a group's streams, where <c>aws logs tail</c> drops repeats by it.
    /// </summary>
    public IEnumerable<LogEvent> Read(string streamNumber)
    {
        for (var i = 0; i < Events.Count; i++)
        {
            var (timestamp, message) = Events[i];
            yield return new LogEvent(timestamp, message, IngestionTime,
                string.Create(CultureInfo.InvariantCulture, $"{LogKeys.Time(timestamp)}{ChunkId}{streamNumber}{i:D5}"));
        }
    }

    public TableEntity ToEntity(string partitionKey)
    {
        var size = 0;
        foreach (var (_, message) in Events) size += PackedSize(message);
        // Written straight into the 64 KiB properties: no ~1 MiB array (a large-object-heap allocation per write) to cut up.
        var parts = new byte[(size + PropertyBytes - 1) / PropertyBytes][];
        for (var i = 0; i < parts.Length; i++) parts[i] = new byte[Math.Min(PropertyBytes, size - i * PropertyBytes)];
        var at = 0;
        void Write(ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                var target = parts[at / PropertyBytes].AsSpan(at % PropertyBytes);
                var n = Math.Min(target.Length, bytes.Length);
                bytes[..n].CopyTo(target);
                bytes = bytes[n..];
                at += n;
            }
        }
        var scratch = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            Span<byte> header = stackalloc byte[12];
            foreach (var (timestamp, message) in Events)
            {
                if (scratch.Length < Encoding.UTF8.GetMaxByteCount(message.Length))
                {
                    ArrayPool<byte>.Shared.Return(scratch);
                    scratch = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(message.Length));
                }
                var length = Encoding.UTF8.GetBytes(message, scratch);
                BinaryPrimitives.WriteInt64LittleEndian(header, timestamp);
                BinaryPrimitives.WriteInt32LittleEndian(header[8..], length);
                Write(header);
                Write(scratch.AsSpan(0, length));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
        var entity = new TableEntity(partitionKey, RowKey)
        {
            ["Last"] = LastTimestamp,
            ["Ingested"] = IngestionTime,
            ["Count"] = Events.Count,
        };
        if (Cursor is not null) entity[CursorProperty] = Cursor;
        for (var part = 0; part < parts.Length; part++) entity[$"D{part:D2}"] = parts[part];
        return entity;
    }

    public static LogChunk FromEntity(TableEntity entity)
    {
        var parts = new List<byte[]>();
        for (var part = 0; entity.GetBinary($"D{part:D2}") is { } bytes; part++) parts.Add(bytes);
        var payload = parts.SelectMany(p => p).ToArray();
        var events = new List<(long, string)>(entity.GetInt32("Count") ?? 0);
        for (var at = 0; at < payload.Length;)
        {
            var timestamp = BinaryPrimitives.ReadInt64LittleEndian(payload.AsSpan(at));
            var length = BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(at + 8));
            events.Add((timestamp, Encoding.UTF8.GetString(payload, at + 12, length)));
            at += 12 + length;
        }
        var chunkId = entity.RowKey[(entity.RowKey.IndexOf('-') + 1)..];
        return new LogChunk(chunkId, entity.GetInt64("Ingested") ?? 0, events, entity.GetString(CursorProperty));
    }

    /// <summary>
    /// Cuts a chronological batch into chunks: a new one when the payload would pass
    /// <see cref="MaxPayloadBytes"/> or the time span <see cref="MaxSpanMilliseconds"/>. Chunk ids are
    /// the ingestion time, a random number and the chunk's place in the batch: digits, unique. The last chunk
    /// carries <paramref name="cursor"/>: chunks are stored in order, so once it is stored all of them are.
    /// </summary>
    public static List<LogChunk> Cut(IReadOnlyList<(long Timestamp, string Message)> events, long ingestionTime, int random, string? cursor = null)
    {
        var chunks = new List<LogChunk>();
        var current = new List<(long, string)>();
        var size = 0;
        foreach (var e in events)
        {
            var packed = PackedSize(e.Message);
            if (current.Count > 0 && (size + packed > MaxPayloadBytes || e.Timestamp - current[0].Item1 > MaxSpanMilliseconds))
            {
                chunks.Add(new LogChunk(Id(ingestionTime, random, chunks.Count), ingestionTime, current));
                current = [];
                size = 0;
            }
            current.Add(e);
            size += packed;
        }
        if (current.Count > 0) chunks.Add(new LogChunk(Id(ingestionTime, random, chunks.Count), ingestionTime, current, cursor));
        return chunks;
    }

    private static string Id(long ingestionTime, int random, int index)
        => string.Create(CultureInfo.InvariantCulture, $"{LogKeys.Time(ingestionTime)}{random:D6}{index:D5}");
}
