using System.Security.Cryptography;
using Serverless.Core.Api;

namespace Serverless.Core.Logs;

/// <summary>
/// Takes a batch of events into a stream: PutLogEvents' semantics, shared by the API action and the
/// worker's <c>awslogs</c> shipping, so both store events the same way.
/// </summary>
public sealed class LogIngest(LogStore store, LogEventStore events, TimeProvider time)
{
    /// <summary>
    /// Checks the batch (<see cref="LogEventRules.Check"/>), widens the stream's time bounds first (so a
    /// reader that trusts them never misses what follows), then stores the kept events as one or two chunks.
    /// Throws ResourceNotFoundException when the group or stream does not exist.
    /// </summary>
    public async Task<LogEventRules.Rejected> PutAsync(
        string groupName, string streamName, IReadOnlyList<(long Timestamp, string Message)> batch, CancellationToken cancellationToken)
    {
        var group = await store.GetGroupAsync(groupName, cancellationToken);
        var stream = await store.GetStreamAsync(group, streamName, cancellationToken);
        return (await PutAsync(group, stream, batch, null, cancellationToken)).Rejected;
    }

    /// <summary>
    /// <see cref="PutAsync(string, string, IReadOnlyList{ValueTuple{long, string}}, CancellationToken)"/> for a
    /// writer that puts batch after batch into one stream (the worker's awslogs shipping): the group and
    /// stream rows are read again only when older than <see cref="RowsMaxAge"/> or after a failure (a
    /// write of the stream row keeps its new ETag), so a batch costs one storage write, not three
    /// transactions. A group or stream deleted meanwhile is noticed within <see cref="RowsMaxAge"/>.
    /// <paramref name="cursor"/>, if given, is stored with the events, in the same write: where the writer's
    /// source was when it had read them (<see cref="LogEventStore.LastCursorAsync"/> reads it back).
    /// </summary>
    public async Task<LogEventRules.Rejected> PutAsync(
        Writer writer, IReadOnlyList<(long Timestamp, string Message)> batch, CancellationToken cancellationToken, string? cursor = null)
    {
        var now = time.GetUtcNow();
        try
        {
            if (writer.Group is null || now - writer.ReadAt >= RowsMaxAge)
            {
                writer.Group = await store.GetGroupAsync(writer.GroupName, cancellationToken);
                writer.Stream = null;
                writer.ReadAt = now;
            }
            writer.Stream ??= await store.GetStreamAsync(writer.Group, writer.StreamName, cancellationToken);
            var (rejected, stream) = await PutAsync(writer.Group, writer.Stream, batch, cursor, cancellationToken);
            writer.Stream = stream;
            return rejected;
        }
        catch
        {
            writer.Group = null;
            throw;
        }
    }

    /// <summary>Reads the writer's group and stream rows now (as its next put would) and returns the stream; ResourceNotFoundException when either is missing.</summary>
    public async Task<LogStream> OpenAsync(Writer writer, CancellationToken cancellationToken)
    {
        writer.Group = null;
        var group = await store.GetGroupAsync(writer.GroupName, cancellationToken);
        writer.Stream = await store.GetStreamAsync(group, writer.StreamName, cancellationToken);
        writer.Group = group;
        writer.ReadAt = time.GetUtcNow();
        return writer.Stream;
    }

    /// <summary>How long a <see cref="Writer"/> trusts the group and stream rows it read.</summary>
    public static readonly TimeSpan RowsMaxAge = TimeSpan.FromSeconds(30);

    /// <summary>One stream written batch after batch, with the rows last read for it.</summary>
    public sealed class Writer(string groupName, string streamName)
    {
        public string GroupName { get; } = groupName;
        public string StreamName { get; } = streamName;
        internal LogGroup? Group;
        internal LogStream? Stream;
        internal DateTimeOffset ReadAt;
    }

    /// <summary>Stores the batch; returns the stream row as it now is (written with a new ETag if its time bounds widened).</summary>
    private async Task<(LogEventRules.Rejected Rejected, LogStream Stream)> PutAsync(
        LogGroup group, LogStream stream, IReadOnlyList<(long Timestamp, string Message)> batch, string? cursor, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var (rejected, start, end) = LogEventRules.Check(batch, now, group.RetentionInDays);
        if (end <= start) return (rejected, stream);

        var kept = start == 0 && end == batch.Count ? batch : batch.Skip(start).Take(end - start).ToList();
        var ingested = now.ToUnixTimeMilliseconds();
        for (var attempt = 1; LogEventRules.Widen(stream, kept[0].Timestamp, kept[^1].Timestamp, ingested) is { } widened; attempt++)
        {
            if (await store.TrySaveStreamAsync(group, widened, cancellationToken) is { } saved)
            {
                stream = saved;
                break;
            }
            if (attempt == 5) throw new ConcurrentUpdateException(stream.Name);
            stream = await store.GetStreamAsync(group, stream.Name, cancellationToken);
        }
        await events.AppendAsync(stream.Id, LogChunk.Cut(kept, ingested, RandomNumberGenerator.GetInt32(1_000_000), cursor), cancellationToken);
        return (rejected, stream);
    }

    /// <summary>
    /// Creates the stream, and the group first when <paramref name="createGroup"/>; either existing already is
    /// fine. Returns a <see cref="Writer"/> for the stream holding the rows read or written here, so its first
    /// put reads nothing: a new stream costs a group read and the stream's insert (a read more if it existed).
    /// </summary>
    public async Task<Writer> EnsureStreamAsync(string groupName, string streamName, bool createGroup, CancellationToken cancellationToken)
    {
        var group = await store.FindGroupAsync(groupName, cancellationToken);
        if (group is null)
        {
            if (!createGroup) throw LogStore.GroupNotFound();
            try
            {
                await store.CreateGroupAsync(new LogGroup(groupName, Guid.NewGuid().ToString("N"), time.GetUtcNow(), null, "STANDARD", null, false,
                    new Dictionary<string, string>()), cancellationToken);
            }
            catch (ResourceAlreadyExistsException)
            {
            }
            group = await store.GetGroupAsync(groupName, cancellationToken);
        }
        var now = time.GetUtcNow();
        LogStream stream;
        try
        {
            // Mostly new (ECS names a stream after its task): insert first, read only when it was there.
            stream = await store.CreateStreamAsync(group, streamName, now, cancellationToken);
        }
        catch (ResourceAlreadyExistsException)
        {
            stream = await store.GetStreamAsync(group, streamName, cancellationToken);
        }
        return new Writer(groupName, streamName) { Group = group, Stream = stream.ETag == default ? null : stream, ReadAt = now };
    }
}
