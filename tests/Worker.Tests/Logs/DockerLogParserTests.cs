using System.Text;
using Serverless.Worker.Logs;

namespace Serverless.Worker.Tests.Logs;

public sealed class DockerLogParserTests
{
    [Fact]
    public void Lines_split_across_reads_come_out_whole_with_Dockers_time_in_milliseconds()
    {
        var parser = new DockerLogParser();
        var first = parser.Feed(1, Encoding.UTF8.GetBytes("2026-12-02T12:00:00.123456789Z hel"));
        var rest = parser.Feed(1, Encoding.UTF8.GetBytes("lo\n2026-12-02T12:00:01.5Z \n2026-12-02T12:00:02.000000000Z bye\n"));

        Assert.Empty(first);
        var expected = new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        Assert.Equal([(expected + 123, "hello"), (expected + 2000, "bye")], rest.Select(e => (e.Timestamp, e.Message)));
    }

    [Fact]
    public void A_parser_resuming_at_the_last_record_seen_skips_exactly_the_records_already_read()
    {
        // Docker's `since` keeps records at or after it: a second read starts again at the last record seen.
        var first = new DockerLogParser();
        var seen = first.Feed(1, "2026-12-02T12:00:00.1Z a\n2026-12-02T12:00:00.123456789Z b\n2026-12-02T12:00:00.123456789Z c\n2026-12-02T12:00:00.123456789Z d"u8);
        Assert.Equal(["a", "b", "c"], seen.Select(e => e.Message));
        var second = 1_796_212_800_000_000_000L + 123_456_789;
        Assert.Equal(second, first.LastRecordNanos);
        Assert.Equal(2, first.LastRecordRepeats);
        Assert.Equal("1796212800.123456789", DockerLogParser.Since(first.LastRecordNanos));

        var resumed = new DockerLogParser(first.LastRecordNanos, first.LastRecordRepeats);
        var rest = resumed.Feed(1, "2026-12-02T12:00:00.123456789Z b\n2026-12-02T12:00:00.123456789Z c\n2026-12-02T12:00:00.123456789Z d\n2026-12-02T12:00:01Z e\n"u8);

        Assert.Equal(["d", "e"], rest.Select(e => e.Message));
        Assert.Equal(second / 1_000_000, rest[0].Timestamp);
        Assert.Equal(1_796_212_801_000_000_000L, resumed.LastRecordNanos);
        Assert.Equal(1, resumed.LastRecordRepeats);
    }

    [Fact]
    public void A_cursor_stored_mid_millisecond_resumes_at_the_next_line_of_that_millisecond()
    {
        // Four lines Docker stamped within one millisecond; the batch stored last ended after the second.
        const string log = "2026-12-02T12:00:00.123000001Z a\n2026-12-02T12:00:00.123000002Z b\n2026-12-02T12:00:00.123000003Z c\n2026-12-02T12:00:00.123000004Z d\n";
        var lines = new DockerLogParser().Feed(1, Encoding.UTF8.GetBytes(log));
        Assert.Equal(["a", "b", "c", "d"], lines.Select(l => l.Message));
        Assert.All(lines, l => Assert.Equal(lines[0].Timestamp, l.Timestamp));
        var cursor = DockerLogParser.Cursor(lines[1].Nanos, lines[1].Repeats);

        Assert.True(DockerLogParser.TryParseCursor(cursor, out var nanos, out var repeats));
        Assert.Equal(1_796_212_800_123_000_002L, nanos);
        // Docker's `since` (that nanosecond) starts the read again at b: only c and d are new, though they share a's and b's millisecond.
        var since = Encoding.UTF8.GetBytes(log[log.IndexOf("2026-12-02T12:00:00.123000002Z", StringComparison.Ordinal)..]);
        Assert.Equal(["c", "d"], new DockerLogParser(nanos, repeats).Feed(1, since).Select(l => l.Message));
        Assert.False(DockerLogParser.TryParseCursor("12", out _, out _));
        Assert.False(DockerLogParser.TryParseCursor(null, out _, out _));
    }

    [Fact]
    public void A_parser_reading_the_logs_tail_drops_what_Dockers_since_would_and_says_where_the_tail_starts()
    {
        var seen = new DockerLogParser().Feed(1, "2026-12-02T12:00:00.1Z a\n2026-12-02T12:00:00.2Z b\n2026-12-02T12:00:00.2Z c\n"u8);
        var last = seen[^1];

        var tail = new DockerLogParser(last.Nanos, last.Repeats, dropBefore: true);
        var rest = tail.Feed(1, "2026-12-02T12:00:00.1Z a\n2026-12-02T12:00:00.2Z b\n2026-12-02T12:00:00.2Z c\n2026-12-02T12:00:00.3Z d\n"u8);

        Assert.Equal(["d"], rest.Select(e => e.Message));
        Assert.Equal(1_796_212_800_100_000_000L, tail.FirstRecordNanos);
        Assert.True(tail.FirstRecordNanos < last.Nanos);
    }

    [Fact]
    public void Records_split_over_reads_and_a_piece_of_a_long_line_carry_where_a_resumed_read_starts()
    {
        var parser = new DockerLogParser();
        var events = new List<DockerLogLine>();
        parser.Feed(1, "2026-12-02T12:00:00.000000001Z fir"u8, events);
        parser.Feed(1, "st\n2026-12-02T12:00:00.000000002Z "u8, events);
        parser.Feed(1, Enumerable.Repeat((byte)'x', DockerLogParser.MaxEventBytes + 10).ToArray(), events);
        // The long line's first piece went out before its record ended: a read resumed after it starts at that record again.
        Assert.Equal(2, events.Count);
        Assert.Equal(("first", 1_796_212_800_000_000_001L, 1), (events[0].Message, events[0].Nanos, events[0].Repeats));
        Assert.Equal((DockerLogParser.MaxEventBytes, 1_796_212_800_000_000_001L), (events[1].Message.Length, events[1].Nanos));
        parser.Feed(1, "\n"u8, events);
        Assert.Equal(("xxxxxxxxxx", 1_796_212_800_000_000_002L), (events[2].Message, events[2].Nanos));
    }

    [Fact]
    public void Stdout_and_stderr_are_assembled_apart()
    {
        var parser = new DockerLogParser();
        Assert.Empty(parser.Feed(1, "2026-12-02T12:00:00.000Z out"u8));
        Assert.Equal("err", Assert.Single(parser.Feed(2, "2026-12-02T12:00:00.001Z err\n"u8)).Message);
        Assert.Equal("out", Assert.Single(parser.Feed(1, "\n"u8)).Message);
    }

    [Fact]
    public void A_huge_line_of_binary_garbage_becomes_events_CloudWatch_Logs_takes()
    {
        var parser = new DockerLogParser();
        var garbage = new byte[3 * 1024 * 1024];
        new Random(7).NextBytes(garbage);
        for (var i = 0; i < garbage.Length; i++) if (garbage[i] == (byte)'\n') garbage[i] = 0xFF;

        var events = parser.Feed(1, "2026-12-02T12:00:00.000Z "u8).Concat(parser.Feed(1, garbage)).Concat(parser.Feed(1, "\n"u8)).ToList();

        Assert.True(events.Count >= 12);
        Assert.All(events, e => Assert.InRange(Encoding.UTF8.GetByteCount(e.Message), 1, DockerLogParser.MaxEventBytes));
    }

    [Fact]
    public void A_datetime_format_becomes_the_pattern_that_starts_an_event()
    {
        var regex = new System.Text.RegularExpressions.Regex("^" + AwsLogsConfig.DatetimeRegex("%Y-%m-%d %H:%M:%S"));
        Assert.Matches(regex, "2026-12-02 12:00:00 started");
        Assert.DoesNotMatch(regex, "  at frame");
    }
}
