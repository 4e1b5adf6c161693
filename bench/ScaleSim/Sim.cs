using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Worker;
using Serverless.Worker.Docker;
using Serverless.Worker.Simulation;

namespace Serverless.ScaleSim;

public static class Sim
{
    public const string AccessKeyId = "AKIALOCALDEVELOPMENT";
    public const string SecretAccessKey = "local-development-secret-key-not-for-production";
    public const string Region = "us-east-1";
    public const string AccountName = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// <summary>
    /// What the simulated workers change from the defaults, so that 1,000 of them fit one process and
    /// one Azurite on two cores: slower idle loops (heartbeat every 120 s, the command queue's
    /// lost-wake poll every 120 s, metrics), no metadata endpoint. The lost-wake poll must stay well
    /// inside the control plane's 5-minute start deadline: a Start handed back after a lapsed lease is
    /// found only by that poll (at 300 s, such tasks were stopped as never acknowledged). 1,000 workers at the earlier 60 s
    /// heartbeat and 60 s poll made ~45 storage requests a second while idle, about half of what the
    /// one Azurite of the run could serve on this machine. Work still reaches a worker at once: the
    /// control plane's wake (UDP, on loopback) ends its poll's wait.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> WorkerSettings = new Dictionary<string, string>
    {
        ["Worker__Engine"] = "simulated",
        ["Worker__SimulatedStartMilliseconds"] = "200",
        ["Worker__HeartbeatSeconds"] = "120",
        ["Worker__CommandPollMaxDelayMilliseconds"] = "30000",
        ["Worker__WakeFallbackPollSeconds"] = "120",
        ["Worker__MetricsSampleSeconds"] = "60",
        ["Worker__MetricsPeriodSeconds"] = "300",
        ["Worker__ContainerResyncSeconds"] = "120",
        ["Worker__MetadataPort"] = "-1",
        ["Worker__Cpu"] = "4096",
        ["Worker__MemoryMiB"] = "4096",
    };

    /// <summary>The control plane's settings for the run; its own resync and health sweep timers are off (the probe runs them, counted).</summary>
    public static readonly IReadOnlyDictionary<string, string> ControlPlaneSettings = new Dictionary<string, string>
    {
        ["Ecs__AgentHeartbeatSeconds"] = "120",
        ["Ecs__AgentDisconnectedAfterSeconds"] = "360",
        ["Ecs__AgentLostAfterSeconds"] = "900",
        ["AzureWebJobs.ServiceResync.Disabled"] = "true",
        ["AzureWebJobs.InstanceHealthSweep.Disabled"] = "true",
        ["Logging__LogLevel__Default"] = "Warning",
    };
}

public sealed record SimSettings(
    int Instances, int Tasks, int Operations, int IdleSeconds, int FillMinutes, bool Seed, Uri AzuriteTables, Uri AzuriteQueues, string FunctionsAssembly, string Out, int ApiPort,
    IReadOnlyList<(string Name, int Pid)> Azurite, string LogDirectory)
{
    // "<pid>" (one Azurite) or "<tables pid>,<queues pid>" (azurite-table and azurite-queue apart).
    private static IReadOnlyList<(string Name, int Pid)> AzuriteProcesses(string pids)
    {
        var list = pids.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToList();
        return list.Count == 2 ? [("azurite tables", list[0]), ("azurite queues", list[1])] : list.Select(p => ("azurite", p)).ToList();
    }

    public static SimSettings Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i + 1 < args.Length; i += 2) values[args[i].TrimStart('-')] = args[i + 1];
        string Get(string name, string? fallback = null) => values.TryGetValue(name, out var v) ? v : fallback ?? throw new ArgumentException($"--{name} is required");
        int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        return new SimSettings(
            Int("instances", 10), Int("tasks", 100), Int("operations", 50), Int("idle", 60), Int("fill-minutes", 60), Get("seed", "0") == "1",
            new Uri(Get("azurite-tables")), new Uri(Get("azurite-queues")), Get("functions"), Get("out", "."), Int("port", 7199),
            AzuriteProcesses(Get("azurite-pid", "")), Get("log-dir", "."));
    }
}

/// <summary>Many workers in this process: each its own service graph (identity, engine, command queue, loops).</summary>
public sealed class Workers(string cluster, string storage)
{
    private readonly List<(int Index, ServiceProvider Provider, List<IHostedService> Hosted, SimulatedEngine Engine)> _workers = [];
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];

    // One logger factory for every worker: a console logger per worker would be a console queue and
    // its thread per worker (1,000 threads at 1,000 instances) for the same console.
    private readonly ILoggerFactory _logging = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));

    // The engines of workers stopped by StopAsync(keepEngines: true), by worker number: their hosts, which outlive them.
    private readonly Dictionary<int, SimulatedEngine> _stoppedEngines = [];

    /// <summary>Containers running on every host, those of workers stopped with their engines kept included.</summary>
    public int Running
    {
        get
        {
            List<SimulatedEngine> stopped;
            lock (_workers) stopped = [.. _stoppedEngines.Values];
            return Snapshot().Sum(w => w.Engine.Running) + stopped.Sum(e => e.Running);
        }
    }

    /// <summary>The container instance id of worker <paramref name="index"/> (the same at every start of it).</summary>
    public string InstanceId(int index) => _run + index.ToString("x24", CultureInfo.InvariantCulture);

    /// <summary>Worker <paramref name="index"/>'s options, as every start of it has them.</summary>
    public WorkerOptions Options(int index)
    {
        var options = new WorkerOptions
        {
            Cluster = cluster,
            InstanceId = InstanceId(index),
            Ec2InstanceId = $"i-sim{index:D5}",
            Engine = "simulated",
        };
        var section = new ConfigurationBuilder()
            .AddInMemoryCollection(Sim.WorkerSettings.ToDictionary(s => s.Key.Replace("__", ":", StringComparison.Ordinal), s => (string?)s.Value))
            .Build().GetSection("Worker");
        section.Bind(options);
        return options;
    }

    /// <summary>The tasks running worker <paramref name="index"/> runs as its own (started or adopted); 0 when it is not running.</summary>
    public int RunningTasks(int index)
        => Snapshot().FirstOrDefault(w => w.Index == index) is { Provider: { } provider } ? provider.GetRequiredService<TaskRunner>().RunningCount : 0;

    /// <summary>The running workers' engines, by worker number.</summary>
    public IReadOnlyDictionary<int, SimulatedEngine> Engines() => Snapshot().ToDictionary(w => w.Index, w => w.Engine);

    /// <summary>The engine (host) of a worker stopped with its engine kept, to put containers on while the worker is down.</summary>
    public SimulatedEngine StoppedEngine(int index)
    {
        lock (_workers) return _stoppedEngines[index];
    }

    public Task StartAsync(int count, CancellationToken cancellationToken) => StartAsync(Enumerable.Range(0, count), cancellationToken);

    /// <summary>Starts workers <paramref name="indexes"/> (again, on its engine, for a worker stopped with its engine kept).</summary>
    public async Task StartAsync(IEnumerable<int> indexes, CancellationToken cancellationToken)
    {
        var ecs = new EcsOptions { Region = Sim.Region, AccountId = "000000000000" };
        var started = 0;
        // A few at once: each start waits on storage (its key, its registration), not on this process.
        await Parallel.ForEachAsync(indexes, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            var services = new ServiceCollection();
            // Before AddLogging, which only adds a factory when none is registered; a registered instance is not disposed with the worker.
            services.AddSingleton(_logging);
            services.AddLogging();
            services.AddWorker(Options(i), ecs, storage);
            SimulatedEngine? kept;
            lock (_workers) _stoppedEngines.Remove(i, out kept);
            // A worker started again runs on the host it ran on (the engine and its containers): the
            // last registration of SimulatedEngine is the one resolved, so the engine client gets it.
            if (kept is not null) services.AddSingleton(kept);
            var provider = services.BuildServiceProvider();
            var hosted = provider.GetServices<IHostedService>().ToList();
            foreach (var service in hosted) await service.StartAsync(ct);
            lock (_workers) _workers.Add((i, provider, hosted, provider.GetRequiredService<SimulatedEngine>()));
            if (Interlocked.Increment(ref started) % 100 == 0) Console.WriteLine($"  {started} workers started");
        });
    }

    private List<(int Index, ServiceProvider Provider, List<IHostedService> Hosted, SimulatedEngine Engine)> Snapshot()
    {
        lock (_workers) return [.. _workers];
    }

    /// <summary>Makes the containers of these tasks exit with 0, as a finished job's would.</summary>
    public void ExitTasks(IReadOnlyCollection<string> taskArns)
    {
        var wanted = taskArns.ToHashSet(StringComparer.Ordinal);
        foreach (var (_, provider, _, engine) in Snapshot())
        {
            var docker = provider.GetRequiredService<Docker.DotNet.IDockerClient>();
            var containers = docker.Containers.ListContainersAsync(new Docker.DotNet.Models.ContainersListParameters()).GetAwaiter().GetResult();
            foreach (var container in containers)
            {
                if (container.Labels.TryGetValue(DockerLabels.TaskArn, out var arn) && wanted.Contains(arn)) engine.Exit(container.ID, 0);
            }
        }
    }

    /// <summary>
    /// Stops every worker (each gives its instance up, as a worker stopping cleanly does) within
    /// <paramref name="grace"/> (2 s unless given). With <paramref name="keepEngines"/>, each
    /// worker's engine and its containers stay, for <see cref="StartAsync"/> to start it on again.
    /// </summary>
    public async Task StopAsync(TimeSpan? grace = null, bool keepEngines = false)
    {
        var workers = Snapshot();
        lock (_workers) _workers.Clear();
        await Parallel.ForEachAsync(workers, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (worker, _) =>
        {
            var (index, provider, hosted, engine) = worker;
            using var timeout = new CancellationTokenSource(grace ?? TimeSpan.FromSeconds(2));
            foreach (var service in hosted)
            {
                try
                {
                    await service.StopAsync(timeout.Token);
                }
                catch (Exception)
                {
                    // Ending the run: a worker that does not stop in time is left to the process exit.
                }
            }
            await provider.DisposeAsync();
            if (keepEngines) lock (_workers) _stoppedEngines[index] = engine;
        });
    }
}

public static class Retry
{
    /// <summary>A loaded machine answers slowly: a call that timed out is made again (a RunTask may then launch twice; the fill counts what runs).</summary>
    public static async Task<T> CallAsync<T>(Func<Task<T>> call)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (attempt < 5 && e is TaskCanceledException or HttpRequestException)
            {
                Console.WriteLine($"  retrying after: {e.Message}");
                await Task.Delay(1000 * attempt);
            }
        }
    }
}

/// <summary>One measured path: transactions per operation, net of the idle rate, and where they went.</summary>
public sealed record PhaseResult(
    string Name, double Operations, double Seconds, long Transactions, double PerOperation,
    IReadOnlyDictionary<string, double> PerOperationBySource, IReadOnlyDictionary<string, double> PerOperationByResource,
    string BusiestPartition, double BusiestPartitionPerOperation, double BusiestPartitionShare,
    string BusiestQueue, double BusiestQueuePerOperation, double BusiestPartitionByQueriesPerOperation)
{
    /// <summary>
    /// <paramref name="window"/>'s transactions less what the idle <paramref name="baseline"/> would
    /// have made in as long (per table/queue and partition), divided by <paramref name="operations"/>.
    /// </summary>
    public static PhaseResult Of(string name, Window window, Window? baseline, double operations)
    {
        // Transactions for the account's limit; entities (a batch counts each of its operations) for a partition's.
        var net = new Dictionary<MeterKey, double>();
        var netEntities = new Dictionary<MeterKey, double>();
        foreach (var (key, (requests, entities)) in window.Counts)
        {
            var idle = baseline is not null && baseline.Counts.TryGetValue(key, out var b) ? b : default;
            var scale = baseline is null ? 0 : window.Seconds / baseline.Seconds;
            if (requests - idle.Requests * scale > 0) net[key] = requests - idle.Requests * scale;
            if (entities - idle.Entities * scale > 0) netEntities[key] = entities - idle.Entities * scale;
        }
        var total = net.Values.Sum();
        var partitions = netEntities.Where(n => n.Key.Service == "table")
            .GroupBy(n => $"{n.Key.Resource}/{n.Key.Partition}").Select(g => (Name: g.Key, Count: g.Sum(x => x.Value))).OrderByDescending(p => p.Count).FirstOrDefault();
        var queues = net.Where(n => n.Key.Service == "queue")
            .GroupBy(n => n.Key.Resource).Select(g => (Name: g.Key, Count: g.Sum(x => x.Value))).OrderByDescending(p => p.Count).FirstOrDefault();
        var tableTotal = netEntities.Where(n => n.Key.Service == "table").Sum(n => n.Value);
        // Of the busiest partition's entities, those that queries returned: a read of the whole partition
        // (the placement view, a sweep) costs per second, not per operation, and a short window holds one or none.
        var byQueries = netEntities.Where(n => n.Key.Service == "table" && n.Key.Kind == "query" && $"{n.Key.Resource}/{n.Key.Partition}" == partitions.Name).Sum(n => n.Value);
        return new PhaseResult(
            name, operations, Math.Round(window.Seconds, 1), window.Total, Round(total / operations),
            net.GroupBy(n => n.Key.Source).ToDictionary(g => g.Key, g => Round(g.Sum(x => x.Value) / operations)),
            net.GroupBy(n => $"{n.Key.Service}:{Family(n.Key.Resource)}").OrderByDescending(g => g.Sum(x => x.Value)).ToDictionary(g => g.Key, g => Round(g.Sum(x => x.Value) / operations)),
            partitions.Name ?? "-", Round(partitions.Count / operations), tableTotal == 0 ? 0 : Math.Round(partitions.Count / tableTotal, 3),
            queues.Name ?? "-", Round(queues.Count / operations), Round(byQueries / operations));
    }

    // A per-instance command queue or per-service partition is one family in the breakdown.
    private static string Family(string resource) => resource.StartsWith("ci-", StringComparison.Ordinal)
        ? resource.Split('-')[0] + "-*" : resource;

    private static double Round(double value) => Math.Round(value, 2);

    public string Line() => $"{Name}: {PerOperation} tx/op ({string.Join(", ", PerOperationBySource.Select(s => $"{s.Key} {s.Value}"))}); busiest partition {BusiestPartition} {BusiestPartitionPerOperation}/op ({BusiestPartitionShare:P0}, by queries {BusiestPartitionByQueriesPerOperation}); busiest queue {BusiestQueue} {BusiestQueuePerOperation}/op";
}
