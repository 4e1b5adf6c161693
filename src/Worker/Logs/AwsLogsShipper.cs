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
/// follows Docker's logs API and puts the lines into the CloudWatch Logs stream ECS names, in batches
/// (what arrived within about a second, at most 10,000 events or 1 MiB: one storage write per batch, the
/// group and stream rows being read again only every <see cref="LogIngest.RowsMaxAge"/> or after the stream
/// row changed). A restarted worker resumes after the last event the stream holds, so nothing is shipped twice
/// or skipped; storage being unreachable only delays a batch, which is retried until it is stored (Docker
/// keeps the output meanwhile). <see cref="DrainAsync"/> waits until a stopped container's last line is
/// stored, before the container is removed.
/// </summary>
public sealed class AwsLogsShipper(IDockerClient docker, LogIngest ingest, LogEventStore events, TimeProvider time, ILogger<AwsLogsShipper> logger)
{
    private const int MaxBatchEvents = 10_000;
    private static readonly TimeSpan BatchWindow = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, Task> _shipping = new(StringComparer.Ordinal);

    /// <summary>
    /// Before an awslogs container starts: makes its stream (and group, with <c>awslogs-create-group</c>).
    /// Returns why it cannot, in the Docker driver's words, or null (also for containers without awslogs).
    /// </summary>
    public async Task<string?> PrepareAsync(string dockerId, IDictionary<string, string>? labels, CancellationToken cancellationToken)
    {
        if (AwsLogsConfig.FromLabels(labels) is not { } config) return null;
        try
        {
            await ingest.EnsureStreamAsync(config.Group, config.StreamFor(dockerId), config.CreateGroup, cancellationToken);
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
        foreach (var id in dockerIds) _shipping.TryRemove(id, out _);
    }

    private async Task ShipAsync(string dockerId, AwsLogsConfig config, bool tty, CancellationToken cancellationToken)
    {
        var streamName = config.StreamFor(dockerId);
        var writer = new LogIngest.Writer(config.Group, streamName);
        long? after;
        try
        {
            after = await RetryAsync(() => LastStoredAsync(writer, cancellationToken), "read the last shipped event", cancellationToken);
        }
        catch (ResourceNotFoundException)
        {
            // Normally made before the container started (PrepareAsync); gone since, or never made for an adopted container.
            await RetryAsync(() => ingest.EnsureStreamAsync(config.Group, streamName, config.CreateGroup, cancellationToken), $"create {config.Group} {streamName}", cancellationToken);
            after = null;
        }

        var lines = Channel.CreateBounded<(long Timestamp, string Message)>(new BoundedChannelOptions(MaxBatchEvents * 4) { SingleReader = true, SingleWriter = true });
        var reading = ReadAsync(dockerId, tty, after, lines.Writer, cancellationToken);
        await SendAsync(lines.Reader, config, writer, cancellationToken);
        await reading;
        logger.LogInformation("Shipped the output of container {DockerId} to {LogGroup} {LogStream}", dockerId, config.Group, streamName);
    }

    /// <summary>The newest stored event's time: lines up to it were shipped before (by an earlier worker). Leaves the rows read in the writer.</summary>
    private async Task<long?> LastStoredAsync(LogIngest.Writer writer, CancellationToken cancellationToken)
    {
        var stream = await ingest.OpenAsync(writer, cancellationToken);
        await foreach (var e in events.ReadBackwardAsync(stream, 0, long.MaxValue / 2, null, cancellationToken)) return e.Timestamp;
        return null;
    }

    private async Task ReadAsync(string dockerId, bool tty, long? after, ChannelWriter<(long, string)> lines, CancellationToken cancellationToken)
    {
        try
        {
            string? since = after is { } ms ? DockerLogParser.Since(ms * 1_000_000) : null;
            var parser = new DockerLogParser();
            var follow = true;
            var (lastNanos, repeats) = (0L, 0);
            while (true)
            {
                await ReadOnceAsync(dockerId, tty, follow, since, parser, after, lines, cancellationToken);
                if (!follow) break;
                // A follow ends when the container stops, but Docker (20.10's json-file reader at least) may end
                // it before the last lines it stored: read again from the last line seen, without follow, to the
                // end (or follow again if the container still runs: the stream ended for another reason).
                var state = await docker.Containers.InspectContainerAsync(dockerId, cancellationToken);
                follow = state.State?.Running == true;
                if (parser.LastRecordNanos != 0) (lastNanos, repeats) = (parser.LastRecordNanos, parser.LastRecordRepeats);
                if (lastNanos != 0) since = DockerLogParser.Since(lastNanos);
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

    private async Task ReadOnceAsync(string dockerId, bool tty, bool follow, string? since, DockerLogParser parser, long? after,
        ChannelWriter<(long, string)> lines, CancellationToken cancellationToken)
    {
        var parameters = new ContainerLogsParameters { ShowStdout = true, ShowStderr = true, Follow = follow, Timestamps = true, Since = since };
        using var stream = await docker.Containers.GetContainerLogsAsync(dockerId, tty, parameters, cancellationToken);
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, cancellationToken);
            if (read.EOF) break;
            foreach (var line in parser.Feed((int)read.Target, buffer.AsSpan(0, read.Count)))
            {
                // Lines at or before the last stored event's millisecond were shipped by an earlier worker.
                if (after is { } last && line.Timestamp <= last) continue;
                await lines.WriteAsync(line, cancellationToken);
            }
        }
    }

    private async Task SendAsync(ChannelReader<(long Timestamp, string Message)> lines, AwsLogsConfig config, LogIngest.Writer writer, CancellationToken cancellationToken)
    {
        var streamName = writer.StreamName;
        var multiline = config.MultilinePattern is { } pattern ? new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100)) : null;
        (long Timestamp, StringBuilder Text)? open = null;
        while (await lines.WaitToReadAsync(cancellationToken))
        {
            var batch = new List<(long Timestamp, string Message)>();
            long bytes = 0;
            var idle = false;
            void Add((long Timestamp, string Message) e)
            {
                batch.Add(e);
                bytes += Encoding.UTF8.GetByteCount(e.Message) + LogEventRules.EventOverheadBytes;
            }
            bool Full() => batch.Count >= MaxBatchEvents - 1 || bytes >= LogEventRules.MaxBatchBytes - LogEventRules.MaxEventBytes;

            var deadline = time.GetUtcNow() + BatchWindow;
            while (!Full())
            {
                while (!Full() && lines.TryRead(out var line))
                {
                    if (multiline is null) { Add(line); continue; }
                    // A line that matches the pattern starts an event; the others belong to the open one.
                    if (open is { } current && !multiline.IsMatch(line.Message) && current.Text.Length + line.Message.Length < DockerLogParser.MaxEventBytes / 3)
                    {
                        current.Text.Append('\n').Append(line.Message);
                        continue;
                    }
                    if (open is { } done) Add((done.Timestamp, done.Text.ToString()));
                    open = (line.Timestamp, new StringBuilder(line.Message));
                }
                var remaining = deadline - time.GetUtcNow();
                if (Full() || remaining <= TimeSpan.Zero) break;
                using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                window.CancelAfter(remaining);
                try
                {
                    if (!await lines.WaitToReadAsync(window.Token)) { idle = true; break; }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    idle = true;
                    break;
                }
            }
            // An open multi-line event goes out once no line came for a whole window (or the output ended).
            if (idle && open is { } last)
            {
                Add((last.Timestamp, last.Text.ToString()));
                open = null;
            }
            if (batch.Count == 0) continue;
            // stdout and stderr interleave: PutLogEvents wants time order (a stable sort keeps each one's order).
            var ordered = batch.OrderBy(e => e.Timestamp).ToList();
            await RetryAsync(async () =>
            {
                try
                {
                    await ingest.PutAsync(writer, ordered, cancellationToken);
                }
                catch (InvalidParameterException e)
                {
                    logger.LogError("Dropped {Count} log event(s) of {LogStream} that CloudWatch Logs refuses: {Reason}", ordered.Count, streamName, e.Message);
                }
                return true;
            }, $"put {ordered.Count} event(s) into {streamName}", cancellationToken);
        }
        if (open is { } tail) await RetryAsync(async () => await ingest.PutAsync(writer, [(tail.Timestamp, tail.Text.ToString())], cancellationToken), "put the last event", cancellationToken);
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
