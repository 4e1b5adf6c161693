using System.Diagnostics;
using System.Text;

namespace Serverless.EndToEnd.Tests.LoadBalancing;

/// <summary>The load balancer data plane (src/LoadBalancer) as a process on the fixture's storage; killed on dispose.</summary>
public sealed class LoadBalancerProcess : IAsyncDisposable
{
    private readonly StringBuilder _log = new();
    private readonly Process _process;

    private LoadBalancerProcess(Process process) => _process = process;

    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <param name="settings">Settings over the defaults here (e.g. <c>LoadBalancer__RefreshMilliseconds</c>, <c>AzureWebJobsStorage</c>).</param>
    public static LoadBalancerProcess Start(ControlPlaneFixture plane, IReadOnlyDictionary<string, string>? settings = null)
    {
        // tests/EndToEnd.Tests/bin/<Configuration>/net10.0 → src/LoadBalancer/bin/<Configuration>/net10.0
        var output = new DirectoryInfo(AppContext.BaseDirectory);
        var root = output.Parent!.Parent!.Parent!.Parent!.Parent!.FullName;
        var assembly = Path.Combine(root, "src", "LoadBalancer", "bin", output.Parent.Name, "net10.0", "Serverless.LoadBalancer.dll");
        if (!File.Exists(assembly)) throw new FileNotFoundException("Build src/LoadBalancer first", assembly);
        var start = new ProcessStartInfo("dotnet", [assembly])
        {
            WorkingDirectory = Path.GetDirectoryName(assembly)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["AzureWebJobsStorage"] = plane.StorageConnectionString;
        start.Environment["Ecs__Region"] = ControlPlaneFixture.Region;
        start.Environment["Ecs__AccountId"] = ControlPlaneFixture.AccountId;
        start.Environment["LoadBalancer__RefreshMilliseconds"] = "200";
        foreach (var (name, value) in settings ?? new Dictionary<string, string>()) start.Environment[name] = value;
        var balancer = new LoadBalancerProcess(Process.Start(start)!);
        balancer._process.OutputDataReceived += (_, e) => { lock (balancer._log) balancer._log.AppendLine(e.Data); };
        balancer._process.ErrorDataReceived += (_, e) => { lock (balancer._log) balancer._log.AppendLine(e.Data); };
        balancer._process.BeginOutputReadLine();
        balancer._process.BeginErrorReadLine();
        return balancer;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
