using System.Diagnostics;
using Xunit.Abstractions;

namespace Serverless.EndToEnd.Tests.WebConsole;

/// <summary>
/// The web console at /console in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core
/// from src/Console/node_modules; no browser is downloaded) against a control plane and a worker on real
/// Docker. The browser steps are in src/Console/test/console.test.mjs; this test gives them a cluster with
/// a container instance and reports their output.
/// </summary>
[Collection("control plane 4")]
public sealed class ConsoleBrowserTests(ControlPlaneFixture plane, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Chromium = "/usr/bin/chromium";

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => plane.StopWorkersAsync();

    [Fact]
    public async Task The_console_signs_in_follows_a_service_scales_it_shows_a_tasks_logs_follows_a_forced_deployment_and_rolls_one_back()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: bash scripts/install-deps.sh installs Debian's chromium");
        var console = ConsoleDirectory();
        Assert.True(File.Exists(Path.Combine(console, "node_modules", "playwright-core", "package.json")),
            "src/Console/node_modules is missing: building src/Functions runs npm ci there");

        var cluster = $"console-{Guid.NewGuid():N}"[..24];
        Assert.Equal(0, (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).ExitCode);
        // Its tasks need no task metadata endpoint; short metrics periods put the instance's use on screen soon.
        await plane.StartWorkerAsync(cluster, settings: new Dictionary<string, string>
        {
            ["Worker__MetadataPort"] = "-1",
            ["Worker__MetricsSampleSeconds"] = "2",
            ["Worker__MetricsPeriodSeconds"] = "10",
        });

        var start = new ProcessStartInfo("node", [Path.Combine("test", "console.test.mjs")])
        {
            WorkingDirectory = console,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["CONSOLE_ENDPOINT"] = plane.Endpoint;
        start.Environment["CONSOLE_CLUSTER"] = cluster;
        start.Environment["CONSOLE_CHROMIUM"] = Chromium;
        start.Environment["AWS_ACCESS_KEY_ID"] = ControlPlaneFixture.AccessKeyId;
        start.Environment["AWS_SECRET_ACCESS_KEY"] = ControlPlaneFixture.SecretAccessKey;
        start.Environment["AWS_DEFAULT_REGION"] = ControlPlaneFixture.Region;
        start.Environment.Remove("AWS_PROFILE");
        // CONSOLE_SCREENSHOTS, when set (to docs/console, say), is passed on: the script saves the main views there.
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
        }
        var steps = $"{await stdout}\n{await stderr}";
        // Each step with its time, in the test's output (dotnet test --logger "console;verbosity=detailed").
        output.WriteLine(steps);
        Assert.True(process.HasExited && process.ExitCode == 0,
            $"The browser test failed:\n{steps}\n{plane.WorkerLogTails(30)}");
    }

    private static string ConsoleDirectory()
    {
        // tests/EndToEnd.Tests/bin/<Configuration>/net10.0 → src/Console
        var root = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        return Path.Combine(root, "src", "Console");
    }
}
