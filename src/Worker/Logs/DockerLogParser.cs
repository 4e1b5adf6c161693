using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Serverless.Core.Logs;

namespace Serverless.Worker.Logs;

/// <summary>
/// Turns the output of Docker's logs API with <c>timestamps=true</c> (per stream: records
/// <c>2026-12-02T12:00:00.123456789Z text\n</c>) into log events: one per line, stamped with the time
/// Docker received the line (milliseconds), without the newline. Empty lines are dropped (CloudWatch
/// Logs takes no empty event); bytes that are not UTF-8 become U+FFFD; a line longer than an event may
/// be (256 KiB less 26 bytes) is cut into several events, as Docker's awslogs driver does, so memory
/// stays bounded whatever a container prints.
/// Each event also says where a read resumed after it starts again (<see cref="DockerLogLine.Nanos"/>,
/// <see cref="DockerLogLine.Repeats"/>): after the last complete record read when it was emitted.
/// </summary>
/// <remarks>
/// Docker's json-file driver stores a line longer than 16 KiB as several partial records; with
/// timestamps each part arrives prefixed with its own time and the logs API does not mark where a part
/// ends, so such a line is shipped with those inner timestamps in its text.
/// <para>
/// A parser made to resume (<paramref name="skipNanos"/>, <paramref name="skipCount"/>) drops the first
/// <paramref name="skipCount"/> records stamped exactly <paramref name="skipNanos"/>: a read with Docker's
/// <c>since</c> set to the last record seen starts again at that record (its filter keeps times at or
/// after <c>since</c>), and <see cref="LastRecordNanos"/> / <see cref="LastRecordRepeats"/> say where an
/// earlier parser stopped. With <paramref name="dropBefore"/> it also drops the records stamped before
/// <paramref name="skipNanos"/>, as Docker's <c>since</c> would, for a read of the log's last records
/// (<c>tail</c>) that reaches back before them (<see cref="FirstRecordNanos"/> says where it starts).
/// </para>
/// </remarks>
public sealed class DockerLogParser(long skipNanos = 0, int skipCount = 0, bool dropBefore = false)
{
    /// <summary>
    /// The shipper's cursor for a position in Docker's log (stored with the events it shipped): the last
    /// complete record's time in nanoseconds and how many records in a row up to it carried that time.
    /// </summary>
    public static string Cursor(long nanos, int repeats) => string.Create(CultureInfo.InvariantCulture, $"{nanos}:{repeats}");

    /// <summary>Reads a <see cref="Cursor(long, int)"/>; false for anything else.</summary>
    public static bool TryParseCursor(string? cursor, out long nanos, out int repeats)
    {
        (nanos, repeats) = (0, 0);
        var colon = cursor?.IndexOf(':') ?? -1;
        return colon > 0
            && long.TryParse(cursor.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out nanos)
            && int.TryParse(cursor.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out repeats)
            && nanos > 0 && repeats > 0;
    }

    public const int MaxEventBytes = LogEventRules.MaxEventBytes - LogEventRules.EventOverheadBytes;

    private const int HeaderLimit = 64;

    private readonly Pending[] _streams = [new(), new(), new()];
    private int _skipped;
    private readonly DockerTime _time = new();

    /// <summary>Docker's time (nanoseconds since the epoch) of the last complete record (line) read; 0 before the first.</summary>
    public long LastRecordNanos { get; private set; }

    /// <summary>How many complete records in a row, up to the last, carried <see cref="LastRecordNanos"/>.</summary>
    public int LastRecordRepeats { get; private set; }

    /// <summary>Docker's <c>since</c> for a read that starts again at the last record (seconds.nanoseconds).</summary>
    public static string Since(long nanos)
        => (nanos / 1_000_000_000).ToString(CultureInfo.InvariantCulture) + "." + (nanos % 1_000_000_000).ToString("D9", CultureInfo.InvariantCulture);

    private sealed class Pending
    {
        public readonly List<byte> Header = new(40);
        public readonly List<byte> Line = new(256);
        public bool InHeader = true;
        public long Timestamp;
        public long Nanos;
        public bool Skip;
    }

    /// <summary>Feeds bytes read from one output (0 stdin, 1 stdout, 2 stderr); returns the events completed.</summary>
    public List<DockerLogLine> Feed(int target, ReadOnlySpan<byte> data)
    {
        var events = new List<DockerLogLine>();
        Feed(target, data, events);
        return events;
    }

    /// <summary>Feeds bytes read from one output (0 stdin, 1 stdout, 2 stderr); adds the events completed to <paramref name="events"/>.</summary>
    public void Feed(int target, ReadOnlySpan<byte> data, List<DockerLogLine> events)
    {
        var pending = _streams[target];
        while (!data.IsEmpty)
        {
            if (pending.InHeader)
            {
                // The common case: a whole record in what was read and nothing of this output pending. Parsed
                // in place, one string per line and nothing else allocated.
                if (pending.Header.Count == 0 && pending.Line.Count == 0 && !pending.Skip
                    && data[..Math.Min(data.Length, HeaderLimit + 1)].IndexOf((byte)' ') is var space and >= 0)
                {
                    var rest = data[(space + 1)..];
                    var newline = rest.IndexOf((byte)'\n');
                    if (newline >= 0 && newline <= MaxEventBytes)
                    {
                        var nanos = ParseNanos(data[..space]);
                        var text = rest[..newline];
                        data = rest[(newline + 1)..];
                        var skip = Skips(nanos);
                        Completed(nanos);
                        if (!skip && text.IndexOfAnyExcept((byte)'\r') >= 0)
                            events.Add(new(nanos / 1_000_000, Encoding.UTF8.GetString(text), LastRecordNanos, LastRecordRepeats));
                        continue;
                    }
                }
                var headerEnd = data.IndexOf((byte)' ');
                var take = headerEnd < 0 ? data.Length : headerEnd;
                if (take > HeaderLimit - pending.Header.Count)
                {
                    // A header is ~30 bytes; anything longer is no header (output from before timestamps): treat it as text.
                    pending.Line.AddRange(pending.Header);
                    pending.Header.Clear();
                    pending.InHeader = false;
                    continue;
                }
                pending.Header.AddRange(data[..take]);
                if (headerEnd < 0) break;
                data = data[(headerEnd + 1)..];
                var parsed = ParseNanos(CollectionsMarshal.AsSpan(pending.Header));
                pending.Header.Clear();
                pending.InHeader = false;
                if (pending.Line.Count == 0 && !pending.Skip)
                {
                    pending.Timestamp = parsed / 1_000_000;
                    pending.Nanos = parsed;
                    pending.Skip = Skips(parsed);
                }
                continue;
            }
            var end = data.IndexOf((byte)'\n');
            var part = end < 0 ? data : data[..end];
            while (!part.IsEmpty)
            {
                var n = Math.Min(part.Length, MaxEventBytes - pending.Line.Count);
                pending.Line.AddRange(part[..n]);
                part = part[n..];
                // A piece of a longer line goes out now; a read resumed from here starts again at its record.
                if (pending.Line.Count >= MaxEventBytes) Emit(pending, events);
            }
            if (end < 0) break;
            data = data[(end + 1)..];
            Completed(pending.Nanos);
            Emit(pending, events);
            pending.Skip = false;
            pending.InHeader = true;
        }
    }

    /// <summary>Docker's time of the first record read (skipped or not); 0 before the first.</summary>
    public long FirstRecordNanos { get; private set; }

    /// <summary>Whether a record stamped <paramref name="nanos"/> is one a resumed parser skips (and counts it).</summary>
    private bool Skips(long nanos)
    {
        if (FirstRecordNanos == 0) FirstRecordNanos = nanos;
        // Reading the log's tail rather than from `since`: what Docker's filter would have left out.
        if (dropBefore && nanos != 0 && nanos < skipNanos) return true;
        if (nanos != skipNanos || nanos == 0 || _skipped >= skipCount) return false;
        _skipped++;
        return true;
    }

    private void Completed(long nanos)
    {
        LastRecordRepeats = nanos == LastRecordNanos ? LastRecordRepeats + 1 : 1;
        LastRecordNanos = nanos;
    }

    private void Emit(Pending pending, List<DockerLogLine> events)
    {
        if (pending.Skip) pending.Line.Clear();
        if (pending.Line.Count == 0) return;
        var text = Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(pending.Line));
        pending.Line.Clear();
        foreach (var piece in Pieces(text)) events.Add(new(pending.Timestamp, piece, LastRecordNanos, LastRecordRepeats));
    }

    /// <summary>The text cut at character boundaries into pieces of at most <see cref="MaxEventBytes"/> UTF-8 bytes.</summary>
    public static IEnumerable<string> Pieces(string text)
    {
        if (text.TrimEnd('\r').Length == 0) yield break;
        var start = 0;
        var bytes = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var width = char.IsHighSurrogate(text[i]) && i + 1 < text.Length ? 4 : text[i] < 0x80 ? 1 : text[i] < 0x800 ? 2 : 3;
            if (bytes + width > MaxEventBytes)
            {
                yield return text[start..i];
                start = i;
                bytes = 0;
            }
            bytes += width;
            if (width == 4) i++;
        }
        if (start < text.Length) yield return text[start..];
    }

    private long ParseNanos(ReadOnlySpan<byte> header) => _time.ParseNanos(header);
}

/// <summary>
/// One event read from Docker's log: its time (milliseconds), its text, and the position a read resumed after
/// it starts again at (the last complete record's time in nanoseconds and its repeats, see <see cref="DockerLogParser"/>).
/// </summary>
public readonly record struct DockerLogLine(long Timestamp, string Message, long Nanos, int Repeats);
