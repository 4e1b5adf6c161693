using System.Text;
using Serverless.Core.Api;

namespace Serverless.Core.Logs;

/// <summary>What PutLogEvents accepts, as CloudWatch Logs documents it. Pure decisions over plain data.</summary>
public static class LogEventRules
{
    public const int MaxBatchBytes = 1_048_576;
    public const int EventOverheadBytes = 26;
    public const int MaxEventBytes = 256 * 1024;
    public static readonly TimeSpan MaxFuture = TimeSpan.FromHours(2);
    public static readonly TimeSpan MaxAge = TimeSpan.FromDays(14);
    public static readonly TimeSpan MaxBatchSpan = TimeSpan.FromHours(24);

    /// <summary>The values PutRetentionPolicy takes (the model leaves <c>Days</c> open; the service does not).</summary>
    public static readonly int[] RetentionDays =
        [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

    /// <summary>
    /// <c>rejectedLogEventsInfo</c>: the index of the first event too far in the future, of the last too old
    /// (over 14 days) and of the last older than the group's retention. Absent members are null.
    /// </summary>
    public sealed record Rejected(int? TooNewStartIndex, int? TooOldEndIndex, int? ExpiredEndIndex)
    {
        public bool Any => TooNewStartIndex is not null || TooOldEndIndex is not null || ExpiredEndIndex is not null;
    }

    /// <summary>
    /// Checks a batch: refuses it whole (InvalidParameterException) when it is out of order, spans more than
    /// 24 hours, or is too large; otherwise tells which leading and trailing events are rejected. The kept
    /// events are those between the last too old/expired and the first too new.
    /// </summary>
    public static (Rejected Rejected, int Start, int End) Check(IReadOnlyList<(long Timestamp, string Message)> events, DateTimeOffset now, int? retentionInDays)
    {
        long total = 0;
        for (var i = 0; i < events.Count; i++)
        {
            var size = Encoding.UTF8.GetByteCount(events[i].Message);
            if (size + EventOverheadBytes > MaxEventBytes)
                throw new InvalidParameterException($"Log event too large: {size + EventOverheadBytes} bytes exceeds limit of {MaxEventBytes}");
            total += size + EventOverheadBytes;
            if (i > 0 && events[i].Timestamp < events[i - 1].Timestamp)
                throw new InvalidParameterException("Log events in a single PutLogEvents request must be in chronological order.");
        }
        if (total > MaxBatchBytes)
            throw new InvalidParameterException($"Upload too large: {total} bytes exceeds limit of {MaxBatchBytes}");

        var nowMs = now.ToUnixTimeMilliseconds();
        var tooNewFrom = nowMs + (long)MaxFuture.TotalMilliseconds;
        var tooOldBefore = nowMs - (long)MaxAge.TotalMilliseconds;
        var expiredBefore = retentionInDays is { } days ? nowMs - (long)TimeSpan.FromDays(days).TotalMilliseconds : long.MinValue;

        int? tooNew = null, tooOld = null, expired = null;
        for (var i = 0; i < events.Count; i++)
        {
            var t = events[i].Timestamp;
            if (t < tooOldBefore) tooOld = i;
            else if (t < expiredBefore) expired = i;
            if (t > tooNewFrom && tooNew is null) tooNew = i;
        }
        var start = Math.Max(tooOld ?? -1, expired ?? -1) + 1;
        var end = tooNew ?? events.Count;
        if (end > start && events[end - 1].Timestamp - events[start].Timestamp > (long)MaxBatchSpan.TotalMilliseconds)
            throw new InvalidParameterException("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.");
        return (new Rejected(tooNew, tooOld, expired), start, end);
    }

    /// <summary>
    /// The stream after a batch of events from <paramref name="first"/> to <paramref name="last"/> was
    /// taken at <paramref name="ingested"/>, or null when its row need not be written. The bounds widen to
    /// whole minutes, so a stream that keeps logging writes its row about once a minute, not per batch.
    /// </summary>
    public static LogStream? Widen(LogStream stream, long first, long last, long ingested)
    {
        const long minute = 60_000;
        var firstBound = stream.FirstBound is { } f && f <= first ? f : first / minute * minute;
        var lastBound = stream.LastBound is { } l && l >= last ? l : (last / minute + 1) * minute;
        if (firstBound == stream.FirstBound && lastBound == stream.LastBound) return null;
        return stream with
        {
            FirstBound = firstBound,
            LastBound = lastBound,
            FirstEventTimestamp = Math.Min(stream.FirstEventTimestamp ?? first, first),
            LastEventTimestamp = Math.Max(stream.LastEventTimestamp ?? last, last),
            LastIngestionTime = ingested,
        };
    }
}
