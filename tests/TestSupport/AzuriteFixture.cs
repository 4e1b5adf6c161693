using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Azure.Data.Tables;
using Azure.Storage.Queues;
using Serverless.TestSupport.Storage;
using Xunit;

namespace Serverless.TestSupport;

/// <summary>
/// A private Azurite (Tables, Queues, Blobs) in memory, on ports nobody else holds, for one test
/// collection or class. Started by <see cref="InitializeAsync"/>, which returns only once the table
/// and queue endpoints answer; stopped, with its whole process tree, by <see cref="DisposeAsync"/>.
/// </summary>
/// <remarks>
/// <para>
/// xunit 2 only honours a <c>[CollectionDefinition]</c> declared in the test assembly itself, so
/// this library provides the fixture and each test project declares the collection once:
/// </para>
/// <code>
/// [CollectionDefinition(Name)]
/// public sealed class AzuriteCollection : ICollectionFixture&lt;AzuriteFixture&gt;
/// {
///     public const string Name = "azurite";
/// }
///
/// [Collection(AzuriteCollection.Name)]
/// public sealed class ClusterStoreTests(AzuriteFixture azurite)
/// {
///     private readonly string _prefix = TestNames.Unique(nameof(ClusterStoreTests));
/// }
/// </code>
/// <para>
/// That gives one Azurite per test assembly, shared by every class in the collection (which xunit
/// runs one after another); each class keeps to its own tables and queues through a
/// <see cref="TestNames.Unique"/> prefix. A class that wants its own server, and to run in parallel
/// with the others, takes <c>IClassFixture&lt;AzuriteFixture&gt;</c> instead. Other fixtures may
/// own one too: <c>new AzuriteFixture()</c>, then <see cref="InitializeAsync"/> and
/// <see cref="DisposeAsync"/>.
/// </para>
/// <para>
/// Clients reach it through a <see cref="StorageProxy"/> that refuses what Azure refuses and Azurite
/// accepts (<see cref="AzureLimits"/>: 15 comparisons per filter, 100 operations and 4 MiB per batch,
/// 1 MiB entities, 64 KiB properties and messages, ...), so every test runs against Azure's limits.
/// <see cref="ConnectionString"/>, <see cref="TableEndpoint"/> and <see cref="QueueEndpoint"/> name the
/// proxy; <see cref="Faults"/> injects throttling, timeouts and outages; <see cref="RestartAsync"/>
/// restarts Azurite behind the same endpoints. <see cref="DirectConnectionString"/> bypasses the proxy.
/// </para>
/// <para>
/// Azurite is found on <c>PATH</c> (<c>scripts/install-deps.sh</c> installs it), or at
/// <c>AZURITE_PATH</c>. Its console output goes to <see cref="LogPath"/> for diagnosis.
/// </para>
/// </remarks>
public sealed partial class AzuriteFixture : IAsyncLifetime
{
    /// <summary>
    /// Whether the data lives on disk (in this fixture's folder) rather than in memory, so that
    /// <see cref="RestartAsync"/> brings it back, as a storage account keeps its data across an outage.
    /// </summary>
    public bool Persistent { get; init; }

    /// <summary>Azurite's well-known development account.</summary>
    public const string AccountName = "devstoreaccount1";

    /// <summary>Azurite's well-known development key (public, documented by Microsoft).</summary>
    public const string AccountKey =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    // $0 is Azurite, $@ its arguments. A background job's stdin is /dev/null, so the watcher reads
    // our pipe through fd 3; `read` is a builtin, so killing the watcher leaves no reader behind.
    private const string WatchdogScript = """
        exec 3<&0
        "$0" "$@" </dev/null 3<&- &
        child=$!
        ( while read -r _ <&3; do :; done; kill "$child" 2>/dev/null ) &
        watcher=$!
        exec 3<&-
        wait "$child"
        status=$?
        kill "$watcher" 2>/dev/null
        exit "$status"
        """;

    private readonly object _logLock = new();
    private readonly Dictionary<string, Uri> _endpoints = new(StringComparer.Ordinal);
    private readonly StringBuilder _recentOutput = new();
    private TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private StorageProxy? _proxy;
    private Process? _process;
    private StreamWriter? _log;
    private string? _workspace;

    /// <summary>
    /// The full connection string, with explicit endpoints: <c>UseDevelopmentStorage=true</c> would
    /// mean the fixed ports 10000-10002, which this server does not use.
    /// </summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>Azurite itself, without the proxy: no limits enforced, no faults.</summary>
    public string DirectConnectionString { get; private set; } = "";

    public Uri BlobEndpoint => Endpoint("Blob");

    /// <summary>The queue endpoint clients use: the proxy's.</summary>
    public Uri QueueEndpoint => new($"{Proxy.QueueRoot}{AccountName}");

    /// <summary>The table endpoint clients use: the proxy's.</summary>
    public Uri TableEndpoint => new($"{Proxy.TableRoot}{AccountName}");

    /// <summary>The proxy in front of Azurite's table and queue endpoints.</summary>
    public StorageProxy Proxy => _proxy ?? throw new InvalidOperationException("Azurite is not started: await InitializeAsync() first.");

    /// <summary>Throttling, timeouts and outages to inject into what the proxy forwards.</summary>
    public StorageFaults Faults => Proxy.Faults;

    /// <summary>Azurite's console output (access log included), kept after the fixture is disposed.</summary>
    public string LogPath { get; private set; } = "";

    /// <summary>A table service client for this server.</summary>
    public TableServiceClient CreateTableServiceClient() => new(ConnectionString);

    /// <summary>
    /// A queue service client for this server, with messages as plain text
    /// (<see cref="QueueMessageEncoding.None"/>), the way the control plane writes them.
    /// </summary>
    public QueueServiceClient CreateQueueServiceClient()
        => new(ConnectionString, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None });

    public async Task InitializeAsync()
    {
        if (_process is not null) throw new InvalidOperationException("This Azurite is already started.");
        try
        {
            await StartAzuriteAsync();
            _proxy = new StorageProxy();
            await _proxy.StartAsync(ServiceRoot("Table"), ServiceRoot("Queue"), CancellationToken.None);
            ConnectionString =
                $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};" +
                $"BlobEndpoint={BlobEndpoint};QueueEndpoint={QueueEndpoint};TableEndpoint={TableEndpoint};";
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Stops Azurite and starts it again behind the same proxy endpoints, as a storage endpoint that
    /// restarts: connections in flight break; what was stored is gone, unless the fixture is
    /// <see cref="Persistent"/> (then Azurite is asked to stop, so it saves before it exits).
    /// </summary>
    public async Task RestartAsync()
    {
        await StopAzuriteAsync();
        await StartAzuriteAsync();
        Proxy.Retarget(ServiceRoot("Table"), ServiceRoot("Queue"));
    }

    private async Task StartAzuriteAsync()
    {
        lock (_endpoints) _endpoints.Clear();
        _listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var azurite = LocateAzurite();
        var root = Path.Combine(Path.GetTempPath(), "ecs-serverless-azurite");
        Directory.CreateDirectory(root);
        if (_workspace is null)
        {
            // A restart keeps the first start's folder and log.
            PruneOldLogs(root);
            var id = $"{Environment.ProcessId}-{Guid.NewGuid():N}"[..20];
            _workspace = Directory.CreateDirectory(Path.Combine(root, id)).FullName;
            LogPath = Path.Combine(root, $"azurite-{id}.log");
            _log = new StreamWriter(LogPath, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = true };
        }

        // In memory, unless persistent: then on disk in this fixture's own folder (--location; Azurite
        // refuses it with --inMemoryPersistence). The working directory is that fresh folder either way.
        // Port 0 everywhere: the kernel picks free ports and Azurite prints the ones it got, so two
        // test processes never race for a port the way "probe a free port, then pass it" would.
        string[] azuriteArgs =
        [
            .. Persistent ? ["--location", Path.Combine(_workspace, "data")] : new[] { "--inMemoryPersistence" },
            "--skipApiVersionCheck", "--loose", "--disableTelemetry",
            "--blobHost", "127.0.0.1", "--blobPort", "0",
            "--queueHost", "127.0.0.1", "--queuePort", "0",
            "--tableHost", "127.0.0.1", "--tablePort", "0",
        ];

        // Started through a small shell that watches our stdin pipe: when this process goes away for
        // any reason, a crash or a SIGKILL from a hang timeout included, the pipe closes and the shell
        // stops Azurite; when Azurite exits on its own, so does the shell. Without it, an aborted test
        // run would leave servers behind.
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _workspace,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(WatchdogScript);
        start.ArgumentList.Add(azurite);
        foreach (var arg in azuriteArgs) start.ArgumentList.Add(arg);

        WriteLog($"# {azurite} {string.Join(' ', azuriteArgs)}");
        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnOutput(e.Data);
        _process.ErrorDataReceived += (_, e) => OnOutput(e.Data);
        var listening = _listening;
        _process.Exited += (_, _) => listening.TrySetException(
            new InvalidOperationException($"Azurite exited before it was listening.{Diagnosis()}"));
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var timeout = new CancellationTokenSource(StartTimeout);
        try
        {
            await listening.Task.WaitAsync(timeout.Token);
            DirectConnectionString =
                $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};" +
                $"BlobEndpoint={BlobEndpoint};QueueEndpoint={Endpoint("Queue")};TableEndpoint={Endpoint("Table")};";
            await WaitUntilAnsweringAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            await StopAzuriteAsync();
            throw new TimeoutException($"Azurite did not answer within {StartTimeout.TotalSeconds:0} s.{Diagnosis()}");
        }
        catch
        {
            await StopAzuriteAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        if (_proxy is not null)
        {
            await _proxy.DisposeAsync();
            _proxy = null;
        }
        await StopAzuriteAsync();
        lock (_logLock)
        {
            _log?.Dispose();
            _log = null;
        }
        if (_workspace is not null)
        {
            try
            {
                Directory.Delete(_workspace, recursive: true);
            }
            catch (IOException)
            {
                // A leftover empty folder in the temp directory is harmless.
            }
            _workspace = null;
        }
    }

    private async Task StopAzuriteAsync()
    {
        if (_process is { } process)
        {
            try
            {
                if (Persistent && !process.HasExited)
                {
                    // Closing the watchdog's pipe makes it send Azurite SIGTERM: it saves, then exits.
                    process.StandardInput.Close();
                    using var graceful = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                    try { await process.WaitForExitAsync(graceful.Token); } catch (OperationCanceledException) { }
                }
                if (!process.HasExited) process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
            process.Dispose();
            _process = null;
        }
    }

    private async Task WaitUntilAnsweringAsync(CancellationToken cancellationToken)
    {
        // No SDK retries: this loop is the retry, and it must notice a dead process quickly.
        var tableOptions = new TableClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromSeconds(5) } };
        var queueOptions = new QueueClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromSeconds(5) } };
        var tables = new TableServiceClient(DirectConnectionString, tableOptions);
        var queues = new QueueServiceClient(DirectConnectionString, queueOptions);
        while (true)
        {
            if (_process is not { HasExited: false })
            {
                throw new InvalidOperationException($"Azurite exited while starting.{Diagnosis()}");
            }
            try
            {
                await foreach (var _ in tables.QueryAsync(maxPerPage: 1, cancellationToken: cancellationToken)) break;
                await foreach (var _ in queues.GetQueuesAsync(cancellationToken: cancellationToken)) break;
                return;
            }
            catch (Exception e) when (e is Azure.RequestFailedException or HttpRequestException or IOException
                                              or OperationCanceledException
                                          && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    private void OnOutput(string? line)
    {
        if (line is null) return;
        WriteLog(line);
        var match = ListeningLine().Match(line);
        if (!match.Success) return;
        lock (_endpoints)
        {
            // Azurite prints the service root; clients address the account beneath it.
            _endpoints[match.Groups["service"].Value] = new Uri($"{match.Groups["url"].Value.TrimEnd('/')}/{AccountName}");
            if (_endpoints.Count == 3) _listening.TrySetResult();
        }
    }

    private void WriteLog(string line)
    {
        lock (_logLock)
        {
            _log?.WriteLine(line);
            _recentOutput.AppendLine(line);
            if (_recentOutput.Length > 8192) _recentOutput.Remove(0, _recentOutput.Length - 8192);
        }
    }

    private string Diagnosis()
    {
        lock (_logLock)
        {
            return $" Log: {LogPath}\n{_recentOutput}";
        }
    }

    private Uri ServiceRoot(string service) => new(Endpoint(service).GetLeftPart(UriPartial.Authority));

    private Uri Endpoint(string service)
    {
        lock (_endpoints)
        {
            return _endpoints.TryGetValue(service, out var uri)
                ? uri
                : throw new InvalidOperationException("Azurite is not started: await InitializeAsync() first.");
        }
    }

    private static string LocateAzurite()
    {
        var configured = Environment.GetEnvironmentVariable("AZURITE_PATH");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return File.Exists(configured)
                ? configured
                : throw new InvalidOperationException($"AZURITE_PATH is '{configured}', which does not exist.");
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, "azurite");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException(
            "Azurite was not found on PATH. Install it with: bash scripts/install-deps.sh (or: npm install -g azurite).");
    }

    private static void PruneOldLogs(string root)
    {
        // Logs are kept for diagnosis after a run, but not forever.
        var cutoff = DateTime.UtcNow.AddDays(-1);
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos())
        {
            try
            {
                if (entry.LastWriteTimeUtc >= cutoff) continue;
                if (entry is DirectoryInfo directory) directory.Delete(recursive: true);
                else entry.Delete();
            }
            catch (IOException)
            {
                // Another test process may own it; it is only housekeeping.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    [GeneratedRegex(@"Azurite (?<service>Blob|Queue|Table) service is successfully listening at (?<url>http://\S+)")]
    private static partial Regex ListeningLine();
}
