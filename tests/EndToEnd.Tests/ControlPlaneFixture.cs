using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Serverless.TestSupport;

namespace Serverless.EndToEnd.Tests;

/// <summary>
/// A real control plane: the Functions app started standalone as its own process
/// (<c>dotnet Serverless.Functions.dll</c>) on a private Azurite, with the development key pair.
/// Tests drive it with the AWS CLI installed on the machine, exactly as a user would.
/// </summary>
public class ControlPlaneFixture : IAsyncLifetime
{
    public const string AccessKeyId = "AKIALOCALDEVELOPMENT";
    public const string SecretAccessKey = "local-development-secret-key-not-for-production";
    public const string Region = "us-east-1";
    public const string AccountId = "000000000000";
    /// <summary>The deploy webhook's secret (<c>Deploy__WebhookSecrets</c>) on every control plane of the fixture.</summary>
    public const string WebhookSecret = "end-to-end-webhook-secret";

    /// <summary>The key-encryption key of secret values, made up per fixture as run.sh makes one per state directory.</summary>
    public static readonly string KeyEncryptionKey = "e2e:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private AzuriteFixture _azurite = null!;
    private readonly StringBuilder _log = new();
    private readonly List<WorkerProcess> _workers = [];
    private readonly List<Process> _others = [];
    private Process? _process;

    public string Endpoint { get; private set; } = "";

    /// <summary>Settings a derived fixture gives its control planes on top of the ones above.</summary>
    protected virtual IReadOnlyDictionary<string, string> ControlPlaneSettings { get; } = new Dictionary<string, string>();

    /// <summary>A signed client in this process, for polling and bursts (see <see cref="SignedClient"/>).</summary>
    public SignedClient Client { get; private set; } = null!;

    public string Log { get { lock (_log) return _log.ToString(); } }

    public async Task InitializeAsync()
    {
        _azurite = new AzuriteFixture { Persistent = PersistentStorage };
        await _azurite.InitializeAsync();
        (_process, Endpoint) = await StartControlPlaneAsync(_log);
        Client = new SignedClient(Endpoint, AccessKeyId, SecretAccessKey, Region);
    }

    /// <summary>The storage account every process of this fixture shares.</summary>
    public string StorageConnectionString => _azurite.ConnectionString;

    /// <summary>The storage behind the connection string: its faults, its restart.</summary>
    public AzuriteFixture Storage => _azurite;

    /// <summary>Whether a derived fixture keeps its storage on disk, so a storage restart keeps the data.</summary>
    protected virtual bool PersistentStorage => false;

    /// <summary>
    /// Another control plane on the same storage (a second Functions instance): returns its
    /// endpoint. It runs the same queue and timer functions, so both reconcile concurrently.
    /// </summary>
    /// <param name="settings">Its own settings over the fixture's (a shorter service lease...).</param>
    public async Task<string> StartAnotherControlPlaneAsync(IReadOnlyDictionary<string, string>? settings = null)
    {
        var (process, endpoint) = await StartControlPlaneAsync(_log, settings: settings);
        lock (_others) _others.Add(process);
        return endpoint;
    }

    /// <summary>Stops the control planes <see cref="StartAnotherControlPlaneAsync"/> started; the first one stays.</summary>
    public async Task StopOtherControlPlanesAsync()
    {
        Process[] others;
        lock (_others)
        {
            others = [.. _others];
            _others.Clear();
        }
        foreach (var other in others)
        {
            if (!other.HasExited) other.Kill(entireProcessTree: true);
            await other.WaitForExitAsync();
            other.Dispose();
        }
    }

    /// <summary>
    /// <c>kill -9</c> of the first control plane (a crashed Functions instance: no clean-up, no
    /// graceful end of a request), then a new one on the same endpoint and storage.
    /// </summary>
    public async Task KillAndRestartControlPlaneAsync(TimeSpan downFor = default)
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        _process = null;
        if (downFor > TimeSpan.Zero) await Task.Delay(downFor);
        (_process, _) = await StartControlPlaneAsync(_log, Endpoint);
    }

    private async Task<(Process, string)> StartControlPlaneAsync(StringBuilder log, string? endpoint = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        endpoint ??= $"http://127.0.0.1:{FreePort()}";
        var start = new ProcessStartInfo("dotnet", [FunctionsAssembly()])
        {
            WorkingDirectory = Path.GetDirectoryName(FunctionsAssembly())!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["AzureWebJobsStorage"] = _azurite.ConnectionString;
        start.Environment["Ecs__AccessKeys"] = $"{AccessKeyId}:{SecretAccessKey}";
        start.Environment["Ecs__Region"] = Region;
        start.Environment["Ecs__AccountId"] = AccountId;
        start.Environment["Ecs__MaxRequestBodyBytes"] = "1048576";
        start.Environment["Secrets__KeyEncryptionKeys"] = KeyEncryptionKey;
        start.Environment["Deploy__WebhookSecrets"] = WebhookSecret;
        // Workers heartbeat every 2 s in these tests; one silent for 10 s is lost.
        start.Environment["Ecs__AgentDisconnectedAfterSeconds"] = "6";
        start.Environment["Ecs__AgentLostAfterSeconds"] = "10";
        start.Environment["ASPNETCORE_URLS"] = endpoint;
        start.Environment["Standalone__Urls"] = endpoint;
        foreach (var (key, value) in ControlPlaneSettings) start.Environment[key] = value;
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) start.Environment[key] = value;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"The control plane exited with {process.ExitCode}:\n{Log}");
            try
            {
                // Any AWS-shaped answer (here: the unsigned request is refused) means it is serving.
                using var response = await http.PostAsync(endpoint, new StringContent("{}"));
                if ((int)response.StatusCode is >= 400 and < 500) return (process, endpoint);
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The control plane did not answer at {endpoint}:\n{Log}");
            await Task.Delay(200);
        }
    }

    /// <summary>
    /// Starts a worker (the Docker-backed agent) for <paramref name="cluster"/> and waits until its
    /// container instance is registered and connected. Its containers are removed on dispose.
    /// </summary>
    /// <param name="settings">More of the worker's settings (<c>Worker__AllowPrivileged</c>...), over the defaults.</param>
    public async Task<WorkerProcess> StartWorkerAsync(
        string cluster, string? instanceId = null, int? memoryMiB = null, int? cpu = null, string? zone = null,
        IReadOnlyDictionary<string, string>? settings = null, TimeSpan clockOffset = default)
    {
        var worker = CreateWorker(cluster, instanceId ?? Guid.NewGuid().ToString("N"), memoryMiB, cpu, zone, settings, clockOffset);
        await worker.StartAsync();
        var arn = $"arn:aws:ecs:{Region}:{AccountId}:container-instance/{cluster}/{worker.InstanceId}";
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var described = await Client.EcsAsync("DescribeContainerInstances", new() { ["cluster"] = cluster, ["containerInstances"] = new JsonArray(arn) });
            if (described.Status == HttpStatusCode.OK && described.Body["containerInstances"]!.AsArray() is [var instance, ..]
                && instance!["agentConnected"]!.GetValue<bool>() && instance["status"]!.GetValue<string>() == "ACTIVE")
                return worker;
            if (worker.HasExited) throw new InvalidOperationException($"The worker exited:\n{worker.Log}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The worker did not register:\n{worker.Log}");
            await Task.Delay(300);
        }
    }

    /// <summary>
    /// A worker process for <paramref name="cluster"/>, not started yet; it ends with the test
    /// (<see cref="StopWorkersAsync"/>). <paramref name="clockOffset"/> runs it with its wall clock
    /// that far off (libfaketime), as a host whose clock drifted.
    /// </summary>
    public WorkerProcess CreateWorker(
        string cluster, string instanceId, int? memoryMiB = null, int? cpu = null, string? zone = null,
        IReadOnlyDictionary<string, string>? settings = null, TimeSpan clockOffset = default)
    {
        var environment = new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = _azurite.ConnectionString,
            ["Ecs__Region"] = Region,
            ["Ecs__AccountId"] = AccountId,
            ["Worker__MemoryMiB"] = (memoryMiB ?? 2048).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Worker__Cpu"] = (cpu ?? 2048).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Worker__AvailabilityZone"] = zone ?? "",
            ["Worker__HeartbeatSeconds"] = "2",
            ["Worker__ContainerStopTimeoutSeconds"] = "2",
        };
        foreach (var (name, value) in settings ?? new Dictionary<string, string>()) environment[name] = value;
        if (clockOffset != TimeSpan.Zero)
        {
            environment["LD_PRELOAD"] = FakeTimeLibrary();
            environment["FAKETIME"] = $"{(clockOffset < TimeSpan.Zero ? "-" : "+")}{(long)Math.Abs(clockOffset.TotalSeconds)}";
            // Only the wall clock drifts on a real host; timers and Stopwatch keep the monotonic one.
            environment["FAKETIME_DONT_FAKE_MONOTONIC"] = "1";
        }
        var worker = new WorkerProcess(WorkerAssembly(), cluster, instanceId, environment);
        lock (_workers) _workers.Add(worker);
        return worker;
    }

    private static string FakeTimeLibrary()
    {
        string[] candidates = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"];
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException("libfaketime is missing: bash scripts/install-deps.sh installs Debian's faketime");
    }

    /// <summary>The control plane's last <paramref name="lines"/> log lines that mention <paramref name="text"/>, for a failure message.</summary>
    public string LogLinesMentioning(string text, int lines = 80)
        => string.Join('\n', Log.Split('\n').Where(l => l.Contains(text, StringComparison.Ordinal)).TakeLast(lines));

    /// <summary>The last <paramref name="lines"/> lines of the running workers' logs that mention <paramref name="text"/>, for a failure message.</summary>
    public string WorkerLogLinesMentioning(string text, int lines = 80)
    {
        lock (_workers)
        {
            return string.Join('\n', _workers.SelectMany(w => w.Log.Split('\n')).Where(l => l.Contains(text, StringComparison.Ordinal)).TakeLast(lines));
        }
    }

    /// <summary>The last <paramref name="lines"/> lines of each running worker's log, for a failure message.</summary>
    public string WorkerLogTails(int lines = 60)
    {
        lock (_workers)
        {
            return string.Join('\n', _workers.Select(w => $"--- worker {w.InstanceId}:\n{string.Join('\n', w.Log.Split('\n').TakeLast(lines))}"));
        }
    }

    /// <summary>
    /// Stops every worker started so far and removes its containers: a test's workers end with the
    /// test, so later tests do not share the machine with them.
    /// </summary>
    public async Task StopWorkersAsync()
    {
        WorkerProcess[] workers;
        lock (_workers)
        {
            workers = [.. _workers];
            _workers.Clear();
        }
        foreach (var worker in workers) await worker.DisposeAsync();
    }

    public async Task DisposeAsync()
    {
        await StopWorkersAsync();
        foreach (var other in _others)
        {
            if (!other.HasExited) other.Kill(entireProcessTree: true);
            other.Dispose();
        }
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        Client?.Dispose();
        await _azurite.DisposeAsync();
    }

    /// <summary>
    /// <c>aws ecs wait &lt;waiter&gt;</c> for <paramref name="names"/> (services or tasks), run once a
    /// describe call shows what the waiter waits for. The CLI's waiters sleep 6 s (tasks) or 15 s
    /// (services) before they look again; polling first keeps the tests from sleeping through
    /// those delays, while the waiter itself still has to agree on its first look.
    /// </summary>
    public async Task<CliResult> WaitAsync(string waiter, string cluster, IReadOnlyList<string> names, int seconds = 150)
    {
        var (describe, option, member) = waiter.StartsWith("services-", StringComparison.Ordinal)
            ? ("DescribeServices", "--services", "services")
            : ("DescribeTasks", "--tasks", "tasks");
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            var described = await Client.EcsAsync(describe, new() { ["cluster"] = cluster, [member] = new JsonArray([.. names.Select(n => JsonValue.Create(n))]) });
            if (described.Status == HttpStatusCode.OK && Settled(waiter, described.Body[member]!.AsArray())) break;
            await Task.Delay(300);
        }
        return await EcsAsync(["wait", waiter, "--cluster", cluster, option, .. names]);
    }

    // The acceptors of botocore's ECS waiters (success, or a failure the waiter reports at once).
    private static bool Settled(string waiter, JsonArray items)
    {
        static string Str(JsonNode? node, string name) => node![name]!.GetValue<string>();
        static int Int(JsonNode? node, string name) => node![name]!.GetValue<int>();
        return waiter switch
        {
            "services-stable" => items.All(s => s!["deployments"]!.AsArray().Count == 1 && Int(s, "runningCount") == Int(s, "desiredCount")),
            "services-inactive" => items.All(s => Str(s, "status") == "INACTIVE"),
            "tasks-running" => items.All(t => Str(t, "lastStatus") == "RUNNING") || items.Any(t => Str(t, "lastStatus") == "STOPPED"),
            "tasks-stopped" => items.All(t => Str(t, "lastStatus") == "STOPPED"),
            _ => throw new ArgumentException($"Unknown waiter {waiter}", nameof(waiter)),
        };
    }

    /// <summary>ListTasks (all pages) through the in-process client: for polling.</summary>
    public async Task<List<string>> ListTaskArnsAsync(string cluster, string? service = null, string desiredStatus = "RUNNING")
    {
        var arns = new List<string>();
        string? next = null;
        do
        {
            var request = new JsonObject { ["cluster"] = cluster, ["desiredStatus"] = desiredStatus };
            if (service is not null) request["serviceName"] = service;
            if (next is not null) request["nextToken"] = next;
            var page = await Client.EcsOkAsync("ListTasks", request);
            arns.AddRange(page["taskArns"]!.AsArray().Select(a => a!.GetValue<string>()));
            next = page["nextToken"]?.GetValue<string>();
        }
        while (next is not null);
        return arns;
    }

    /// <summary>DescribeTasks through the in-process client, 100 at a time: for polling.</summary>
    public async Task<List<JsonNode>> DescribeTasksAsync(string cluster, IEnumerable<string> arns)
    {
        var tasks = new List<JsonNode>();
        foreach (var chunk in arns.Chunk(100))
        {
            var described = await Client.EcsOkAsync("DescribeTasks", new() { ["cluster"] = cluster, ["tasks"] = new JsonArray([.. chunk.Select(a => JsonValue.Create(a))]) });
            tasks.AddRange(described["tasks"]!.AsArray().Select(t => t!));
        }
        return tasks;
    }

    /// <summary>DescribeServices of one service through the in-process client: for polling.</summary>
    public async Task<JsonNode> DescribeServiceAsync(string cluster, string service)
        => (await Client.EcsOkAsync("DescribeServices", new() { ["cluster"] = cluster, ["services"] = new JsonArray(service) }))["services"]![0]!;

    /// <summary>Runs <c>aws ecs ...</c> against this endpoint with the development credentials.</summary>
    public Task<CliResult> EcsAsync(params string[] args) => AwsAsync(["ecs", .. args]);

    public Task<CliResult> AwsAsync(IEnumerable<string> args, IDictionary<string, string>? environment = null, string? endpoint = null)
        => AwsCliAsync(endpoint ?? Endpoint, args, environment);

    /// <summary>Runs <c>aws ...</c> against <paramref name="endpoint"/> with the development credentials.</summary>
    public static async Task<CliResult> AwsCliAsync(string endpoint, IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("aws", [.. args, "--endpoint-url", endpoint, "--output", "json"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["AWS_ACCESS_KEY_ID"] = AccessKeyId;
        start.Environment["AWS_SECRET_ACCESS_KEY"] = SecretAccessKey;
        start.Environment["AWS_DEFAULT_REGION"] = Region;
        start.Environment["AWS_PAGER"] = "";
        start.Environment["AWS_MAX_ATTEMPTS"] = "1";
        start.Environment.Remove("AWS_PROFILE");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs a python script (boto3) with the endpoint and credentials in its environment.</summary>
    public async Task<CliResult> PythonAsync(string script, params string[] args)
    {
        var start = new ProcessStartInfo("python3", [Path.Combine(AppContext.BaseDirectory, "Fixtures", script), .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["ECS_ENDPOINT"] = Endpoint;
        start.Environment["AWS_ACCESS_KEY_ID"] = AccessKeyId;
        start.Environment["AWS_SECRET_ACCESS_KEY"] = SecretAccessKey;
        start.Environment["AWS_DEFAULT_REGION"] = Region;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    private static string FunctionsAssembly()
    {
        // tests/EndToEnd.Tests/bin/<Configuration>/net10.0 → src/Functions/bin/<Configuration>/net10.0
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = testOutput.Parent!.Name;
        var root = testOutput.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
        var path = Path.Combine(root, "src", "Functions", "bin", configuration, "net10.0", "Serverless.Functions.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("Build src/Functions first", path);
    }

    private static string WorkerAssembly()
    {
        var functions = FunctionsAssembly();
        var path = functions.Replace(Path.Combine("src", "Functions"), Path.Combine("src", "Worker")).Replace("Serverless.Functions.dll", "Serverless.Worker.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException("Build src/Worker first", path);
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public JsonNode Json => ExitCode == 0
        ? JsonNode.Parse(Stdout.Length == 0 ? "{}" : Stdout)!
        : throw new InvalidOperationException($"aws exited with {ExitCode}: {Stderr}");

    /// <summary>The AWS error code the CLI printed, e.g. <c>ClusterNotFoundException</c>.</summary>
    public string? ErrorCode
    {
        get
        {
            var marker = "An error occurred (";
            var start = Stderr.IndexOf(marker, StringComparison.Ordinal);
            if (start < 0) return null;
            start += marker.Length;
            return Stderr[start..Stderr.IndexOf(')', start)];
        }
    }
}

// The end-to-end classes mostly wait on the system, so they run in three collections side by side,
// each with its own control plane (and Azurite): a class's tests still run one after another, and
// every test works in clusters of its own. The split balances the collections' run times.
[CollectionDefinition("control plane")]
public sealed class ControlPlaneCollection : ICollectionFixture<ControlPlaneFixture>;

[CollectionDefinition("control plane 2")]
public sealed class SecondControlPlaneCollection : ICollectionFixture<ControlPlaneFixture>;

[CollectionDefinition("control plane 3")]
public sealed class ThirdControlPlaneCollection : ICollectionFixture<ControlPlaneFixture>;

[CollectionDefinition("control plane 4")]
public sealed class FourthControlPlaneCollection : ICollectionFixture<ControlPlaneFixture>;

[CollectionDefinition("control plane 5")]
public sealed class FifthControlPlaneCollection : ICollectionFixture<ControlPlaneFixture>;

[CollectionDefinition("control plane 6")]
public sealed class SixthControlPlaneCollection : ICollectionFixture<ControlPlaneFixture>;
