using System.Globalization;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Worker.Registration;

namespace Serverless.Worker.Docker;

/// <summary>
/// Follows Docker's event stream for this instance's containers and hands each event to the
/// <see cref="TaskRunner"/>: container state comes from events, never from polling container lists.
/// Each connection asks for events <c>since</c> the last one seen (the first, since just before the
/// watcher started), so nothing falls between a reconnect and the live stream; after a reconnect
/// one list of the instance's containers catches anything older than Docker's event buffer. A
/// restarted engine starts a new buffer, so an event it dropped while going down is in neither: the
/// same list, read every <see cref="WorkerOptions.ContainerResyncSeconds"/>, bounds how long such a
/// loss can go unseen.
/// </summary>
public sealed class DockerEventWatcher(
    IDockerClient docker, TaskRunner runner, WorkerIdentity identity, WorkerOptions options, TimeProvider time, ILogger<DockerEventWatcher> logger)
{
    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(5);

    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the first subscription was answered (events since just before the watcher started are delivered).</summary>
    public Task Started => _connected.Task;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var resync = ResyncAsync(cancellationToken);
        await FollowAsync(cancellationToken);
        await resync;
    }

    private async Task ResyncAsync(CancellationToken cancellationToken)
    {
        if (options.ContainerResyncSeconds <= 0) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.ContainerResyncSeconds), time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    await runner.ReconcileAsync(cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The engine is away; the stream's reconnect reconciles when it is back.
                    logger.LogDebug("Reading this instance's containers failed: {Error}", e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task FollowAsync(CancellationToken cancellationToken)
    {
        // A second of overlap: events are idempotent, a missed one is not.
        var since = time.GetUtcNow() - TimeSpan.FromSeconds(1);
        var reconnecting = false;
        var delay = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested)
        {
            var connectedAt = time.GetUtcNow();
            try
            {
                var parameters = new ContainerEventsParameters
                {
                    Since = UnixTime(since),
                    Filters = new Dictionary<string, IDictionary<string, bool>>
                    {
                        ["type"] = new Dictionary<string, bool> { ["container"] = true },
                        ["label"] = new Dictionary<string, bool> { [$"{DockerLabels.InstanceId}={identity.InstanceId}"] = true },
                        ["event"] = new Dictionary<string, bool> { ["start"] = true, ["die"] = true, ["oom"] = true, ["destroy"] = true, ["health_status"] = true },
                    },
                };
                // Docker.DotNet makes the request (socket, API version, filters); the stream is read
                // here, each event handed on as soon as its line arrives (DockerEventLines says why).
#pragma warning disable CS0618 // the stream form is the one whose reading is ours
                var stream = await docker.System.MonitorEventsAsync(parameters, cancellationToken);
#pragma warning restore CS0618
                await using var subscribed = stream;
                _connected.TrySetResult();
                var reading = DockerEventLines.ReadAsync(stream, message =>
                {
                    if (message.TimeNano > 0) since = DateTimeOffset.UnixEpoch.AddTicks(message.TimeNano / 100);
                    try
                    {
                        runner.OnDockerEvent(message);
                    }
                    catch (Exception e)
                    {
                        logger.LogError(e, "Handling Docker event {Action} of {DockerId} failed", message.Action, message.Actor?.ID);
                    }
                }, line => logger.LogWarning("Ignored a Docker event line that is not an event: {Line}", line), cancellationToken);
                // Observed however the reconcile below ends (a failure of its own leaves the read to the stream's disposal).
                _ = reading.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                if (reconnecting)
                {
                    logger.LogInformation("Docker event stream reconnected; reconciling this instance's containers");
                    await runner.ReconcileAsync(cancellationToken);
                }
                await reading;
                logger.LogWarning("Docker event stream ended");
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Docker event stream failed: {Error}", e.Message);
            }

            reconnecting = true;
            if (time.GetUtcNow() - connectedAt > TimeSpan.FromSeconds(30)) delay = TimeSpan.FromMilliseconds(200);
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxReconnectDelay.Ticks));
        }
    }

    /// <summary>Docker's <c>since</c>: Unix seconds with nanoseconds.</summary>
    public static string UnixTime(DateTimeOffset at)
    {
        var ticks = (at - DateTimeOffset.UnixEpoch).Ticks;
        return string.Create(CultureInfo.InvariantCulture, $"{ticks / TimeSpan.TicksPerSecond}.{ticks % TimeSpan.TicksPerSecond * 100:D9}");
    }
}
