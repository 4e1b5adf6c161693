using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Capacity;
using Serverless.Core.Storage;

namespace Serverless.Worker.Pool;

/// <summary>Settings of the pool agent (section <c>Pool</c>, app settings <c>Pool__*</c>).</summary>
public sealed class PoolOptions
{
    /// <summary>The pool's name: the Auto Scaling group name in the capacity provider's <c>autoScalingGroupArn</c>.</summary>
    public string? Name { get; set; }
    public int MinSize { get; set; }
    public int MaxSize { get; set; } = 4;
    /// <summary>Where each worker gets its state directory (<c>&lt;dir&gt;/&lt;instance id&gt;</c>) and its log.</summary>
    public string StateDirectory { get; set; } = Path.Combine(Path.GetTempPath(), "ecs-pool");
    public double PollSeconds { get; set; } = 2;
}

/// <summary>
/// The pool agent: what an Auto Scaling group is to ECS, on this machine. It owns the pool's row
/// (<see cref="WorkerPoolStore"/>): it writes the sizes it allows, starts worker processes (each its
/// own container instance, <c>Worker__InstanceId</c> chosen here so it knows which is which) until
/// it runs the desired number, stops the workers managed scaling names for termination (it never
/// picks one itself, so an instance with tasks is never terminated behind managed termination
/// protection's back), replaces a worker that died, and reports the ids it runs. Workers inherit
/// the agent's environment (<c>Worker__Cluster</c>, <c>Worker__CapacityProvider</c>, storage...).
/// On shutdown it stops its workers.
/// </summary>
public sealed class PoolAgent(PoolOptions options, WorkerOptions worker, WorkerPoolStore pools, ILogger<PoolAgent> logger) : BackgroundService
{
    private readonly Dictionary<string, Process> _workers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _terminated = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var name = options.Name!;
        logger.LogInformation("Pool agent for {Pool}: {Min}..{Max} workers of cluster {Cluster}, capacity provider {CapacityProvider}",
            name, options.MinSize, options.MaxSize, worker.Cluster, worker.CapacityProvider);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await ConvergeAsync(name, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning("Pool {Pool}: {Error}", name, e.Message);
                }
                await Task.Delay(TimeSpan.FromSeconds(options.PollSeconds), stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            foreach (var id in _workers.Keys.ToList()) await StopAsync(id);
            try
            {
                await pools.UpdateAsync(name, p => p with { Running = [] }, CancellationToken.None);
            }
            catch (Exception e)
            {
                logger.LogWarning("Pool {Pool}: could not report its workers stopped: {Error}", name, e.Message);
            }
        }
    }

    private async Task ConvergeAsync(string name, CancellationToken cancellationToken)
    {
        // The agent owns the sizes and the workers' shape; managed scaling owns the desired size.
        var pool = await pools.UpdateAsync(name, p =>
            p.MinSize == options.MinSize && p.MaxSize == options.MaxSize && p.InstanceCpu == (worker.Cpu ?? 0) && p.InstanceMemory == (worker.MemoryMiB ?? 0)
                ? null
                : p with
                {
                    MinSize = options.MinSize,
                    MaxSize = options.MaxSize,
                    DesiredCapacity = Math.Clamp(p.DesiredCapacity, options.MinSize, options.MaxSize),
                    InstanceCpu = worker.Cpu ?? 0,
                    InstanceMemory = worker.MemoryMiB ?? 0,
                },
            cancellationToken,
            () => new WorkerPoolRecord { Name = name, MinSize = options.MinSize, MaxSize = options.MaxSize, DesiredCapacity = options.MinSize });

        foreach (var (id, process) in _workers.ToList())
        {
            if (!process.HasExited) continue;
            logger.LogWarning("Pool {Pool}: worker {InstanceId} exited ({ExitCode})", name, id, process.ExitCode);
            _workers.Remove(id);
            process.Dispose();
        }
        foreach (var id in pool!.Terminate.Where(_workers.ContainsKey).ToList())
        {
            await StopAsync(id);
            _terminated.Add(id);
            logger.LogInformation("Pool {Pool}: terminated worker {InstanceId} (scale-in)", name, id);
        }
        // A worker named for termination is not replaced; the desired size already went down.
        var missing = Math.Min(pool.DesiredCapacity, options.MaxSize) - _workers.Count;
        for (var i = 0; i < missing; i++) Start(name);

        var running = _workers.Keys.Order(StringComparer.Ordinal).ToList();
        if (!running.SequenceEqual(pool.Running))
            await pools.UpdateAsync(name, p => p.Running.SequenceEqual(running) ? null : p with { Running = running }, cancellationToken);
    }

    private void Start(string pool)
    {
        var id = Guid.NewGuid().ToString("N");
        var directory = Path.Combine(options.StateDirectory, id);
        Directory.CreateDirectory(directory);
        var entry = Environment.GetCommandLineArgs()[0];
        var start = new ProcessStartInfo("/bin/sh")
        {
            ArgumentList = { "-c", "exec \"$0\" \"$1\" >>\"$2\" 2>&1", Environment.ProcessPath!, entry, Path.Combine(directory, "worker.log") },
            UseShellExecute = false,
        };
        // The worker is this program without Pool__Name: the same settings, its own identity and state.
        start.Environment.Remove("Pool__Name");
        start.Environment["Worker__InstanceId"] = id;
        start.Environment["Worker__StateDirectory"] = directory;
        _workers[id] = Process.Start(start)!;
        logger.LogInformation("Pool {Pool}: started worker {InstanceId} (pid {Pid})", pool, id, _workers[id].Id);
    }

    private async Task StopAsync(string id)
    {
        if (!_workers.Remove(id, out var process)) return;
        try
        {
            if (!process.HasExited)
            {
                // SIGTERM: the worker shuts down as on a host's shutdown.
                using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                try
                {
                    await process.WaitForExitAsync(timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill();
                }
            }
        }
        finally
        {
            process.Dispose();
        }
    }
}

public static class PoolServices
{
    /// <summary>The pool agent mode of the worker program (<c>Pool__Name</c> set): no worker of its own, only the pool.</summary>
    public static IServiceCollection AddPoolAgent(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new PoolOptions();
        configuration.GetSection("Pool").Bind(options);
        var worker = new WorkerOptions();
        configuration.GetSection("Worker").Bind(worker);
        var ecs = new EcsOptions();
        configuration.GetSection("Ecs").Bind(ecs);
        services.AddSingleton(options);
        services.AddSingleton(worker);
        services.AddSingleton(ecs);
        services.AddSingleton<Arns>();
        services.AddSingleton(StorageAccess.From(configuration).CreateClients(ecs));
        services.AddSingleton<WorkerPoolStore>();
        services.AddHostedService<PoolAgent>();
        return services;
    }
}
