using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Serverless.Worker.Logs;

/// <summary>
/// Reads a container's log from the Docker Engine API (<c>GET /containers/{id}/logs</c> with timestamps) and
/// hands the lines parsed from each read on. Docker sends every line as its own HTTP chunk of its own frame;
/// Docker.DotNet reads that through a 1 KiB buffer with two line reads (a <see cref="System.Text.StringBuilder"/>
/// each) per chunk and two reads per frame, which cost more than everything else the worker does for a line.
/// So for an engine reached over a Unix socket or plain TCP this reader makes the request itself with .NET's
/// own HTTP client (whose chunked decoding copies many chunks per read) and takes Docker's frames apart from
/// 64 KiB reads; other engines (TLS, the simulated one) are read through Docker.DotNet.
/// </summary>
internal sealed class DockerLogReader
{
    private const int BufferBytes = 64 * 1024;

    private readonly IDockerClient _docker;
    private readonly HttpClient? _http;

    /// <summary>Whether the log is read with .NET's own HTTP client (else through Docker.DotNet).</summary>
    public bool Direct => _http is not null;

    public DockerLogReader(IDockerClient docker)
    {
        _docker = docker;
        _http = CreateClient(docker);
    }

    /// <summary>
    /// Reads the log (following it while the container runs when <paramref name="follow"/>) from <paramref name="since"/>
    /// (Docker's <c>seconds.nanoseconds</c>), or only its last <paramref name="tail"/> records; <paramref name="deliver"/>
    /// gets the lines of each read, a new list each time. DockerContainerNotFoundException when the container is gone.
    /// </summary>
    public async Task ReadAsync(string dockerId, bool tty, bool follow, string? since, DockerLogParser parser,
        Func<List<DockerLogLine>, Task> deliver, CancellationToken cancellationToken, int? tail = null)
    {
        if (_http is null)
        {
            await ReadWithDockerDotNetAsync(dockerId, tty, follow, since, tail, parser, deliver, cancellationToken);
            return;
        }
        var path = $"containers/{Uri.EscapeDataString(dockerId)}/logs?stdout=1&stderr=1&timestamps=1&follow={(follow ? 1 : 0)}"
            + (since is null ? "" : "&since=" + since) + (tail is { } last ? "&tail=" + last : "");
        using var response = await _http.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.StatusCode == HttpStatusCode.NotFound) throw new DockerContainerNotFoundException(response.StatusCode, body);
            throw new DockerApiException(response.StatusCode, body);
        }
        // A TTY container's log is raw, any other's multiplexed (whatever Content-Type an engine sends: 20.10 none,
        // later ones raw-stream for either when an API version before 1.42 is asked for).
        var multiplexed = !tty;
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[BufferBytes];
        var filled = 0;
        var (target, remaining) = (1, 0);
        var lines = new List<DockerLogLine>();
        while (true)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            if (read == 0) break;
            filled += read;
            var at = 0;
            if (!multiplexed)
            {
                parser.Feed(1, buffer.AsSpan(0, filled), lines);
                at = filled;
            }
            while (multiplexed && at < filled)
            {
                if (remaining == 0)
                {
                    // A frame: [stream, 0, 0, 0, size (big-endian uint32)] then size bytes of that output.
                    if (filled - at < 8) break;
                    target = buffer[at];
                    if (target > 2) throw new IOException($"unknown stream type {target} in the log of {dockerId}");
                    remaining = BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(at + 4));
                    at += 8;
                    continue;
                }
                var take = Math.Min(remaining, filled - at);
                parser.Feed(target, buffer.AsSpan(at, take), lines);
                at += take;
                remaining -= take;
            }
            // What is left is the start of a frame header: keep it at the front.
            filled -= at;
            if (filled > 0) Buffer.BlockCopy(buffer, at, buffer, 0, filled);
            if (lines.Count == 0) continue;
            await deliver(lines);
            lines = [];
        }
    }

    private async Task ReadWithDockerDotNetAsync(string dockerId, bool tty, bool follow, string? since, int? tail, DockerLogParser parser,
        Func<List<DockerLogLine>, Task> deliver, CancellationToken cancellationToken)
    {
        var parameters = new ContainerLogsParameters
        {
            ShowStdout = true, ShowStderr = true, Follow = follow, Timestamps = true, Since = since, Tail = tail?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        using var stream = await _docker.Containers.GetContainerLogsAsync(dockerId, tty, parameters, cancellationToken);
        var buffer = new byte[BufferBytes];
        while (true)
        {
            var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, cancellationToken);
            if (read.EOF) break;
            var lines = new List<DockerLogLine>();
            parser.Feed((int)read.Target, buffer.AsSpan(0, read.Count), lines);
            if (lines.Count > 0) await deliver(lines);
        }
    }

    /// <summary>An HTTP client for the engine's API when it is reached over a Unix socket or plain TCP; null otherwise.</summary>
    private static HttpClient? CreateClient(IDockerClient docker)
    {
        if (docker is not DockerClient real || real.Configuration.Credentials.IsTlsCredentials()) return null;
        var endpoint = real.Configuration.EndpointBaseUri;
        var handler = new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30) };
        Uri address;
        switch (endpoint.Scheme)
        {
            case "unix":
                var socketPath = endpoint.LocalPath;
                handler.ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                };
                address = new Uri("http://docker/");
                break;
            case "tcp" or "http":
                address = new UriBuilder("http", endpoint.Host, endpoint.Port).Uri;
                break;
            default:
                handler.Dispose();
                return null;
        }
        return new HttpClient(handler) { BaseAddress = address, Timeout = Timeout.InfiniteTimeSpan };
    }
}
