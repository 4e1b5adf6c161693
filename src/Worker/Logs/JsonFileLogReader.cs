using System.Text;
using System.Text.Json;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Win32.SafeHandles;

namespace Serverless.Worker.Logs;

/// <summary>
/// Reads a container's output from the file Docker's <c>json-file</c> driver writes (ContainerInspect's
/// <c>LogPath</c>) instead of asking dockerd to serve it: dockerd's logs API sends every line as its own HTTP
/// chunk and frame, which cost dockerd more CPU than the worker spends shipping the line. Used when the worker
/// is on the engine's host and may read the file (the rule is in <see cref="TryOpenAsync"/>); otherwise the
/// shipper reads Docker's logs API (<see cref="DockerLogReader"/>), and it goes back to that API whenever this
/// reader cannot follow the file any more (<see cref="End.FallBack"/>).
/// </summary>
/// <remarks>
/// Tailing: the file is read to its end, then polled every <see cref="PollInterval"/> while the container runs.
/// Rotation (<c>max-size</c>, <c>max-file</c>): Docker closes the file, renames it to <c>LogPath.1</c> and
/// opens a new <c>LogPath</c>; the reader keeps its open handle, so it reads the renamed file to its end and then
/// the new one from its start. If the file it reads has been renamed further than <c>.1</c> (the reader fell
/// more than one file behind), compressed or deleted by a rotation, what it has not read is only in files it
/// cannot follow in order: it ends with <see cref="End.FallBack"/>, and the shipper goes on from its cursor with
/// Docker's API, which reads rotated and compressed files itself. With <c>max-file</c> 1 Docker truncates the
/// file in place, and lines written between the reader's last read and the truncation are lost, as they are for
/// <c>docker logs -f</c>. Exit: Docker marks a container stopped only after its log copier has written the
/// last line (<c>Container.Reset</c> waits for it), so once <c>POST /containers/{id}/wait</c> returns, the
/// file is read to its end once more and that is all. A container removed meanwhile is no obstacle: the open
/// handle still reads a deleted file.
/// </remarks>
internal sealed class JsonFileLogReader : IDisposable
{
    private const int BufferBytes = 64 * 1024;
    /// <summary>A json-file record holds at most 16 KiB of output (longer lines are split in partial records), escaped up to 6 bytes a byte.</summary>
    private const int MaxRecordBytes = 1024 * 1024;
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    private readonly IDockerClient _docker;
    private readonly string _dockerId;
    private SafeFileHandle _file;
    private long _position;

    /// <summary>The container's json-file log, as ContainerInspect names it (symbolic links resolved).</summary>
    public string LogPath { get; }

    /// <summary>Whether Docker had rotated the log (<c>LogPath.1</c>, maybe compressed) when it was opened: older lines are not in <see cref="LogPath"/>.</summary>
    public bool HasRotatedFiles { get; }

    /// <summary>How many rotations of Docker's the reader followed from one file to the next.</summary>
    public int Rotations { get; private set; }

    /// <summary>How a read ended: the container stopped and its whole log was read, or the file cannot be followed any more.</summary>
    public enum End { Done, FallBack }

    private JsonFileLogReader(IDockerClient docker, string dockerId, string logPath, SafeFileHandle file)
    {
        (_docker, _dockerId, LogPath, _file) = (docker, dockerId, logPath, file);
        HasRotatedFiles = File.Exists(logPath + ".1") || File.Exists(logPath + ".1.gz");
    }

    /// <summary>
    /// Opens the container's log file, or null when the shipper must read Docker's API instead. The rule: the
    /// container's log driver is <c>json-file</c> (the awslogs containers the worker makes always are), inspect
    /// names its <c>LogPath</c>, this process can open that file for reading (it runs on the engine's host with
    /// the rights to, as root beside a local dockerd), and it can tell which file an open handle is
    /// (<c>/proc/self/fd</c>, Linux), which following a rotation needs. A remote engine (TCP) has no such file
    /// here: its path names a container id that nothing on this host has.
    /// </summary>
    public static async Task<JsonFileLogReader?> TryOpenAsync(IDockerClient docker, string dockerId, CancellationToken cancellationToken)
    {
        var container = await docker.Containers.InspectContainerAsync(dockerId, cancellationToken);
        if (container.HostConfig?.LogConfig?.Type != "json-file" || string.IsNullOrEmpty(container.LogPath)) return null;
        SafeFileHandle file;
        try
        {
            file = File.OpenHandle(container.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // The path as the kernel names the open file (symbolic links resolved), which is what a rotation is told by.
        if (PathOf(file) is not { } path)
        {
            file.Dispose();
            return null;
        }
        return new JsonFileLogReader(docker, dockerId, path, file);
    }

    /// <summary>
    /// Reads the file from its start, then follows it (and its rotations) until the container has stopped and
    /// everything it wrote was read; <paramref name="deliver"/> gets the lines of each read, a new list each time.
    /// Where a fall back starts again is the parser's cursor.
    /// </summary>
    public async Task<End> ReadAsync(JsonFileLogParser parser, Func<List<DockerLogLine>, Task> deliver, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var exited = WaitForExitAsync(stop.Token);
        try
        {
            var buffer = new byte[BufferBytes];
            var filled = 0;
            var lastLook = false;
            while (true)
            {
                var read = RandomAccess.Read(_file, buffer.AsSpan(filled), _position);
                if (read > 0)
                {
                    _position += read;
                    filled += read;
                    var lines = new List<DockerLogLine>();
                    var consumed = parser.Feed(buffer.AsSpan(0, filled), lines);
                    filled -= consumed;
                    if (filled > 0) Buffer.BlockCopy(buffer, consumed, buffer, 0, filled);
                    if (filled == buffer.Length)
                    {
                        // A record longer than the buffer: Docker's are at most ~100 KiB; anything else is no json-file log.
                        if (buffer.Length >= MaxRecordBytes) throw new IOException($"a record of {LogPath} is longer than {MaxRecordBytes} bytes");
                        Array.Resize(ref buffer, buffer.Length * 2);
                    }
                    if (lines.Count > 0) await deliver(lines);
                    continue;
                }
                // At the end of the file read: has Docker moved on to another file?
                switch (Where(exited.IsCompleted))
                {
                    case Place.Truncated:
                        _position = 0;
                        filled = 0;
                        continue;
                    case Place.RotatedOnce:
                        // Docker closed it before renaming it: read it to its end (again: a write may have come between
                        // the last read and the rename), then the new file from its start.
                        if (RandomAccess.GetLength(_file) > _position) continue;
                        switch (Reopen())
                        {
                            case Place.Same:
                                filled = 0;
                                continue;
                            case Place.Lost:
                                return End.FallBack;
                        }
                        // Renamed, the new file not made yet.
                        await Task.Delay(PollInterval / 10, cancellationToken);
                        continue;
                    case Place.Lost:
                        return End.FallBack;
                }
                if (lastLook) return End.Done;
                if (exited.IsCompleted)
                {
                    // Stopped: its log copier had written everything by then. One more read to the end.
                    lastLook = true;
                    continue;
                }
                await Task.WhenAny(exited, Task.Delay(PollInterval, cancellationToken));
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await exited;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private enum Place { Same, Truncated, RotatedOnce, Lost }

    /// <summary>Where the open file is now: still the log, the log truncated in place, renamed once by a rotation, or somewhere this reader cannot follow from.</summary>
    private Place Where(bool exited)
    {
        var path = PathOf(_file);
        if (path == LogPath) return RandomAccess.GetLength(_file) < _position ? Place.Truncated : Place.Same;
        if (path == LogPath + ".1") return Place.RotatedOnce;
        // Deleted: the container was removed (after it stopped: nothing more comes), or a rotation deleted the oldest file.
        if (path == LogPath + " (deleted)" && exited) return Place.Same;
        return Place.Lost;
    }

    /// <summary>
    /// After a rotation: opens the new log file (<see cref="Place.Same"/>), or it is not made yet (<see cref="Place.RotatedOnce"/>).
    /// <see cref="Place.Lost"/> when the file read last was renamed again meanwhile: the file just opened may then be
    /// one after the next.
    /// </summary>
    private Place Reopen()
    {
        SafeFileHandle next;
        try
        {
            next = File.OpenHandle(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return Place.RotatedOnce;
        }
        if (PathOf(_file) != LogPath + ".1")
        {
            next.Dispose();
            return Place.Lost;
        }
        _file.Dispose();
        (_file, _position) = (next, 0);
        Rotations++;
        return Place.Same;
    }

    /// <summary>The path an open file has now (renames included; <c>" (deleted)"</c> appended once unlinked), from <c>/proc/self/fd</c>; null where that does not exist.</summary>
    private static string? PathOf(SafeFileHandle file)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{file.DangerousGetHandle()}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Returns once the container is not running (or is gone). Should the engine's answer break, asks it again every second.</summary>
    private async Task WaitForExitAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _docker.Containers.WaitContainerAsync(_dockerId, cancellationToken);
            return;
        }
        catch (DockerContainerNotFoundException)
        {
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
        }
        while (true)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            try
            {
                var state = await _docker.Containers.InspectContainerAsync(_dockerId, cancellationToken);
                if (state.State?.Running != true) return;
            }
            catch (DockerContainerNotFoundException)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
            }
        }
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>
/// Turns the records of Docker's <c>json-file</c> log (<c>{"log":"text\n","stream":"stdout","time":"2026-12-02T12:00:00.123456789Z"}</c>,
/// one a line) into the same events as <see cref="DockerLogParser"/> makes of the logs API: one per line (the
/// partial records of a line longer than 16 KiB joined), stamped with Docker's time of its first record, empty
/// lines dropped, a line longer than an event cut into several; each with the cursor a resumed read starts
/// again at (the last line's time in nanoseconds and how many lines in a row had it), the same cursor the API
/// reader keeps, so a restarted worker resumes from either.
/// A parser made to resume drops the lines before the cursor (<paramref name="skipNanos"/>) and the first
/// <paramref name="skipCount"/> stamped exactly with it, until the first line after it.
/// </summary>
public sealed class JsonFileLogParser(long skipNanos = 0, int skipCount = 0)
{
    private readonly StringBuilder?[] _partial = new StringBuilder?[3];
    private readonly long[] _partialNanos = new long[3];
    private readonly bool[] _partialSkip = new bool[3];
    private readonly DockerTime _time = new();
    private int _skipped;
    private bool _pastCursor = skipNanos == 0;

    /// <summary>Docker's time (nanoseconds since the epoch) of the last complete line read; 0 before the first.</summary>
    public long LastRecordNanos { get; private set; }

    /// <summary>How many complete lines in a row, up to the last, carried <see cref="LastRecordNanos"/>.</summary>
    public int LastRecordRepeats { get; private set; }

    /// <summary>Records that could not be read (not JSON: a file truncated under the reader).</summary>
    public int Unreadable { get; private set; }

    /// <summary>Parses the whole records (each ending in a newline) at the start of <paramref name="data"/>; returns how many bytes they took.</summary>
    public int Feed(ReadOnlySpan<byte> data, List<DockerLogLine> events)
    {
        var consumed = 0;
        while (data[consumed..].IndexOf((byte)'\n') is var newline and >= 0)
        {
            Record(data.Slice(consumed, newline), events);
            consumed += newline + 1;
        }
        return consumed;
    }

    private void Record(ReadOnlySpan<byte> record, List<DockerLogLine> events)
    {
        // Docker writes its fields in one order, and escapes nothing in most lines: read those in place. Anything
        // else goes through the JSON reader.
        if (record.StartsWith("{\"log\":\""u8) && record.EndsWith("\"}"u8) && record.LastIndexOf(",\"time\":\""u8) is var at and > 0)
        {
            var rest = record[8..];
            var end = rest.IndexOfAny((byte)'"', (byte)'\\');
            var complete = end >= 0 && rest[end] == '\\' && rest[(end + 1)..].StartsWith("n\""u8);
            if (end >= 0 && (complete || rest[end] == '"'))
            {
                var after = rest[(end + (complete ? 3 : 1))..];
                var target = after.StartsWith(",\"stream\":\"stdout\""u8) ? 1 : after.StartsWith(",\"stream\":\"stderr\""u8) ? 2 : 0;
                if (target != 0)
                {
                    var nanos = _time.ParseNanos(record[(at + 9)..^2]);
                    Line(target, nanos, rest[..end], null, complete, events);
                    return;
                }
            }
        }
        string? log = null;
        var stream = 1;
        var time = 0L;
        try
        {
            var reader = new Utf8JsonReader(record);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new JsonException("not an object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("log"u8) && reader.Read()) log = reader.GetString();
                else if (reader.ValueTextEquals("stream"u8) && reader.Read()) stream = reader.ValueTextEquals("stderr"u8) ? 2 : 1;
                else if (reader.ValueTextEquals("time"u8) && reader.Read()) time = _time.ParseNanos(Encoding.ASCII.GetBytes(reader.GetString() ?? ""));
                else if (reader.Read()) reader.Skip();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            Unreadable++;
            return;
        }
        if (log is null) return;
        var whole = log.EndsWith('\n');
        Line(stream, time, default, whole ? log[..^1] : log, whole, events);
    }

    /// <summary>A record's text (<paramref name="raw"/> UTF-8 without escapes, or <paramref name="text"/>): a whole line, or a part of one when not <paramref name="complete"/>.</summary>
    private void Line(int target, long nanos, ReadOnlySpan<byte> raw, string? text, bool complete, List<DockerLogLine> events)
    {
        var partial = _partial[target];
        if (partial is null || partial.Length == 0)
        {
            // A line's first record: its time is the event's, and whether a resumed read skips it.
            _partialNanos[target] = nanos;
            _partialSkip[target] = Skips(nanos);
            if (complete)
            {
                Completed(nanos);
                if (_partialSkip[target]) return;
                if (text is null)
                {
                    if (raw.IndexOfAnyExcept((byte)'\r') < 0) return;
                    if (raw.Length <= DockerLogParser.MaxEventBytes)
                    {
                        events.Add(new(nanos / 1_000_000, Encoding.UTF8.GetString(raw), LastRecordNanos, LastRecordRepeats));
                        return;
                    }
                    text = Encoding.UTF8.GetString(raw);
                }
                foreach (var piece in DockerLogParser.Pieces(text)) events.Add(new(nanos / 1_000_000, piece, LastRecordNanos, LastRecordRepeats));
                return;
            }
        }
        partial = _partial[target] ??= new StringBuilder();
        if (text is null) partial.Append(Encoding.UTF8.GetString(raw));
        else partial.Append(text);
        var first = _partialNanos[target];
        if (complete)
        {
            Completed(first);
            var whole = partial.ToString();
            partial.Clear();
            if (!_partialSkip[target])
                foreach (var piece in DockerLogParser.Pieces(whole)) events.Add(new(first / 1_000_000, piece, LastRecordNanos, LastRecordRepeats));
            return;
        }
        // A line that goes on and on: what fills whole events goes out now (memory stays bounded), the rest waits.
        if (partial.Length * 3 < DockerLogParser.MaxEventBytes) return;
        var pieces = DockerLogParser.Pieces(partial.ToString()).ToList();
        partial.Clear().Append(pieces[^1]);
        if (_partialSkip[target]) return;
        foreach (var piece in pieces.Take(pieces.Count - 1)) events.Add(new(first / 1_000_000, piece, LastRecordNanos, LastRecordRepeats));
    }

    private bool Skips(long nanos)
    {
        if (_pastCursor || nanos == 0) return false;
        if (nanos < skipNanos) return true;
        if (nanos == skipNanos && _skipped < skipCount)
        {
            _skipped++;
            return true;
        }
        _pastCursor = true;
        return false;
    }

    private void Completed(long nanos)
    {
        LastRecordRepeats = nanos == LastRecordNanos ? LastRecordRepeats + 1 : 1;
        LastRecordNanos = nanos;
    }
}

/// <summary>Docker's RFC 3339 times with nanoseconds (as its logs API and json-file write them), in nanoseconds since the epoch, parsing each second once.</summary>
internal sealed class DockerTime
{
    private byte[] _second = [];
    private long _secondNanos;

    /// <summary>The time in nanoseconds since the epoch; 0 when it is not one.</summary>
    public long ParseNanos(ReadOnlySpan<byte> header)
    {
        var dot = header.IndexOf((byte)'.');
        var seconds = dot > 0 ? header[..dot] : header.TrimEnd((byte)'Z');
        // Consecutive lines mostly share their second: parse it once.
        if (!seconds.SequenceEqual(_second))
        {
            var text = Encoding.ASCII.GetString(seconds) + "Z";
            if (!DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var time)) return 0;
            _second = seconds.ToArray();
            _secondNanos = time.ToUnixTimeSeconds() * 1_000_000_000;
        }
        var nanos = 0L;
        if (dot > 0)
        {
            var digits = 0;
            for (var i = dot + 1; i < header.Length && digits < 9 && header[i] is >= (byte)'0' and <= (byte)'9'; i++, digits++)
                nanos = nanos * 10 + (header[i] - '0');
            for (; digits < 9; digits++) nanos *= 10;
        }
        return _secondNanos + nanos;
    }
}
