using Docker.DotNet;
using Docker.DotNet.Models;
using Serverless.Worker.Logs;
using Serverless.Worker.Tests.Infrastructure;

namespace Serverless.Worker.Tests.Logs;

/// <summary>
/// Reading a container's json-file log from its file, with real Docker: Docker's rotation followed, the log read to
/// its end after the container exits, and a read resumed from a cursor, each without a line lost or repeated.
/// The containers print in bursts the test releases (a file in a mounted folder), so a rotation never outruns the
/// reader however slow the machine is.
/// </summary>
public sealed class JsonFileLogReaderTests : IAsyncLifetime
{
    private readonly IDockerClient _docker = DockerEngine.CreateClient();
    private readonly string _signals = Directory.CreateTempSubdirectory("jsonfile-log-").FullName;
    private readonly List<string> _containers = [];
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(90));

    public Task InitializeAsync() => DockerEngine.EnsureReadyAsync(_docker);

    public async Task DisposeAsync()
    {
        foreach (var id in _containers)
        {
            try
            {
                await _docker.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true });
            }
            catch (DockerContainerNotFoundException)
            {
            }
        }
        Directory.Delete(_signals, recursive: true);
        _docker.Dispose();
        _timeout.Dispose();
    }

    /// <summary>A container that prints <paramref name="perBurst"/> numbered lines each time the test releases a burst (<see cref="Release"/>), <paramref name="bursts"/> times, then exits.</summary>
    private async Task<string> StartAsync(int bursts, int perBurst, Dictionary<string, string>? logOptions = null)
    {
        var script = $"i=0; b=1; while [ $b -le {bursts} ]; do while [ ! -f /sig/$b ]; do sleep 0.02; done; "
            + $"j=0; while [ $j -lt {perBurst} ]; do echo line-$i; i=$((i+1)); j=$((j+1)); done; b=$((b+1)); done";
        var created = await _docker.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = DockerEngine.Busybox,
            Cmd = ["sh", "-c", script],
            Labels = new Dictionary<string, string> { [DockerEngine.TestLabel] = "true" },
            HostConfig = new HostConfig
            {
                NetworkMode = "none",
                Binds = [$"{_signals}:/sig:ro"],
                LogConfig = new LogConfig { Type = "json-file", Config = logOptions ?? new Dictionary<string, string>() },
            },
        }, _timeout.Token);
        _containers.Add(created.ID);
        await _docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), _timeout.Token);
        return created.ID;
    }

    private void Release(int burst) => File.WriteAllText(Path.Combine(_signals, burst.ToString(System.Globalization.CultureInfo.InvariantCulture)), "");

    /// <summary>Collects what a reader delivers; <see cref="WaitForAsync"/> waits until it has at least so many lines.</summary>
    private sealed class Collected
    {
        private readonly object _gate = new();
        public List<DockerLogLine> Lines { get; } = [];

        public Task Deliver(List<DockerLogLine> lines)
        {
            lock (_gate) Lines.AddRange(lines);
            return Task.CompletedTask;
        }

        public int Count
        {
            get { lock (_gate) return Lines.Count; }
        }

        public async Task WaitForAsync(int count, CancellationToken cancellationToken)
        {
            while (Count < count) await Task.Delay(20, cancellationToken);
        }
    }

    private static IEnumerable<string> Numbered(int from, int count) => Enumerable.Range(from, count).Select(i => $"line-{i}");

    [Fact]
    public async Task Dockers_rotations_are_followed_without_a_line_lost_or_repeated()
    {
        // About 78 bytes a record, 60 records a burst: at most one rotation within a burst.
        var id = await StartAsync(bursts: 8, perBurst: 60, new Dictionary<string, string> { ["max-size"] = "6k", ["max-file"] = "4" });
        using var reader = await JsonFileLogReader.TryOpenAsync(_docker, id, _timeout.Token);
        Assert.NotNull(reader);
        Assert.False(reader.HasRotatedFiles);
        var collected = new Collected();
        var reading = reader.ReadAsync(new JsonFileLogParser(), collected.Deliver, _timeout.Token);
        for (var burst = 1; burst <= 8; burst++)
        {
            Release(burst);
            await collected.WaitForAsync(burst * 60, _timeout.Token);
        }

        Assert.Equal(JsonFileLogReader.End.Done, await reading);
        Assert.Equal(Numbered(0, 480), collected.Lines.Select(l => l.Message));
        Assert.True(reader.Rotations >= 3, $"Docker rotated the log {reader.Rotations} time(s) under the reader");
    }

    [Fact]
    public async Task A_reader_left_several_rotations_behind_hands_over_to_Dockers_API_at_its_cursor()
    {
        // About 25 records a file: 150 lines make six files, and the reader's file ends up as LogPath.5.
        var id = await StartAsync(bursts: 1, perBurst: 150, new Dictionary<string, string> { ["max-size"] = "2k", ["max-file"] = "10" });
        using var reader = await JsonFileLogReader.TryOpenAsync(_docker, id, _timeout.Token);
        Assert.NotNull(reader);
        Release(1);
        await _docker.Containers.WaitContainerAsync(id, _timeout.Token);
        var fromFile = new Collected();
        var parser = new JsonFileLogParser();

        Assert.Equal(JsonFileLogReader.End.FallBack, await reader.ReadAsync(parser, fromFile.Deliver, _timeout.Token));
        Assert.InRange(fromFile.Count, 1, 149);
        // What the shipper does then: Docker's API from the cursor on.
        var fromApi = new Collected();
        await new DockerLogReader(_docker).ReadAsync(id, tty: false, follow: false, DockerLogParser.Since(parser.LastRecordNanos),
            new DockerLogParser(parser.LastRecordNanos, parser.LastRecordRepeats), fromApi.Deliver, _timeout.Token);
        Assert.Equal(Numbered(0, 150), fromFile.Lines.Concat(fromApi.Lines).Select(l => l.Message));
    }

    [Fact]
    public async Task After_the_container_exits_its_log_is_read_to_the_end()
    {
        var id = await StartAsync(bursts: 1, perBurst: 20_000);
        using var reader = await JsonFileLogReader.TryOpenAsync(_docker, id, _timeout.Token);
        Assert.NotNull(reader);
        var collected = new Collected();
        var reading = reader.ReadAsync(new JsonFileLogParser(), collected.Deliver, _timeout.Token);
        Release(1);

        Assert.Equal(JsonFileLogReader.End.Done, await reading);
        Assert.Equal(Numbered(0, 20_000), collected.Lines.Select(l => l.Message));
        var ended = await _docker.Containers.InspectContainerAsync(id, _timeout.Token);
        Assert.False(ended.State.Running);
    }

    [Fact]
    public async Task A_read_resumed_from_the_cursor_of_the_last_line_shipped_goes_on_right_after_it()
    {
        var id = await StartAsync(bursts: 3, perBurst: 500);
        var first = new Collected();
        using (var stopping = CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token))
        using (var reader = await JsonFileLogReader.TryOpenAsync(_docker, id, _timeout.Token))
        {
            Assert.NotNull(reader);
            var reading = reader.ReadAsync(new JsonFileLogParser(), first.Deliver, stopping.Token);
            Release(1);
            await first.WaitForAsync(500, _timeout.Token);
            // The worker stops: what it read of the second burst is what its last batch stored.
            Release(2);
            await first.WaitForAsync(501, _timeout.Token);
            await stopping.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
        }
        var shipped = first.Lines.Take(first.Count).ToList();
        var cursor = shipped[^1];

        using var again = await JsonFileLogReader.TryOpenAsync(_docker, id, _timeout.Token);
        Assert.NotNull(again);
        var second = new Collected();
        var resumed = again.ReadAsync(new JsonFileLogParser(cursor.Nanos, cursor.Repeats), second.Deliver, _timeout.Token);
        Release(3);

        Assert.Equal(JsonFileLogReader.End.Done, await resumed);
        Assert.Equal(Numbered(0, 1_500), shipped.Concat(second.Lines).Select(l => l.Message));
    }

    [Fact]
    public void Records_are_read_whole_escaped_partial_and_split_over_reads()
    {
        var parser = new JsonFileLogParser();
        var events = new List<DockerLogLine>();
        var text = "{\"log\":\"plain\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-02T12:00:00.000000001Z\"}\n"
            + "{\"log\":\"say \\\"hi\\\" \\u003cb\\u003e\\tx\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-02T12:00:00.5Z\"}\n"
            + "{\"log\":\"first half \",\"stream\":\"stdout\",\"time\":\"2026-12-02T12:00:01.000000000Z\"}\n"
            + "{\"log\":\"\\r\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-02T12:00:01.100000000Z\"}\n"
            + "{\"log\":\"second half\\n\",\"stream\":\"stdout\",\"attrs\":{\"a\":\"b\"},\"time\":\"2026-12-02T12:00:01.200000000Z\"}\n"
            + "{\"log\":\"cut";
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        var consumed = parser.Feed(bytes.AsSpan(0, 40), events);
        Assert.Equal(0, consumed);
        consumed = parser.Feed(bytes, events);
        Assert.Equal(text.LastIndexOf('\n') + 1, consumed);

        var start = DateTimeOffset.Parse("2026-12-02T12:00:00Z").ToUnixTimeMilliseconds();
        Assert.Equal(
            [(start, "plain"), (start + 500, "say \"hi\" <b>\tx"), (start + 1000, "first half second half")],
            events.Select(e => (e.Timestamp, e.Message)));
        // The cursor of the joined line is its first record's time: a resumed read starts again at that record.
        Assert.Equal(start * 1_000_000 + 1_000_000_000, events[^1].Nanos);
        Assert.Equal(0, parser.Unreadable);
    }
}
