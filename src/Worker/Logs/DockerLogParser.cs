using System.Globalization;
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
/// </summary>
/// <remarks>
/// Docker's json-file driver stores a line longer than 16 KiB as several partial records; with
/// timestamps each part arrives prefixed with its own time and the logs API does not mark where a part
/// ends, so such a line is shipped with those inner timestamps in its text.
/// </remarks>
public sealed class DockerLogParser
{
    public const int MaxEventBytes = LogEventRules.MaxEventBytes - LogEventRules.EventOverheadBytes;

    private readonly Pending[] _streams = [new(), new(), new()];

    private sealed class Pending
    {
        public readonly List<byte> Header = new(40);
        public readonly List<byte> Line = new(256);
        public bool InHeader = true;
        public long Timestamp;
    }

    /// <summary>Feeds bytes read from one output (0 stdin, 1 stdout, 2 stderr); returns the events completed.</summary>
    public List<(long Timestamp, string Message)> Feed(int target, ReadOnlySpan<byte> data)
    {
        var events = new List<(long, string)>();
        var pending = _streams[target];
        foreach (var b in data)
        {
            if (pending.InHeader)
            {
                if (b != (byte)' ')
                {
                    // A header is ~30 bytes; anything longer is no header (output from before timestamps): treat it as text.
                    if (pending.Header.Count < 64) { pending.Header.Add(b); continue; }
                    pending.Line.AddRange(pending.Header);
                    pending.Header.Clear();
                    pending.InHeader = false;
                    continue;
                }
                var timestamp = ParseTimestamp(pending.Header);
                pending.Header.Clear();
                pending.InHeader = false;
                if (pending.Line.Count == 0) pending.Timestamp = timestamp;
                continue;
            }
            if (b == (byte)'\n')
            {
                Emit(pending, events);
                pending.InHeader = true;
                continue;
            }
            pending.Line.Add(b);
            if (pending.Line.Count >= MaxEventBytes) Emit(pending, events);
        }
        return events;
    }

    private static void Emit(Pending pending, List<(long, string)> events)
    {
        if (pending.Line.Count == 0) return;
        var text = Encoding.UTF8.GetString([.. pending.Line]);
        pending.Line.Clear();
        foreach (var piece in Pieces(text)) events.Add((pending.Timestamp, piece));
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

    /// <summary>RFC 3339 with nanoseconds, as Docker writes it, in milliseconds since the epoch; 0 when it is not one.</summary>
    private static long ParseTimestamp(List<byte> header)
    {
        var text = Encoding.ASCII.GetString([.. header]);
        var dot = text.IndexOf('.');
        var seconds = dot > 0 ? text[..dot] + "Z" : text;
        if (!DateTimeOffset.TryParse(seconds, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time)) return 0;
        var millis = 0;
        if (dot > 0)
        {
            var fraction = new string(text[(dot + 1)..].TakeWhile(char.IsDigit).ToArray()).PadRight(3, '0')[..3];
            millis = int.Parse(fraction, CultureInfo.InvariantCulture);
        }
        return time.ToUnixTimeMilliseconds() + millis;
    }
}
