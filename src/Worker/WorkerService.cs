using Docker.DotNet;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core.Storage;
using Serverless.Worker.Commands;
using Serverless.Worker.Docker;
using Serverless.Worker.Registration;
using Serverless.Worker.Reporting;

namespace Serverless.Worker;

/// <summary>
/// The worker's life, in the ECS agent's order: wait for Docker, follow its events, register the
/// host, restore the tasks from before a restart, then heartbeat and take commands until stopped.
/// Stopping the worker leaves the containers running; the next start adopts them.
/// </summary>
public sealed class WorkerService(
    IDockerClient docker,
    DockerEventWatcher events,
    InstanceRegistration registration,
    TaskAdoption adoption,
    TaskStateReporter reporter,
    Heartbeat heartbeat,
    CommandLoop commands,
    QueueWake wake,
    WorkerOptions options,
    WorkerIdentity identity,
    TimeProvider time,
    ILogger<WorkerService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        logger.LogInformation("Worker {ContainerInstanceArn} starting", identity.ContainerInstanceArn);
        await RetryAsync("reach Docker", ct => docker.System.PingAsync(ct), stoppingToken);

        var watching = events.RunAsync(stoppingToken);
        await events.Started.WaitAsync(stoppingToken);

        // Before registering, so the registration carries the endpoint. Without it commands are still found by polling.
        wake.Listen(options.WakePort, options.WakeAddress);
        await RetryAsync("register", registration.RegisterAsync, stoppingToken, fatal: e => e is InvalidOperationException);
        await RetryAsync("open the task-events queue", reporter.OpenAsync, stoppingToken);
        await RetryAsync("adopt the tasks from before this start", adoption.RunAsync, stoppingToken);

        logger.LogInformation("Worker {ContainerInstanceArn} ready", identity.ContainerInstanceArn);
        using var running = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var loops = new[] { watching, heartbeat.RunAsync(running.Token), commands.RunAsync(running.Token) };
        var ended = await Task.WhenAny(loops);
        if (ended.IsFaulted)
        {
            // A loop that fails for good (the heartbeat found another worker on this instance) ends
            // the worker: the others stop taking commands first, then the failure stops the host.
            await running.CancelAsync();
            await ended;
        }
        await Task.WhenAll(loops);
    }

    /// <summary>Stops the loops, then gives the instance up so the next start of this worker registers at once.</summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await registration.ReleaseAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Could not give up {ContainerInstanceArn}: {Error}; the next start waits for its heartbeat to lapse", identity.ContainerInstanceArn, e.Message);
        }
    }

    private async Task RetryAsync(string what, Func<CancellationToken, Task> action, CancellationToken cancellationToken, Func<Exception, bool>? fatal = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await action(cancellationToken);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException && fatal?.Invoke(e) != true)
            {
                var delay = TimeSpan.FromSeconds(Math.Min(30, attempt * 2));
                logger.LogWarning("Could not {What} (attempt {Attempt}): {Error}; retrying in {Delay}", what, attempt, e.Message, delay);
                await Task.Delay(delay, time, cancellationToken);
            }
        }
    }
}
