using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Logs;

namespace Serverless.Worker.Logs;

/// <summary>
/// The <c>awslogs</c> driver, done by the worker: for each container labelled with <see cref="AwsLogsConfig"/>,
/// follows the container's output (its json-file log read from the file on the engine's host,
/// <see cref="JsonFileLogReader"/>, or else Docker's logs API) and puts the lines into the CloudWatch Logs stream ECS names, in batches
/// (what arrived within about a second, at most 10,000 events or 1 MiB: one storage write per batch, the
/// group and stream rows being read again only every <see cref="LogIngest.RowsMaxAge"/>). Each batch is
/// stored with its cursor (<see cref="DockerLogParser.Cursor"/>: where in Docker's log it ends), so a restarted
/// worker resumes exactly after the last line stored: nothing is shipped twice or skipped. A container this
/// worker made and prepared has stored nothing yet: it needs no such check. Storage being unreachable only
/// delays a batch, which is retried until it is stored (Docker keeps the output meanwhile).
/// <see cref="DrainAsync"/> waits until a stopped container's last line is stored, before the container is removed.
/// </summary>
public sealed class AwsLogsShipper(IDockerClient docker, LogIngest ingest, LogEventStore events, TimeProvider time, ILogger<AwsLogsShipper> logger)
{
    private const int MaxBatchEvents = 10_000;
    private const int TailRecords = 1_000;
    private static readonly TimeSpan BatchWindow = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, Task> _shipping = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, LogIngest.Writer> _prepared = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _readFrom = new(StringComparer.Ordinal);
    private DockerLogReader? _reader;

    private DockerLogReader Reader => _reader ??= new DockerLogReader(docker);

    /// <summary>
    /// Before an awslogs container starts: makes its stream (and group, with <c>awslogs-create-group</c>), and
    /// keeps the rows for its shipping. Returns why it cannot, in the Docker driver's words, or null (also for
    /// containers without awslogs).
    /// </summary>
    public async Task<string?> PrepareAsync(string dockerId, IDictionary<string, string>? labels, CancellationToken cancellationToken)
    {
        if (AwsLogsConfig.FromLabels(labels) is not { } config) return null;
        try
        {
            _prepared[dockerId] = await ingest.EnsureStreamAsync(config.Group, config.StreamFor(dockerId), config.CreateGroup, cancellationToken);
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var error = e is EcsException aws ? $"{aws.ErrorType}: {aws.Message}" : e.Message;
            return $"failed to initialize logging driver: failed to create Cloudwatch log stream: {error}";
        }
    }

    /// <summary>Starts shipping a container's output if its labels ask for awslogs; a second call for the same container does nothing.</summary>
    public void Follow(string dockerId, IDictionary<string, string>? labels, bool tty, CancellationToken stopping)
    {
        if (AwsLogsConfig.FromLabels(labels) is not { } config) return;
        _shipping.GetOrAdd(dockerId, id => Task.Run(async () =>
        {
            try
            {
                await ShipAsync(id, config, tty, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Worker shutdown: the next worker resumes after the last stored event.
            }
            catch (Exception e)
            {
                logger.LogError(e, "Shipping the output of container {DockerId} to {LogGroup} failed", id, config.Group);
            }
        }, CancellationToken.None));
    }

    /// <summary>Waits (at most <paramref name="timeout"/>) until the output of these containers, which have stopped, is stored.</summary>
    public async Task DrainAsync(IEnumerable<string> dockerIds, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var pending = dockerIds.Select(id => _shipping.TryGetValue(id, out var task) ? task : null).OfType<Task>().ToList();
        try
        {
            await Task.WhenAll(pending).WaitAsync(timeout, time, cancellationToken);
        }
        catch (TimeoutException)
        {
            logger.LogWarning("Log shipping of {Count} container(s) did not finish within {Timeout}; removing them anyway", pending.Count(t => !t.IsCompleted), timeout);
        }
        foreach (var id in dockerIds)
        {
            _shipping.TryRemove(id, out _);
            _prepared.TryRemove(id, out _);
        }
    }

    /// <summary>Where reading Docker's log starts: after a cursor (exact), after a time (all lines up to that millisecond were shipped), or at the start.</summary>
    private readonly record struct Resume(long Nanos, int Repeats, long? AfterMilliseconds);

    private async Task ShipAsync(string dockerId, AwsLogsConfig config, bool tty, CancellationToken cancellationToken)
    {
        var streamName = config.StreamFor(dockerId);
        Resume resume = default;
        if (!_prepared.TryRemove(dockerId, out var writer))
        {
            // Adopted after a restart (or never prepared): continue after what an earlier worker stored.
            writer = new LogIngest.Writer(config.Group, streamName);
            try
            {
                resume = await RetryAsync(() => ResumeAsync(writer, cancellationToken), "read the last shipped event", cancellationToken);
            }
            catch (ResourceNotFoundException)
            {
                // Gone since it was made, or never made for an adopted container.
                writer = await RetryAsync(() => ingest.EnsureStreamAsync(config.Group, streamName, config.CreateGroup, cancellationToken), $"create {config.Group} {streamName}", cancellationToken);
            }
        }

        // Lists of lines as read (one per read of Docker's answer): bounded, so a container printing faster than
        // storage takes it waits in Docker's log, not in the worker's memory.
        var lines = Channel.CreateBounded<List<DockerLogLine>>(new BoundedChannelOptions(128) { SingleReader = true, SingleWriter = true });
        var reading = ReadAsync(dockerId, tty, resume, lines.Writer, cancellationToken);
        await SendAsync(lines.Reader, config, writer, cancellationToken);
        await reading;
        logger.LogInformation("Shipped the output of container {DockerId} to {LogGroup} {LogStream} (Docker's log read {How})",
            dockerId, config.Group, streamName, _readFrom.TryRemove(dockerId, out var how) ? how : "not at all");
    }

    /// <summary>Where the stream's shipping stopped: the cursor stored last, or (for events stored without one) the newest event's time. Leaves the rows read in the writer.</summary>
    private async Task<Resume> ResumeAsync(LogIngest.Writer writer, CancellationToken cancellationToken)
    {
        var stream = await ingest.OpenAsync(writer, cancellationToken);
        if (DockerLogParser.TryParseCursor(await events.LastCursorAsync(stream, cancellationToken), out var nanos, out var repeats))
            return new Resume(nanos, repeats, null);
        await foreach (var e in events.ReadBackwardAsync(stream, 0, long.MaxValue / 2, null, cancellationToken)) return new Resume(0, 0, e.Timestamp);
        return default;
    }

    private async Task ReadAsync(string dockerId, bool tty, Resume resume, ChannelWriter<List<DockerLogLine>> lines, CancellationToken cancellationToken)
    {
        try
        {
            var (lastNanos, repeats) = (resume.Nanos, resume.Repeats);
            string? since = lastNanos != 0 ? DockerLogParser.Since(lastNanos)
                : resume.AfterMilliseconds is { } ms ? DockerLogParser.Since(ms * 1_000_000) : null;
            async Task Deliver(List<DockerLogLine> batch)
            {
                // Without a cursor: lines up to the last stored event's millisecond were shipped by an earlier worker.
                if (resume.AfterMilliseconds is { } last) batch.RemoveAll(l => l.Timestamp <= last);
                if (batch.Count > 0) await lines.WriteAsync(batch, cancellationToken);
            }
            // Docker's json-file on this host: read it directly, sparing dockerd the serving of every line.
            using (var file = await JsonFileLogReader.TryOpenAsync(docker, dockerId, cancellationToken))
            {
                if (file is not null)
                {
                    if (file.HasRotatedFiles)
                    {
                        // Lines before the current file may be in rotated (maybe compressed) files: Docker's API reads
                        // those. The file was opened first, so a rotation meanwhile is followed from it; what both read
                        // is skipped by the cursor.
                        var catchUp = new DockerLogParser(lastNanos, repeats);
                        await Reader.ReadAsync(dockerId, tty, follow: false, since, catchUp, Deliver, cancellationToken);
                        if (catchUp.LastRecordNanos != 0) (lastNanos, repeats) = (catchUp.LastRecordNanos, catchUp.LastRecordRepeats);
                    }
                    var fileParser = lastNanos != 0 ? new JsonFileLogParser(lastNanos, repeats)
                        : resume.AfterMilliseconds is { } after ? new JsonFileLogParser(after * 1_000_000) : new JsonFileLogParser();
                    var end = await file.ReadAsync(fileParser, Deliver, cancellationToken);
                    if (fileParser.Unreadable > 0)
                        logger.LogWarning("{Count} record(s) of {LogPath} could not be read (truncated under the reader?)", fileParser.Unreadable, file.LogPath);
                    if (end == JsonFileLogReader.End.Done)
                    {
                        _readFrom[dockerId] = "from its json-file";
                        lines.Complete();
                        return;
                    }
                    if (fileParser.LastRecordNanos != 0) (lastNanos, repeats) = (fileParser.LastRecordNanos, fileParser.LastRecordRepeats);
                    if (lastNanos != 0) since = DockerLogParser.Since(lastNanos);
                    logger.LogWarning("The json-file log of container {DockerId} rotated out of reach of its reader; reading on through Docker's API", dockerId);
                }
            }
            _readFrom[dockerId] = Reader.Direct ? "through Docker's API" : "through Docker.DotNet";
            var parser = new DockerLogParser(lastNanos, repeats);
            var follow = true;
            while (true)
            {
                await Reader.ReadAsync(dockerId, tty, follow, since, parser, Deliver, cancellationToken);
                if (!follow) break;
                // A follow ends when the container stops, but Docker (20.10's json-file reader at least) may end
                // it before the last lines it stored: read again from the last line seen, without follow, to the
                // end (or follow again if the container still runs: the stream ended for another reason).
                var state = await docker.Containers.InspectContainerAsync(dockerId, cancellationToken);
                follow = state.State?.Running == true;
                if (parser.LastRecordNanos != 0) (lastNanos, repeats) = (parser.LastRecordNanos, parser.LastRecordRepeats);
                if (lastNanos != 0) since = DockerLogParser.Since(lastNanos);
                if (!follow && lastNanos != 0 && await ReadTailAsync(dockerId, tty, lastNanos, repeats, Deliver, cancellationToken)) break;
                parser = new DockerLogParser(lastNanos, repeats);
            }
            lines.Complete();
        }
        catch (DockerContainerNotFoundException e)
        {
            lines.Complete();
            logger.LogWarning("Container {DockerId} was gone before its output was read: {Error}", dockerId, e.Message);
        }
        catch (Exception e)
        {
            lines.Complete(e);
            throw;
        }
    }

    /// <summary>
    /// The rest of a stopped container's log after the record seen last, from the log's last records: Docker's
    /// json-file reader finds a <c>since</c> by reading the file from its start (half a second of dockerd's CPU
    /// for 100,000 lines), a <c>tail</c> from its end. False (nothing delivered) when those records do not reach
    /// back before the one seen last: a read from <c>since</c> must do.
    /// </summary>
    private async Task<bool> ReadTailAsync(string dockerId, bool tty, long lastNanos, int repeats, Func<List<DockerLogLine>, Task> deliver, CancellationToken cancellationToken)
    {
        var parser = new DockerLogParser(lastNanos, repeats, dropBefore: true);
        // Known from the first record on, before any line is delivered.
        bool Reaches() => parser.FirstRecordNanos != 0 && parser.FirstRecordNanos < lastNanos;
        await Reader.ReadAsync(dockerId, tty, follow: false, since: null, parser, read => Reaches() ? deliver(read) : Task.CompletedTask,
            cancellationToken, tail: TailRecords);
        return Reaches();
    }

    private async Task SendAsync(ChannelReader<List<DockerLogLine>> lines, AwsLogsConfig config, LogIngest.Writer writer, CancellationToken cancellationToken)
    {
        var streamName = writer.StreamName;
        var multiline = config.MultilinePattern is { } pattern ? new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100)) : null;
        // The open multi-line event: its time, text so far and its last line's position in Docker's log.
        (long Timestamp, StringBuilder Text, long Nanos, int Repeats)? open = null;
        List<DockerLogLine>? read = null;
        var at = 0;
        DockerLogLine? carried = null;
        var done = false;
        var putting = Task.CompletedTask;
        while (!done || carried is not null)
        {
            var batch = new List<(long Timestamp, string Message)>();
            long bytes = 0;
            (long Nanos, int Repeats) cursor = default;
            var full = false;
            // Adds an event unless the batch has no room for it (it then starts the next batch).
            bool Add(DockerLogLine e)
            {
                var size = Encoding.UTF8.GetByteCount(e.Message) + LogEventRules.EventOverheadBytes;
                if (batch.Count > 0 && (batch.Count >= MaxBatchEvents || bytes + size > LogEventRules.MaxBatchBytes))
                {
                    carried = e;
                    full = true;
                    return false;
                }
                batch.Add((e.Timestamp, e.Message));
                bytes += size;
                cursor = (e.Nanos, e.Repeats);
                return true;
            }
            if (carried is { } first)
            {
                carried = null;
                Add(first);
            }

            // A batch's window starts at its first line: wait for one (nothing is open or left over).
            if (batch.Count == 0 && open is null && (read is null || at >= read.Count) && !done && !await lines.WaitToReadAsync(cancellationToken))
                done = true;
            var idle = done;
            var deadline = time.GetUtcNow() + BatchWindow;
            while (!full && !done)
            {
                while (!full && (read is not null && at < read.Count || lines.TryRead(out read) && (at = 0) == 0))
                {
                    var line = read![at++];
                    if (multiline is null)
                    {
                        if (!Add(line)) break;
                        continue;
                    }
                    // A line that matches the pattern starts an event; the others belong to the open one.
                    if (open is { } current && !multiline.IsMatch(line.Message) && current.Text.Length + line.Message.Length < DockerLogParser.MaxEventBytes / 3)
                    {
                        current.Text.Append('\n').Append(line.Message);
                        open = (current.Timestamp, current.Text, line.Nanos, line.Repeats);
                        continue;
                    }
                    var finished = open;
                    open = (line.Timestamp, new StringBuilder(line.Message), line.Nanos, line.Repeats);
                    if (finished is { } f && !Add(new DockerLogLine(f.Timestamp, f.Text.ToString(), f.Nanos, f.Repeats))) break;
                }
                if (read is not null && at >= read.Count) read = null;
                var remaining = deadline - time.GetUtcNow();
                if (full || remaining <= TimeSpan.Zero) break;
                using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                window.CancelAfter(remaining);
                try
                {
                    if (!await lines.WaitToReadAsync(window.Token)) done = idle = true;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    idle = true;
                    break;
                }
            }
            // An open multi-line event goes out once no line came for a whole window (or the output ended).
            if (idle && !full && open is { } last)
            {
                open = null;
                Add(new DockerLogLine(last.Timestamp, last.Text.ToString(), last.Nanos, last.Repeats));   // or carried to the next batch
            }
            if (batch.Count == 0) continue;
            // stdout and stderr interleave: PutLogEvents wants time order (a stable sort keeps each one's order).
            var ordered = IsOrdered(batch) ? batch : batch.OrderBy(e => e.Timestamp).ToList();
            var position = DockerLogParser.Cursor(cursor.Nanos, cursor.Repeats);
            // One put at a time, in order (a batch's cursor says all before it is stored), but the next batch is
            // gathered while this one is put.
            await putting;
            putting = RetryAsync(async () =>
            {
                try
                {
                    await ingest.PutAsync(writer, ordered, cancellationToken, cursor.Nanos != 0 ? position : null);
                }
                catch (InvalidParameterException e)
                {
                    logger.LogError("Dropped {Count} log event(s) of {LogStream} that CloudWatch Logs refuses: {Reason}", ordered.Count, streamName, e.Message);
                }
                return true;
            }, $"put {ordered.Count} event(s) into {streamName}", cancellationToken);
        }
        await putting;
        if (open is { } tail)
        {
            var position = tail.Nanos != 0 ? DockerLogParser.Cursor(tail.Nanos, tail.Repeats) : null;
            await RetryAsync(async () => await ingest.PutAsync(writer, [(tail.Timestamp, tail.Text.ToString())], cancellationToken, position), "put the last event", cancellationToken);
        }
    }

    private static bool IsOrdered(List<(long Timestamp, string Message)> batch)
    {
        for (var i = 1; i < batch.Count; i++) if (batch[i].Timestamp < batch[i - 1].Timestamp) return false;
        return true;
    }

    private Task RetryAsync(Func<Task> call, string what, CancellationToken cancellationToken)
        => RetryAsync(async () => { await call(); return true; }, what, cancellationToken);

    /// <summary>Retries a storage call until it succeeds (storage may be briefly unreachable), with a growing pause.</summary>
    private async Task<T> RetryAsync<T>(Func<Task<T>> call, string what, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(500);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (e is not OperationCanceledException && e is not ResourceNotFoundException)
            {
                logger.LogWarning("Could not {What}, retrying in {Delay}: {Error}", what, delay, e.Message);
                await Task.Delay(delay, time, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
            }
        }
    }
}
