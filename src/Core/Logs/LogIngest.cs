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
        var now = time.GetUtcNow();
        var group = await store.GetGroupAsync(groupName, cancellationToken);
        var stream = await store.GetStreamAsync(group, streamName, cancellationToken);
        var (rejected, start, end) = LogEventRules.Check(batch, now, group.RetentionInDays);
        if (end <= start) return rejected;

        var kept = batch.Skip(start).Take(end - start).ToList();
        var ingested = now.ToUnixTimeMilliseconds();
        for (var attempt = 1; LogEventRules.Widen(stream, kept[0].Timestamp, kept[^1].Timestamp, ingested) is { } widened; attempt++)
        {
            if (await store.TrySaveStreamAsync(group, widened, cancellationToken)) break;
            if (attempt == 5) throw new ConcurrentUpdateException(stream.Name);
            stream = await store.GetStreamAsync(group, stream.Name, cancellationToken);
        }
        await events.AppendAsync(stream.Id, LogChunk.Cut(kept, ingested, RandomNumberGenerator.GetInt32(1_000_000)), cancellationToken);
        return rejected;
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
