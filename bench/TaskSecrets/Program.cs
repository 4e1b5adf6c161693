// The task-secrets benchmark (bash bench/task-secrets.sh): what three secrets add to a task's launch.
//
// The control plane (composed as the app composes it) and one worker run in this process over a
// fresh Azurite behind the tests' storage proxy (tests/TestSupport/Storage/StorageProxy.cs), which
// counts every storage request, on the local Docker engine. Tasks are launched one at a time, in
// rounds of three in rotating order: `plain` (no secrets); `secrets` (a JSON key of a Secrets
// Manager secret, that whole secret, an SSM SecureString: the issue's scenario); `distinct` (a JSON
// key of one secret, another secret, a SecureString: three stored values). Each launch is RunTask
// through the API's handler, then the worker's part as its command loop does it (one receive of the
// Start, the Start handled, one delete), until the worker's RUNNING report is on `task-events`. Counted per
// launch: every storage request of both sides from the RunTask until 0.5 s after that report (a
// background delete lands in it); timed: RunTask to the RUNNING report. The reports are read over a
// connection that bypasses the proxy, so reading them is not counted. Nothing else runs: no
// heartbeat, no queue polling, no control-plane trigger.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core;
using Serverless.Core.Api;
using Serverless.Core.Secrets;
using Serverless.Core.Tasks;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;
using Serverless.Worker;
using Serverless.Worker.Docker;
using Serverless.Worker.Registration;
using Serverless.Worker.Secrets;

var rounds = 20; // one task of each variant per round
var warmup = 2;
string? output = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--warmup": warmup = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--out": output = args[++i]; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

var runId = Guid.NewGuid().ToString("N")[..10];
var cluster = "bench-secrets-" + runId;
var instanceId = Guid.NewGuid().ToString("N");
var prefix = "bench" + runId;
using var stopping = new CancellationTokenSource();
var token = stopping.Token;

await using var azurite = new AzuriteFixture();
await azurite.InitializeAsync();
var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
{
    ["AzureWebJobsStorage"] = azurite.ConnectionString,
    ["Ecs:StoragePrefix"] = prefix,
    ["Ecs:AgentDisconnectedAfterSeconds"] = "86400",
    ["Ecs:WakePort"] = "-1",
    ["Secrets:KeyEncryptionKeys"] = KeyEncryptionKeys.Generate("bench"),
}).Build();
await using var controlPlane = new ServiceCollection().AddLogging().AddControlPlane(configuration).BuildServiceProvider();
var workerOptions = new WorkerOptions
{
    Cluster = cluster,
    InstanceId = instanceId,
    ContainerStopTimeoutSeconds = 1,
    WakePort = -1,
};
await using var worker = new ServiceCollection().AddLogging()
    .AddWorker(workerOptions, new EcsOptions { StoragePrefix = prefix, WakePort = -1 }, azurite.ConnectionString, runAsHostedService: false)
    .BuildServiceProvider();
var watcher = worker.GetRequiredService<DockerEventWatcher>();
var watching = watcher.RunAsync(token);
await watcher.Started;
var runner = worker.GetRequiredService<TaskRunner>();
var docker = worker.GetRequiredService<IDockerClient>();

async Task<JsonObject> CallAsync(string target, JsonObject request)
{
    if (!controlPlane.GetRequiredService<ActionRegistry>().TryGet(target, out var handler)) throw new InvalidOperationException(target);
    return await handler(request, new RequestContext("bench"), token);
}

var taskArns = new List<string>();
try
{
    await CallAsync("AmazonEC2ContainerServiceV20141113.CreateCluster", new() { ["clusterName"] = cluster });
    await worker.GetRequiredService<WorkerKeyPublisher>().PublishAsync(token);
    await worker.GetRequiredService<InstanceRegistration>().RegisterAsync(token);

    var secretArn = (await CallAsync("secretsmanager.CreateSecret", new()
    {
        ["Name"] = $"bench/{runId}/db",
        ["SecretString"] = new JsonObject { ["username"] = "admin", ["password"] = "pw-" + runId }.ToJsonString(),
    }))["ARN"]!.GetValue<string>();
    var otherArn = (await CallAsync("secretsmanager.CreateSecret", new() { ["Name"] = $"bench/{runId}/api", ["SecretString"] = "key-" + runId }))["ARN"]!.GetValue<string>();
    await CallAsync("AmazonSSM.PutParameter", new() { ["Name"] = $"/bench/{runId}/token", ["Value"] = "tok-" + runId, ["Type"] = "SecureString" });
    JsonObject Definition(string family, JsonArray? secrets)
    {
        var container = new JsonObject
        {
            ["name"] = "app",
            ["image"] = "local/busybox:latest",
            ["memory"] = 32,
            ["command"] = new JsonArray("sleep", "3600"),
            ["stopTimeout"] = 1,
            ["environment"] = new JsonArray(new JsonObject { ["name"] = "MODE", ["value"] = "bench" }),
        };
        if (secrets is not null) container["secrets"] = secrets;
        return new JsonObject { ["family"] = family, ["containerDefinitions"] = new JsonArray(container) };
    }
    await CallAsync("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", Definition("plain-" + runId, null));
    await CallAsync("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", Definition("secrets-" + runId, new JsonArray(
        new JsonObject { ["name"] = "DB_USER", ["valueFrom"] = secretArn + ":username::" },
        new JsonObject { ["name"] = "DB_SECRET", ["valueFrom"] = secretArn },
        new JsonObject { ["name"] = "API_TOKEN", ["valueFrom"] = $"/bench/{runId}/token" })));
    await CallAsync("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", Definition("distinct-" + runId, new JsonArray(
        new JsonObject { ["name"] = "DB_USER", ["valueFrom"] = secretArn + ":username::" },
        new JsonObject { ["name"] = "API_KEY", ["valueFrom"] = otherArn },
        new JsonObject { ["name"] = "API_TOKEN", ["valueFrom"] = $"/bench/{runId}/token" })));

    var commands = new QueueClient(azurite.ConnectionString, TaskMessages.CommandQueue(instanceId), new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None });
    var reports = new QueueClient(azurite.DirectConnectionString, TaskMessages.TaskEventsQueue, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None });
    await reports.CreateIfNotExistsAsync(cancellationToken: token);
    var running = new HashSet<string>(StringComparer.Ordinal);

    // Every request the proxy sees, by service, method and table or queue, for the current launch.
    Dictionary<string, int>? breakdown = null;
    azurite.Proxy.RequestSeen = (service, method, resource) =>
    {
        var name = resource?.StartsWith(prefix, StringComparison.Ordinal) == true ? resource[prefix.Length..]
            : resource == TaskMessages.CommandQueue(instanceId) ? "ci-<instance> (Start)" : resource;
        var key = $"{service} {method} {name}";
        lock (running)
        {
            if (breakdown is not null) breakdown[key] = breakdown.GetValueOrDefault(key) + 1;
        }
    };

    async Task<Sample> LaunchAsync(string variant)
    {
        lock (running) breakdown = [];
        var before = azurite.Proxy.Requests;
        var clock = Stopwatch.StartNew();
        var answer = await CallAsync("AmazonEC2ContainerServiceV20141113.RunTask", new()
        {
            ["cluster"] = cluster,
            ["taskDefinition"] = $"{variant}-{runId}",
            ["clientToken"] = Guid.NewGuid().ToString(),
        });
        var answered = clock.Elapsed;
        var taskArn = answer["tasks"]![0]!["taskArn"]!.GetValue<string>();
        taskArns.Add(taskArn);
        var message = (await commands.ReceiveMessagesAsync(1, TimeSpan.FromMinutes(1), token)).Value.Single();
        var start = TaskMessages.Deserialize<TaskCommand>(message.Body.ToString());
        await runner.StartAsync(start, redelivered: false, token);
        await commands.DeleteMessageAsync(message.MessageId, message.PopReceipt, token);
        while (true)
        {
            foreach (var report in (await reports.ReceiveMessagesAsync(32, TimeSpan.FromMinutes(1), token)).Value)
            {
                foreach (var change in TaskMessages.DeserializeReports(report.Body.ToString()))
                {
                    if (change.LastStatus == "RUNNING") running.Add(change.TaskArn);
                    // An earlier task may stop (a container removed by someone else on the shared engine): only this one matters.
                    if (change.LastStatus == "STOPPED" && change.TaskArn == taskArn && !running.Contains(taskArn))
                        throw new InvalidOperationException($"{change.TaskArn} stopped: {change.StoppedReason}");
                }
                await reports.DeleteMessageAsync(report.MessageId, report.PopReceipt, token);
            }
            if (running.Contains(taskArn)) break;
            await Task.Delay(5, token);
        }
        var elapsed = clock.Elapsed;
        await Task.Delay(500, token);
        var counted = azurite.Proxy.Requests - before;
        Dictionary<string, int> seen;
        lock (running)
        {
            seen = breakdown!;
            breakdown = null;
        }
        return new Sample(variant, start.Secrets is not null, counted, elapsed.TotalMilliseconds, answered.TotalMilliseconds, seen);
    }

    var samples = new List<Sample>();
    for (var i = 0; i < warmup + rounds; i++)
    {
        // Rotating order, so no variant always goes first.
        string[] variants = ["plain", "secrets", "distinct"];
        var order = variants.Skip(i % 3).Concat(variants.Take(i % 3)).ToList();
        foreach (var variant in order)
        {
            var sample = await LaunchAsync(variant);
            if (i >= warmup) samples.Add(sample);
            Console.Error.WriteLine($"  {(i < warmup ? "warm-up" : "round " + (i - warmup + 1)),-8} {variant,-8} {sample.Requests,3} storage requests  {sample.Milliseconds,7:0.0} ms");
        }
    }

    var plain = samples.Where(s => s.Variant == "plain").ToList();
    if (!samples.Where(s => s.Variant != "plain").All(s => s.SealedInStart)) throw new InvalidOperationException("a Start carried no sealed values");
    var report = new StringBuilder();
    report.AppendLine(CultureInfo.InvariantCulture, $"Task secrets benchmark, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, {rounds} rounds after {warmup} warm-up rounds, {Environment.ProcessorCount} cores.");
    report.AppendLine("`secrets`: a JSON key of a secret, the same whole secret, a SecureString; `distinct`: a JSON key of one secret, another secret, a SecureString.");
    report.AppendLine();
    report.AppendLine("| per task launched | storage requests, median (min-max) | added | RunTask to RUNNING, p50 | added at p50 | p90 | the RunTask call (resolving, sealing), p50 |");
    report.AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
    var plainRequests = Median(plain.Select(s => (double)s.Requests));
    var p50Plain = Median(plain.Select(s => s.Milliseconds));
    foreach (var variant in new[] { "plain", "secrets", "distinct" })
    {
        var these = samples.Where(s => s.Variant == variant).ToList();
        var requests = Median(these.Select(s => (double)s.Requests));
        var p50 = Median(these.Select(s => s.Milliseconds));
        report.AppendLine(CultureInfo.InvariantCulture,
            $"| {variant} | {requests:0} ({these.Min(s => s.Requests)}-{these.Max(s => s.Requests)}) | {(variant == "plain" ? "" : $"**{requests - plainRequests:+0;-0;0}**")} | {p50:0.0} ms | {(variant == "plain" ? "" : $"**{p50 - p50Plain:+0.0;-0.0} ms ({(p50 / p50Plain - 1) * 100:+0.0;-0.0}%)**")} | {Percentile(these.Select(s => s.Milliseconds), 0.9):0.0} ms | {Median(these.Select(s => s.RunTaskMilliseconds)):0.0} ms |");
    }
    report.AppendLine();
    report.AppendLine("Storage requests by table or queue, mean per launch:");
    report.AppendLine();
    report.AppendLine("| request | plain | secrets | distinct |");
    report.AppendLine("| --- | --- | --- | --- |");
    foreach (var key in samples.SelectMany(s => s.Breakdown.Keys).Distinct().Order(StringComparer.Ordinal))
    {
        report.Append(CultureInfo.InvariantCulture, $"| {key} |");
        foreach (var variant in new[] { "plain", "secrets", "distinct" })
            report.Append(CultureInfo.InvariantCulture, $" {samples.Where(s => s.Variant == variant).Average(s => s.Breakdown.GetValueOrDefault(key)):0.##} |");
        report.AppendLine();
    }
    Console.WriteLine(report);
    if (output is not null) await File.WriteAllTextAsync(output, report.ToString(), token);
    return 0;
}
finally
{
    foreach (var taskArn in taskArns)
    {
        try
        {
            await runner.StopAsync(new TaskCommand { Type = TaskCommand.Stop, Cluster = cluster, TaskArn = taskArn, Reason = "benchmark over" }, CancellationToken.None);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"could not stop {taskArn}: {e.Message}");
        }
    }
    // This run's containers only (the engine is shared), whatever state the stops left them in.
    var ours = await docker.Containers.ListContainersAsync(new ContainersListParameters
    {
        All = true,
        Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"com.amazonaws.ecs.cluster={cluster}"] = true } },
    });
    foreach (var container in ours)
    {
        try
        {
            await docker.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true });
        }
        catch (DockerApiException)
        {
            // Already being removed by the worker's own stop.
        }
    }
    await stopping.CancelAsync();
    await watching.ContinueWith(_ => { }, TaskScheduler.Default);
}

static double Median(IEnumerable<double> values) => Percentile(values, 0.5);

static double Percentile(IEnumerable<double> values, double p)
{
    var sorted = values.Order().ToList();
    var rank = p * (sorted.Count - 1);
    var low = (int)Math.Floor(rank);
    var high = (int)Math.Ceiling(rank);
    return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

internal sealed record Sample(string Variant, bool SealedInStart, long Requests, double Milliseconds, double RunTaskMilliseconds, Dictionary<string, int> Breakdown);
