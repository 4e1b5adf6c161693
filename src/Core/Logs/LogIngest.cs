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
        return (await PutAsync(group, stream, batch, cancellationToken)).Rejected;
    }

    /// <summary>
    /// <see cref="PutAsync(string, string, IReadOnlyList{ValueTuple{long, string}}, CancellationToken)"/> for a
    /// writer that puts batch after batch into one stream (the worker's awslogs shipping): the group and
    /// stream rows are read again only when older than <see cref="RowsMaxAge"/>, after the stream row was
    /// written (its ETag changed) or after a failure, so a batch costs one storage write, not three
    /// transactions. A group or stream deleted meanwhile is noticed within <see cref="RowsMaxAge"/>.
    /// </summary>
    public async Task<LogEventRules.Rejected> PutAsync(Writer writer, IReadOnlyList<(long Timestamp, string Message)> batch, CancellationToken cancellationToken)
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
            var (rejected, saved) = await PutAsync(writer.Group, writer.Stream, batch, cancellationToken);
            if (saved) writer.Stream = null;
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

    /// <summary>Stores the batch; also says whether the stream row was written (its time bounds widened).</summary>
    private async Task<(LogEventRules.Rejected Rejected, bool Saved)> PutAsync(
        LogGroup group, LogStream stream, IReadOnlyList<(long Timestamp, string Message)> batch, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var (rejected, start, end) = LogEventRules.Check(batch, now, group.RetentionInDays);
        if (end <= start) return (rejected, false);

        var kept = batch.Skip(start).Take(end - start).ToList();
        var ingested = now.ToUnixTimeMilliseconds();
        var saved = false;
        for (var attempt = 1; LogEventRules.Widen(stream, kept[0].Timestamp, kept[^1].Timestamp, ingested) is { } widened; attempt++)
        {
            if (await store.TrySaveStreamAsync(group, widened, cancellationToken))
            {
                saved = true;
                break;
            }
            if (attempt == 5) throw new ConcurrentUpdateException(stream.Name);
            stream = await store.GetStreamAsync(group, stream.Name, cancellationToken);
        }
        await events.AppendAsync(stream.Id, LogChunk.Cut(kept, ingested, RandomNumberGenerator.GetInt32(1_000_000)), cancellationToken);
        return (rejected, saved);
    }

    /// <summary>Creates the stream, and the group first when <paramref name="createGroup"/>; either existing already is fine.</summary>
    public async Task EnsureStreamAsync(string groupName, string streamName, bool createGroup, CancellationToken cancellationToken)
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
        if (await store.FindStreamAsync(group, streamName, cancellationToken) is not null) return;
        try
        {
            await store.CreateStreamAsync(group, streamName, time.GetUtcNow(), cancellationToken);
        }
        catch (ResourceAlreadyExistsException)
        {
        }
    }
}
