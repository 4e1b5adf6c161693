using Microsoft.Extensions.Logging;

namespace Serverless.Core.Logs;

/// <summary>
/// Applies each log group's <c>retentionInDays</c> (PutRetentionPolicy): deletes the chunks of events
/// older than that, and raises the stream's first-event bound past them, so the next sweep skips a
/// stream with nothing old. Run by a timer; streams themselves stay, as in AWS.
/// </summary>
public sealed class LogRetention(LogStore store, LogEventStore events, TimeProvider time, ILogger<LogRetention> logger)
{
    public async Task SweepAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await foreach (var group in store.ListGroupsAsync(null, null, cancellationToken))
        {
            if (group.RetentionInDays is not { } days) continue;
            var cutoff = (now - TimeSpan.FromDays(days)).ToUnixTimeMilliseconds();
            await foreach (var stream in store.ListStreamsAsync(group, null, cancellationToken))
            {
                if (stream.FirstBound is not { } first || first >= cutoff - LogChunk.MaxSpanMilliseconds) continue;
                var deleted = await events.DeleteBeforeAsync(stream.Id, cutoff, cancellationToken);
                // A chunk that straddles the cutoff stays; its events are read until the next sweep passes it.
                var raised = stream with
                {
                    FirstBound = Math.Min(cutoff - LogChunk.MaxSpanMilliseconds, stream.LastBound ?? cutoff),
                    FirstEventTimestamp = stream.FirstEventTimestamp < cutoff ? null : stream.FirstEventTimestamp,
                };
                if (raised.FirstBound > first) await store.TrySaveStreamAsync(group, raised, cancellationToken);
                if (deleted > 0)
                    logger.LogInformation("Log retention: deleted {Chunks} chunk(s) older than {Days} days from {Group} {Stream}", deleted, days, group.Name, stream.Name);
            }
        }
    }
}
