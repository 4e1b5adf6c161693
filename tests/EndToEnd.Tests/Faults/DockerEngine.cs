using System.Diagnostics;

namespace Serverless.EndToEnd.Tests.Faults;

/// <summary>The Docker daemon itself, for the fault of restarting it under running tasks.</summary>
public static class DockerEngine
{
    /// <summary>
    /// Stops dockerd (SIGTERM: it stops the containers it runs, as an engine upgrade or a host
    /// service restart does) and starts it again with <c>scripts/install-deps.sh</c>, which starts
    /// the engine when it does not answer and returns once it does.
    /// </summary>
    public static async Task RestartAsync()
    {
        var (_, pids) = await RunAsync("pidof", "dockerd");
        foreach (var pid in pids.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            await RunAsync("kill", "-TERM", pid);
        }
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await RunAsync("pidof", "dockerd")).ExitCode == 0)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("dockerd did not stop within 60 s");
            await Task.Delay(200);
        }
        var (exit, output) = await RunAsync("bash", Path.Combine(RepositoryRoot(), "scripts", "install-deps.sh"));
        if (exit != 0) throw new InvalidOperationException($"install-deps.sh could not start dockerd again:\n{output}");
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, ((await stdout) + (await stderr)).Trim());
    }

    private static string RepositoryRoot()
    {
        // tests/EndToEnd.Tests/bin/<Configuration>/net10.0 → the repository root.
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Serverless.sln"))) directory = directory.Parent;
        return directory?.FullName ?? throw new DirectoryNotFoundException("Serverless.sln not found above the test output");
    }
}
