using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Reconciliation;
using Serverless.EndToEnd.Tests;
using Serverless.ScaleSim;
using Serverless.TestSupport.Storage;

// A cluster of simulated workers (Worker__Engine=simulated) in this process, the control plane
// standalone as a child process, and a counting proxy in front of Azurite for each: the storage
// transactions of every hot path, per operation, by table/queue and partition. See bench/scale-sim.sh.
var settings = SimSettings.Parse(args);
var meter = new Meter();
using var stopping = new CancellationTokenSource();

await using var cpProxy = new StorageProxy { Observe = meter.For("control-plane") };
await using var workerProxy = new StorageProxy { Observe = meter.For("workers") };
await using var probeProxy = new StorageProxy { Observe = meter.For("timers") };
foreach (var proxy in new[] { cpProxy, workerProxy, probeProxy })
    await proxy.StartAsync(settings.AzuriteTables, settings.AzuriteQueues, stopping.Token);

var cluster = "sim";
var log = new System.Text.StringBuilder();
var endpoint = $"http://127.0.0.1:{settings.ApiPort}";
Directory.CreateDirectory(settings.LogDirectory);
var controlPlaneLog = new StreamWriter(Path.Combine(settings.LogDirectory, "control-plane.log")) { AutoFlush = true };
var controlPlane = StartControlPlane(settings, Connection(cpProxy), endpoint, log, controlPlaneLog);
// The control plane goes with this process however it ends: by its pid, since the Process object
// may already be disposed when an exception unwinds (that left it running after a failed run).
var controlPlanePid = controlPlane.Id;
AppDomain.CurrentDomain.UnhandledException += (_, _) => Kill(controlPlanePid);
AppDomain.CurrentDomain.ProcessExit += (_, _) => Kill(controlPlanePid);
Console.CancelKeyPress += (_, _) => Kill(controlPlanePid);
using var onTerm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
    System.Runtime.InteropServices.PosixSignal.SIGTERM, _ => Kill(controlPlanePid));
try
{
    using var api = new SignedClient(endpoint, Sim.AccessKeyId, Sim.SecretAccessKey, Sim.Region);
    await WaitForApiAsync(endpoint, controlPlane, log);
    Console.WriteLine($"control plane up at {endpoint}");
    var workers = new Workers(cluster, Connection(workerProxy));
    await using var diagnostics = await Diagnostics.StartAsync(meter, () => workers.Running, controlPlanePid, settings.Azurite,
        settings.AzuriteTables, settings.AzuriteQueues, Console.Out);

    // The timers under study run here, through their own proxy, so each run is counted exactly; the
    // control plane's own copies are disabled (StartControlPlane).
    var probe = BuildProbe(Connection(probeProxy));

    await api.EcsOkAsync("CreateCluster", new JsonObject { ["clusterName"] = cluster });
    await api.EcsOkAsync("RegisterTaskDefinition", new JsonObject
    {
        ["family"] = "sim",
        ["containerDefinitions"] = new JsonArray(new JsonObject
        {
            ["name"] = "app", ["image"] = "local/sim:latest", ["cpu"] = 64, ["memoryReservation"] = 32, ["essential"] = true,
        }),
    });

    var clock = Stopwatch.StartNew();
    await workers.StartAsync(settings.Instances, stopping.Token);
    await WaitUntilAsync("instances registered", async () => await CountInstancesAsync(api, cluster) >= settings.Instances, TimeSpan.FromMinutes(15));
    Console.WriteLine($"{settings.Instances} instances registered in {clock.Elapsed.TotalSeconds:F0} s");

    // Fill: half the tasks standalone (RunTask count=5, 8 calls at once), half in services of 50 tasks each.
    clock.Restart();
    var serviceTasks = settings.Tasks / 2;
    var services = Math.Max(1, serviceTasks / 50);
    var perService = serviceTasks / services;
    var standalone = settings.Tasks - services * perService;
    var toppedUp = 0;
    JsonObject? seeding = null;
    if (settings.Seed)
    {
        // The seeded fill: the state written, the hosts' containers made, the workers restarted to adopt them (Seed).
        var names = Enumerable.Range(0, services).Select(i => $"svc-{i:D4}").ToList();
        var seed = new Seed(probe, api, workers, cluster, settings.Instances);
        var seedStart = meter.Take();
        await seed.WriteAsync(names, perService, standalone, "sim", default);
        var written = meter.Take();
        var writtenAt = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"seeded in {writtenAt:F0} s; {meter.Total} transactions so far; the workers start again and adopt their tasks");
        await seed.RestartAsync(services * perService, default);
        var restarted = meter.Take();
        var restartedAt = clock.Elapsed.TotalSeconds;
        await seed.VerifyAsync(names, perService, TimeSpan.FromMinutes(settings.FillMinutes), default);
        // What the fill cost, per task: the writes (with the services' API calls and the workers' stop), the
        // workers' restart (each reads its tasks and reports them again; those reports' reconciles), the checks.
        var steps = new[]
        {
            PhaseResult.Of("seeded fill: services, workers stopped, state written (per task)", written.Since(seedStart), null, settings.Tasks),
            PhaseResult.Of("seeded fill: workers started again, adoption worked off (per task)", restarted.Since(written), null, settings.Tasks),
            PhaseResult.Of("seeded fill: the checks until steady (per task)", meter.Take().Since(restarted), null, settings.Tasks),
        };
        foreach (var step in steps) Console.WriteLine(step.Line());
        seeding = new JsonObject
        {
            ["writeSeconds"] = Math.Round(writtenAt),
            ["restartSeconds"] = Math.Round(restartedAt - writtenAt),
            ["checkSeconds"] = Math.Round(clock.Elapsed.TotalSeconds - restartedAt),
            ["steps"] = JsonSerializer.SerializeToNode(steps),
        };
    }
    else
    {
        var spread = new JsonArray(new JsonObject { ["type"] = "spread", ["field"] = "instanceId" });
        await Parallel.ForEachAsync(Enumerable.Range(0, services), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) =>
            await RetryAsync(() => diagnostics.TimeAsync("CreateService", () => api.EcsAsync("CreateService", new JsonObject
            {
                ["cluster"] = cluster, ["serviceName"] = $"svc-{i:D4}", ["taskDefinition"] = "sim", ["desiredCount"] = perService,
                ["placementStrategy"] = spread.DeepClone(),
            }, ct))));
        // Calls of 5 rather than 10: a call places its tasks one after the other, and a loaded Azurite's
        // latency times 10 placements came near the client's 60 s timeout (a timed-out call is made again).
        await Parallel.ForEachAsync(Chunks(standalone, 5), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (count, ct) =>
            await RunTasksAsync(api, diagnostics, cluster, count, ct));
        // A standalone task that failed to start (its Start not acknowledged within the start deadline)
        // is not replaced, as ECS does not replace one: when the count stops rising for 90 s, the
        // shortfall is launched again, so a run does not wait for tasks that will never come.
        var fillClock = Stopwatch.StartNew();
        var stalled = Stopwatch.StartNew();
        var lastRunning = -1;
        var lastPrint = TimeSpan.Zero;
        while (workers.Running is var now && now < settings.Tasks)
        {
            if (fillClock.Elapsed > TimeSpan.FromMinutes(settings.FillMinutes)) throw new TimeoutException($"{settings.Tasks} tasks running: not after {settings.FillMinutes} minutes ({now} running)");
            if (now > lastRunning)
            {
                lastRunning = now;
                stalled.Restart();
            }
            if (stalled.Elapsed > TimeSpan.FromSeconds(90))
            {
                var missing = settings.Tasks - now;
                Console.WriteLine($"  fill stalled at {now} running for 90 s: {missing} more launched with RunTask");
                await Parallel.ForEachAsync(Chunks(missing, 5), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (count, ct) =>
                    await RunTasksAsync(api, diagnostics, cluster, count, ct));
                toppedUp += missing;
                stalled.Restart();
            }
            if (fillClock.Elapsed - lastPrint > TimeSpan.FromSeconds(15))
            {
                Console.WriteLine($"  waiting for {settings.Tasks} tasks running: {now} running after {fillClock.Elapsed.TotalSeconds:F0} s");
                lastPrint = fillClock.Elapsed;
            }
            await Task.Delay(500);
        }
    }
    var fillSeconds = clock.Elapsed.TotalSeconds;
    Console.WriteLine($"{settings.Tasks} tasks running ({services} services of {perService}, {standalone} standalone, {(settings.Seed ? "seeded" : $"{toppedUp} launched again")}) in {fillSeconds:F0} s; {meter.Total} transactions so far");
    await Task.Delay(TimeSpan.FromSeconds(10));

    // Each timer once before measuring: the probe's first calls create its tables (once per process).
    await probe.GetRequiredService<InstanceHealthSweep>().SweepAsync(default);
    await probe.GetRequiredService<ServiceResync>().ResyncAsync(default);
    await Task.Delay(TimeSpan.FromSeconds(10));

    // ---- measurement ----
    var phases = new List<PhaseResult>();
    var k = settings.Operations;

    var idleStart = meter.Take();
    await Task.Delay(TimeSpan.FromSeconds(settings.IdleSeconds));
    var baseline = meter.Take().Since(idleStart);
    phases.Add(PhaseResult.Of("idle (per instance-hour)", baseline, null, settings.Instances * baseline.Seconds / 3600));
    Console.WriteLine($"idle: {baseline.Total} transactions in {baseline.Seconds:F0} s");

    async Task<PhaseResult> MeasureAsync(string name, int operations, Func<Task> act, Func<Task>? until = null)
    {
        var before = meter.Take();
        await act();
        if (until is not null) await until();
        await SettleAsync(meter, baseline);
        var window = meter.Take().Since(before);
        var result = PhaseResult.Of(name, window, baseline, operations);
        Console.WriteLine(result.Line());
        return result;
    }

    // RunTask → RUNNING (the API call, the worker's start, its RUNNING report and the report's apply).
    var launched = new List<string>();
    var running = workers.Running;
    phases.Add(await MeasureAsync("RunTask → RUNNING (per task)", k, async () =>
    {
        var arns = await Task.WhenAll(Enumerable.Range(0, k).Select(async _ => await RunTasksAsync(api, diagnostics, cluster, 1, default)));
        launched.AddRange(arns.SelectMany(a => a));
    }, () => WaitUntilAsync("RunTask tasks running", () => Task.FromResult(workers.Running >= running + k), TimeSpan.FromMinutes(5))));

    // DescribeTasks (100 ARNs a call) and ListTasks (a page of 100).
    var someArns = (await api.EcsOkAsync("ListTasks", new JsonObject { ["cluster"] = cluster, ["maxResults"] = 100 }))["taskArns"]!.AsArray().Select(a => (JsonNode)a!.GetValue<string>()).ToList();
    phases.Add(await MeasureAsync("DescribeTasks, 100 tasks (per call)", k, async () =>
    {
        for (var i = 0; i < k; i++)
            await RetryAsync(() => api.EcsOkAsync("DescribeTasks", new JsonObject { ["cluster"] = cluster, ["tasks"] = new JsonArray(someArns.Select(a => a.DeepClone()).ToArray()) }));
    }));
    phases.Add(await MeasureAsync("ListTasks, a page of 100 (per call)", k, async () =>
    {
        string? token = null;
        for (var i = 0; i < k; i++)
        {
            var request = new JsonObject { ["cluster"] = cluster, ["maxResults"] = 100 };
            if (token is not null) request["nextToken"] = token;
            token = (await RetryAsync(() => api.EcsOkAsync("ListTasks", request)))["nextToken"]?.GetValue<string>();
        }
    }));
    phases.Add(await MeasureAsync("ListTasks of one service, 50 tasks (per call)", k, async () =>
    {
        for (var i = 0; i < k; i++)
            await RetryAsync(() => api.EcsOkAsync("ListTasks", new JsonObject { ["cluster"] = cluster, ["serviceName"] = $"svc-{i % services:D4}", ["maxResults"] = 100 }));
    }));

    // A task report: the process exits by itself; the worker reports STOPPED, the control plane applies it.
    phases.Add(await MeasureAsync("task report: container exits → STOPPED (per task)", launched.Count, () =>
    {
        workers.ExitTasks(launched);
        return Task.CompletedTask;
    }, () => WaitUntilAsync("exited tasks stopped", () => Task.FromResult(workers.Running <= running), TimeSpan.FromMinutes(2))));

    // A service scale-up of k tasks: the reconcile places them, the workers start them and report.
    running = workers.Running;
    phases.Add(await MeasureAsync("service +k: reconcile → RUNNING (per task)", k, async () =>
    {
        await RetryAsync(() => api.EcsOkAsync("UpdateService", new JsonObject { ["cluster"] = cluster, ["service"] = "svc-0000", ["desiredCount"] = perService + k }));
    }, () => WaitUntilAsync("service tasks running", () => Task.FromResult(workers.Running >= running + k), TimeSpan.FromMinutes(5))));

    // The resync timer: one reconcile message per service, each a no-op reconcile at steady state.
    phases.Add(await MeasureAsync($"resync timer + {services + 0} no-op reconciles (per service)", services, async () =>
    {
        await probe.GetRequiredService<ServiceResync>().ResyncAsync(default);
    }));

    // The health sweep: every instance of the cluster is looked at (none is lost).
    var sweepBefore = meter.Take();
    await probe.GetRequiredService<InstanceHealthSweep>().SweepAsync(default);
    var sweep = meter.Take().Since(sweepBefore);
    // Only the probe's own transactions: the sweep's cost is exactly what went through its proxy.
    var sweepOnly = new Window(sweep.Counts.Where(c => c.Key.Source == "timers").ToDictionary(c => c.Key, c => c.Value), sweep.Seconds);
    phases.Add(PhaseResult.Of($"health sweep, {settings.Instances} instances (per run)", sweepOnly, null, 1));
    Console.WriteLine(phases[^1].Line());

    var report = new JsonObject
    {
        ["instances"] = settings.Instances,
        ["tasks"] = settings.Tasks,
        ["services"] = services,
        ["operations"] = k,
        ["fillSeconds"] = Math.Round(fillSeconds),
        ["toppedUp"] = toppedUp,
        ["fill"] = settings.Seed ? "seeded" : "api",
        ["seeding"] = seeding,
        ["settings"] = JsonSerializer.SerializeToNode(Sim.WorkerSettings),
        ["phases"] = JsonSerializer.SerializeToNode(phases),
    };
    Directory.CreateDirectory(settings.Out);
    var file = Path.Combine(settings.Out, $"scale-sim-{settings.Instances}x{settings.Tasks}.json");
    await File.WriteAllTextAsync(file, report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    Console.WriteLine($"wrote {file}");

    await workers.StopAsync();
    return 0;
}
finally
{
    Kill(controlPlanePid);
    lock (log) controlPlaneLog.Dispose();
}

// ---- helpers ----

static void Kill(int pid)
{
    try
    {
        using var process = Process.GetProcessById(pid);
        if (!process.HasExited) process.Kill(entireProcessTree: true);
    }
    catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
    {
        // Already gone.
    }
}

static IEnumerable<int> Chunks(int total, int size)
{
    for (var left = total; left > 0; left -= size) yield return Math.Min(size, left);
}

static async Task<IReadOnlyList<string>> RunTasksAsync(SignedClient api, Diagnostics diagnostics, string cluster, int count, CancellationToken ct)
{
    for (var attempt = 1; ; attempt++)
    {
        var answer = await RetryAsync(() => diagnostics.TimeAsync("RunTask", () => api.EcsOkAsync("RunTask", new JsonObject
        {
            ["cluster"] = cluster, ["taskDefinition"] = "sim", ["count"] = count,
            ["placementStrategy"] = new JsonArray(new JsonObject { ["type"] = "spread", ["field"] = "instanceId" }),
        }, ct)));
        var arns = answer["tasks"]!.AsArray().Select(t => t!["taskArn"]!.GetValue<string>()).ToList();
        if (arns.Count == count || attempt == 5) return arns;
        // Placement found no room (a reservation race): try the rest again.
        count -= arns.Count;
        await Task.Delay(200, ct);
    }
}

static Task<T> RetryAsync<T>(Func<Task<T>> call) => Retry.CallAsync(call);

static async Task<int> CountInstancesAsync(SignedClient api, string cluster)
{
    var count = 0;
    string? token = null;
    do
    {
        var request = new JsonObject { ["cluster"] = cluster, ["maxResults"] = 100 };
        if (token is not null) request["nextToken"] = token;
        var page = await RetryAsync(() => api.EcsOkAsync("ListContainerInstances", request));
        count += page["containerInstanceArns"]!.AsArray().Count;
        token = page["nextToken"]?.GetValue<string>();
    } while (token is not null);
    return count;
}

static async Task WaitUntilAsync(string what, Func<Task<bool>> done, TimeSpan timeout, Func<string>? progress = null)
{
    var clock = Stopwatch.StartNew();
    var lastPrint = TimeSpan.Zero;
    while (!await done())
    {
        if (clock.Elapsed > timeout) throw new TimeoutException($"{what}: not after {timeout}{(progress is null ? "" : $" ({progress()})")}");
        if (progress is not null && clock.Elapsed - lastPrint > TimeSpan.FromSeconds(15))
        {
            Console.WriteLine($"  waiting for {what}: {progress()} after {clock.Elapsed.TotalSeconds:F0} s");
            lastPrint = clock.Elapsed;
        }
        await Task.Delay(500);
    }
}

// Quiet again: the last 3 s carried no more than the idle rate (plus a little).
static async Task SettleAsync(Meter meter, Window baseline)
{
    var idlePerSecond = baseline.Total / baseline.Seconds;
    var clock = Stopwatch.StartNew();
    while (clock.Elapsed < TimeSpan.FromMinutes(3))
    {
        var before = meter.Take();
        await Task.Delay(TimeSpan.FromSeconds(3));
        var window = meter.Take().Since(before);
        if (window.Total <= idlePerSecond * window.Seconds * 1.5 + 10) return;
    }
}

static string Connection(StorageProxy proxy)
    => $"DefaultEndpointsProtocol=http;AccountName={Sim.AccountName};AccountKey={Sim.AccountKey};" +
       $"TableEndpoint={proxy.TableRoot}{Sim.AccountName};QueueEndpoint={proxy.QueueRoot}{Sim.AccountName};";

static Process StartControlPlane(SimSettings settings, string storage, string endpoint, System.Text.StringBuilder log, StreamWriter file)
{
    var start = new ProcessStartInfo("dotnet", [settings.FunctionsAssembly])
    {
        WorkingDirectory = Path.GetDirectoryName(settings.FunctionsAssembly)!,
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    };
    start.Environment["AzureWebJobsStorage"] = storage;
    start.Environment["Ecs__AccessKeys"] = $"{Sim.AccessKeyId}:{Sim.SecretAccessKey}";
    start.Environment["Ecs__Region"] = Sim.Region;
    start.Environment["Ecs__AccountId"] = "000000000000";
    start.Environment["Secrets__KeyEncryptionKeys"] = "sim:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
    foreach (var (key, value) in Sim.ControlPlaneSettings) start.Environment[key] = value;
    start.Environment["ASPNETCORE_URLS"] = endpoint;
    start.Environment["Standalone__Urls"] = endpoint;
    var process = Process.Start(start)!;
    // The start's output is kept for the error of a control plane that does not come up; all of it goes to the file.
    void Keep(string? line)
    {
        if (line is null) return;
        lock (log)
        {
            if (log.Length < 64 * 1024) log.AppendLine(line);
            try
            {
                file.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
                // The run is over.
            }
        }
    }
    process.OutputDataReceived += (_, e) => Keep(e.Data);
    process.ErrorDataReceived += (_, e) => Keep(e.Data);
    process.BeginOutputReadLine();
    process.BeginErrorReadLine();
    return process;
}

static async Task WaitForApiAsync(string endpoint, Process process, System.Text.StringBuilder log)
{
    using var http = new HttpClient();
    var deadline = DateTime.UtcNow.AddSeconds(120);
    while (true)
    {
        if (process.HasExited) throw new InvalidOperationException($"The control plane exited with {process.ExitCode}:\n{log}");
        try
        {
            using var response = await http.PostAsync(endpoint, new StringContent("{}"));
            if ((int)response.StatusCode is >= 400 and < 500) return;
        }
        catch (HttpRequestException)
        {
        }
        if (DateTime.UtcNow > deadline) throw new TimeoutException($"The control plane did not answer at {endpoint}:\n{log}");
        await Task.Delay(300);
    }
}

static ServiceProvider BuildProbe(string storage)
{
    var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["AzureWebJobsStorage"] = storage,
        ["Ecs:Region"] = Sim.Region,
        ["Ecs:AccountId"] = "000000000000",
        ["Ecs:AccessKeys"] = $"{Sim.AccessKeyId}:{Sim.SecretAccessKey}",
        ["Ecs:AgentHeartbeatSeconds"] = Sim.ControlPlaneSettings["Ecs__AgentHeartbeatSeconds"],
        ["Ecs:AgentDisconnectedAfterSeconds"] = Sim.ControlPlaneSettings["Ecs__AgentDisconnectedAfterSeconds"],
        ["Ecs:AgentLostAfterSeconds"] = Sim.ControlPlaneSettings["Ecs__AgentLostAfterSeconds"],
    }).Build();
    var services = new ServiceCollection();
    services.AddLogging(b => b.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
    services.AddSingleton<IConfiguration>(configuration);
    services.AddControlPlane(configuration);
    return services.BuildServiceProvider();
}
