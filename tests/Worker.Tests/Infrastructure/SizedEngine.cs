using System.Diagnostics;

namespace Serverless.Worker.Tests.Infrastructure;

/// <summary>
/// A second Docker engine that can size writable layers (<c>scripts/sized-engine.sh</c>: its own dockerd
/// on a loop-mounted xfs with pquota, or btrfs where the kernel has no xfs quotas), started for one test
/// class and removed with it, whatever happened. The machine's own engine is not touched.
/// </summary>
public sealed class SizedEngine : IAsyncLifetime
{
    private readonly string _directory = $"/tmp/ecs-se-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>The engine's endpoint, for <see cref="WorkerOptions.DockerEndpoint"/>.</summary>
    public string Endpoint { get; private set; } = "";

    /// <summary>Its storage driver: <c>overlay2</c> (on xfs) or <c>btrfs</c>.</summary>
    public string Driver { get; private set; } = "";

    /// <summary>
    /// Why this machine cannot make such an engine (then the tests are skipped), or null: only root with
    /// loop devices and a kernel with xfs or btrfs can. Anything else that fails at start fails the tests.
    /// </summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "a sized Docker engine needs Linux";
        if (!IsRoot()) return "a sized Docker engine needs root (mount, losetup, a second dockerd)";
        if (!File.Exists("/dev/loop-control")) return "a sized Docker engine needs loop devices (/dev/loop-control is missing)";
        var filesystems = File.Exists("/proc/filesystems") ? File.ReadAllText("/proc/filesystems") : "";
        if (!filesystems.Contains("\txfs") && !filesystems.Contains("\tbtrfs")) return "the kernel has neither xfs nor btrfs";
        return null;
    }

    private static bool IsRoot()
        => File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries) is [_, "0", ..];

    public async Task InitializeAsync()
    {
        if (Unavailable() is not null) return; // the tests are skipped (SizedEngineFactAttribute)
        var (status, output) = await RunAsync("start", TimeSpan.FromMinutes(5));
        if (status != 0)
            throw new InvalidOperationException($"scripts/sized-engine.sh start {_directory} exited with {status}:\n{output}");
        foreach (var line in output.Split('\n'))
        {
            if (line.StartsWith("ENDPOINT=", StringComparison.Ordinal)) Endpoint = line["ENDPOINT=".Length..].Trim();
            if (line.StartsWith("DRIVER=", StringComparison.Ordinal)) Driver = line["DRIVER=".Length..].Trim();
        }
        if (Endpoint.Length == 0) throw new InvalidOperationException($"scripts/sized-engine.sh start printed no ENDPOINT:\n{output}");
    }

    public async Task DisposeAsync()
    {
        if (Unavailable() is not null) return;
        var (status, output) = await RunAsync("stop", TimeSpan.FromMinutes(3));
        if (status != 0) throw new InvalidOperationException($"scripts/sized-engine.sh stop {_directory} exited with {status}:\n{output}");
    }

    private async Task<(int Status, string Output)> RunAsync(string action, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("bash", [Script(), action, _directory])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"scripts/sized-engine.sh {action} {_directory} ran for more than {timeout}:\n{await stderr}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    private static string Script()
    {
        // tests/Worker.Tests/bin/<Configuration>/net10.0 → the repository root
        var root = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        return Path.Combine(root, "scripts", "sized-engine.sh");
    }
}

/// <summary>A fact that needs <see cref="SizedEngine"/>: skipped, saying why, only where this machine cannot make one.</summary>
public sealed class SizedEngineFactAttribute : FactAttribute
{
    public SizedEngineFactAttribute()
    {
        if (SizedEngine.Unavailable() is { } reason) Skip = reason;
    }
}
