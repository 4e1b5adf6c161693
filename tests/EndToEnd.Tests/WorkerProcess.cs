using System.Diagnostics;
using System.Text;

namespace Serverless.EndToEnd.Tests;

/// <summary>A worker process under test: can be killed (-9) and started again with the same identity.</summary>
public sealed class WorkerProcess(string assembly, string cluster, string instanceId, IReadOnlyDictionary<string, string> environment) : IAsyncDisposable
{
    private readonly StringBuilder _log = new();
    private readonly string _stateDirectory = Directory.CreateTempSubdirectory("ecs-worker-").FullName;
    private Process? _process;

    public string Cluster => cluster;
    public string InstanceId => instanceId;
    public bool HasExited => _process?.HasExited ?? true;
    public string Log { get { lock (_log) return _log.ToString(); } }

    public Task StartAsync()
    {
        var start = new ProcessStartInfo("dotnet", [assembly])
        {
            WorkingDirectory = Path.GetDirectoryName(assembly)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment) start.Environment[key] = value;
        start.Environment["Worker__Cluster"] = cluster;
        start.Environment["Worker__InstanceId"] = instanceId;
        start.Environment["Worker__StateDirectory"] = _stateDirectory;
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        return Task.CompletedTask;
    }

    /// <summary><c>kill -9</c>: no chance to clean up, as a crashed host.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
        // Whatever this worker started goes with it, so test runs leave no containers behind.
        await Docker.RemoveByLabelAsync($"ecs-worker.instance-id={instanceId}");
        try { Directory.Delete(_stateDirectory, recursive: true); } catch (IOException) { }
    }
}

/// <summary>The docker CLI, to observe what the worker did as a user would.</summary>
public static class Docker
{
    public static async Task<(int ExitCode, string Stdout)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("docker", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, (await stdout).Trim());
    }

    public static async Task RemoveByLabelAsync(string label)
    {
        var (_, ids) = await RunAsync("ps", "-aq", "--filter", $"label={label}");
        foreach (var id in ids.Split('\n', StringSplitOptions.RemoveEmptyEntries)) await RunAsync("rm", "-f", id);
        // And the awsvpc tasks' networks, once their containers are gone.
        var (_, networks) = await RunAsync("network", "ls", "-q", "--filter", $"label={label}");
        foreach (var id in networks.Split('\n', StringSplitOptions.RemoveEmptyEntries)) await RunAsync("network", "rm", id);
    }
}
