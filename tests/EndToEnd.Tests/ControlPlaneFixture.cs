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
public sealed class ControlPlaneFixture : IAsyncLifetime
{
    public const string AccessKeyId = "AKIALOCALDEVELOPMENT";
    public const string SecretAccessKey = "local-development-secret-key-not-for-production";
    public const string Region = "us-east-1";
    public const string AccountId = "000000000000";

    private readonly AzuriteFixture _azurite = new();
    private readonly StringBuilder _log = new();
    private readonly List<WorkerProcess> _workers = [];
    private readonly List<Process> _others = [];
    private Process? _process;

    public string Endpoint { get; private set; } = "";

    public string Log { get { lock (_log) return _log.ToString(); } }

    public async Task InitializeAsync()
    {
        await _azurite.InitializeAsync();
        (_process, Endpoint) = await StartControlPlaneAsync(_log);
    }

    /// <summary>The storage account every process of this fixture shares.</summary>
    public string StorageConnectionString => _azurite.ConnectionString;

    /// <summary>
    /// Another control plane on the same storage (a second Functions instance): returns its
    /// endpoint. It runs the same queue and timer functions, so both reconcile concurrently.
    /// </summary>
    public async Task<string> StartAnotherControlPlaneAsync()
    {
        var (process, endpoint) = await StartControlPlaneAsync(_log);
        lock (_others) _others.Add(process);
        return endpoint;
    }

    private async Task<(Process, string)> StartControlPlaneAsync(StringBuilder log)
    {
        var endpoint = $"http://127.0.0.1:{FreePort()}";
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
        // Workers heartbeat every 2 s in these tests; one silent for 10 s is lost.
        start.Environment["Ecs__AgentDisconnectedAfterSeconds"] = "6";
        start.Environment["Ecs__AgentLostAfterSeconds"] = "10";
        start.Environment["ASPNETCORE_URLS"] = endpoint;
        start.Environment["Standalone__Urls"] = endpoint;
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
        string cluster, string? instanceId = null, int? memoryMiB = null, int? cpu = null, string? zone = null, IReadOnlyDictionary<string, string>? settings = null)
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
        var worker = new WorkerProcess(WorkerAssembly(), cluster, instanceId ?? Guid.NewGuid().ToString("N"), environment);
        lock (_workers) _workers.Add(worker);
        await worker.StartAsync();
        var arn = $"arn:aws:ecs:{Region}:{AccountId}:container-instance/{cluster}/{worker.InstanceId}";
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var described = await EcsAsync("describe-container-instances", "--cluster", cluster, "--container-instances", arn);
            if (described.ExitCode == 0 && described.Json["containerInstances"]!.AsArray() is [var instance, ..]
                && instance!["agentConnected"]!.GetValue<bool>() && instance["status"]!.GetValue<string>() == "ACTIVE")
                return worker;
            if (worker.HasExited) throw new InvalidOperationException($"The worker exited:\n{worker.Log}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The worker did not register:\n{worker.Log}");
            await Task.Delay(300);
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
            ? ("describe-services", "--services", "services")
            : ("describe-tasks", "--tasks", "tasks");
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            var described = await EcsAsync([describe, "--cluster", cluster, option, .. names]);
            if (described.ExitCode == 0 && Settled(waiter, described.Json[member]!.AsArray())) break;
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

    /// <summary>Runs <c>aws ecs ...</c> against this endpoint with the development credentials.</summary>
    public Task<CliResult> EcsAsync(params string[] args) => AwsAsync(["ecs", .. args]);

    public async Task<CliResult> AwsAsync(IEnumerable<string> args, IDictionary<string, string>? environment = null, string? endpoint = null)
    {
        var start = new ProcessStartInfo("aws", [.. args, "--endpoint-url", endpoint ?? Endpoint, "--output", "json"])
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

    private static int FreePort()
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

[CollectionDefinition("control plane")]
public sealed class ControlPlaneCollection : ICollectionFixture<ControlPlaneFixture>;
