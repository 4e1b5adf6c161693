using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Worker.Docker;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Docker;

/// <summary>How Docker's event stream is read: each event as soon as its line has arrived.</summary>
public sealed class DockerEventWatcherTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    [Fact]
    public async Task An_event_is_handed_on_as_soon_as_its_line_arrives_not_when_the_next_one_does()
    {
        // A worker deaf to the real engine's events, running a task; its die comes from a second,
        // loopback engine that serves /events as dockerd does (one chunk per event) and then says
        // nothing more. Docker.DotNet's own reader kept such an event (over about 1 KB, as one
        // with a task's labels is) until the next one, which here never comes.
        await using var worker = await WorkerHarness.StartAsync(fixture, output, watchEvents: false);
        var definition = await worker.RegisterAsync("""
            {"family": "events", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"]}]}
            """);
        var start = worker.StartCommand(definition);
        await worker.Runner.StartAsync(start, redelivered: false, worker.Stopping);
        var running = await fixture.Events.WaitForStatusAsync(start.TaskArn, "RUNNING", worker.Stopping);
        var dockerId = running.Containers.Single().RuntimeId!;

        await using var engine = new LoopbackEventsEngine();
        using var docker = new DockerClientConfiguration(engine.Uri).CreateClient();
        // No resync: only the event itself can tell the worker.
        var options = new WorkerOptions { Cluster = worker.Options.Cluster, InstanceId = worker.Identity.InstanceId, ContainerResyncSeconds = 0 };
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(worker.Stopping);
        var watcher = new DockerEventWatcher(docker, worker.Runner, worker.Identity, options, TimeProvider.System, NullLogger<DockerEventWatcher>.Instance);
        var watch = watcher.RunAsync(watching.Token);

        await engine.SendAsync(new Message
        {
            Status = "die",
            ID = dockerId,
            Type = "container",
            Action = "die",
            Actor = new Actor
            {
                ID = dockerId,
                Attributes = new Dictionary<string, string>
                {
                    [DockerLabels.TaskArn] = start.TaskArn,
                    [DockerLabels.ContainerName] = "app",
                    [DockerLabels.InstanceId] = worker.Identity.InstanceId,
                    ["exitCode"] = "7",
                    ["note"] = new string('x', 1200),
                },
            },
            Time = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            TimeNano = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000,
        }, worker.Stopping);

        var stopped = await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping, TimeSpan.FromSeconds(45));
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        Assert.Equal(7, stopped.Containers.Single().ExitCode);
        await worker.WaitUntilRemovedAsync(start.TaskArn);

        // The watcher ends when asked, its read of the silent stream with it.
        await watching.CancelAsync();
        await watch.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Lines_are_events_however_the_stream_splits_or_joins_them()
    {
        var pipe = new Pipe();
        var events = new List<Message>();
        var malformed = new List<string>();
        var reading = DockerEventLines.ReadAsync(pipe.Reader.AsStream(), events.Add, malformed.Add, CancellationToken.None);
        var first = DockerEventLines.Line(new Message { Type = "container", Action = "start", Actor = new Actor { ID = "a", Attributes = new Dictionary<string, string> { ["k"] = "v" } }, TimeNano = 5 });
        var second = DockerEventLines.Line(new Message { Type = "container", Action = "die", Actor = new Actor { ID = "b" }, Time = 1 });

        // The first line in two pieces, then the second with a line that is not an event in one write.
        await pipe.Writer.WriteAsync(first.AsMemory(0, 10));
        await pipe.Writer.WriteAsync(first.AsMemory(10));
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes("not json\r\n").Concat(second).ToArray());
        await pipe.Writer.CompleteAsync();
        await reading.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(["start", "die"], events.Select(e => e.Action));
        Assert.Equal("v", events[0].Actor.Attributes["k"]);
        Assert.Equal(5, events[0].TimeNano);
        Assert.Equal("b", events[1].Actor.ID);
        Assert.Equal(["not json\r"], malformed);
    }

    [Fact]
    public async Task Cancelling_ends_a_read_of_a_stream_that_says_nothing()
    {
        var pipe = new Pipe();
        using var cancel = new CancellationTokenSource();
        var reading = DockerEventLines.ReadAsync(new UncancellableStream(pipe.Reader), _ => { }, _ => { }, cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    /// <summary>A stream whose reads ignore their token (ended only by its disposal, as a socket's read is by closing it).</summary>
    private sealed class UncancellableStream(PipeReader reader) : Stream
    {
        private readonly Stream inner = reader.AsStream();

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, CancellationToken.None);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, CancellationToken.None);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) reader.CancelPendingRead();
            base.Dispose(disposing);
        }
    }

    /// <summary>
    /// An engine on loopback TCP that answers one <c>GET /events</c> as dockerd does: chunked, one
    /// chunk per event, the connection held open.
    /// </summary>
    private sealed class LoopbackEventsEngine : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Task<NetworkStream> _subscribed;
        private TcpClient? _client;

        public LoopbackEventsEngine()
        {
            _listener.Start();
            _subscribed = AcceptAsync();
        }

        public Uri Uri => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

        private async Task<NetworkStream> AcceptAsync()
        {
            _client = await _listener.AcceptTcpClientAsync();
            var stream = _client.GetStream();
            var request = new StringBuilder();
            var buffer = new byte[4096];
            // Docker.DotNet ends its header lines with a bare LF; the blank line ends the request.
            while (!request.ToString().Contains("\n\r\n", StringComparison.Ordinal) && !request.ToString().Contains("\n\n", StringComparison.Ordinal))
            {
                var read = await stream.ReadAsync(buffer);
                if (read == 0) throw new IOException("The client left before its request ended");
                request.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
            Assert.Contains("/events", request.ToString().Split('\n')[0], StringComparison.Ordinal);
            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"u8.ToArray());
            return stream;
        }

        public async Task SendAsync(Message message, CancellationToken cancellationToken)
        {
            var stream = await _subscribed.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
            var line = DockerEventLines.Line(message);
            var chunk = Encoding.ASCII.GetBytes($"{line.Length:x}\r\n").Concat(line).Concat("\r\n"u8.ToArray()).ToArray();
            await stream.WriteAsync(chunk, cancellationToken);
            await stream.FlushAsync(cancellationToken);
        }

        public ValueTask DisposeAsync()
        {
            _client?.Dispose();
            _listener.Stop();
            return ValueTask.CompletedTask;
        }
    }
}
