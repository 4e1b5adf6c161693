using System.Diagnostics;
using System.Globalization;
using Azure.Data.Tables;
using Serverless.TestSupport.Storage;

namespace Serverless.ScaleSim;

/// <summary>
/// Where a run's time goes, one line every <see cref="Period"/>: CPU of this process (the simulated
/// workers and the counting proxies), of the control plane and of Azurite; this process's thread pool
/// and how late its timers fire; how long one storage read takes straight to Azurite and through a
/// proxy of this process; how long the API calls of the run took; transactions per second by source.
/// A request that waits in Azurite shows in the direct read, one that waits on this process in the
/// difference between the two reads, one that waits on the control plane in the API calls alone.
/// </summary>
public sealed class Diagnostics : IAsyncDisposable
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(15);

    private readonly Meter _meter;
    private readonly Func<int> _running;
    private readonly int _controlPlanePid;
    private readonly IReadOnlyList<(string Name, int Pid)> _azurite;
    private readonly TableClient _direct;
    private readonly TableClient _proxied;
    private readonly StorageProxy _probeProxy;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Latency> _calls = new(StringComparer.Ordinal);
    private readonly Latency _directReads = new();
    private readonly Latency _proxiedReads = new();
    private long _maxTimerLagTicks;
    private readonly TextWriter _out;

    private Diagnostics(Meter meter, Func<int> running, int controlPlanePid, IReadOnlyList<(string Name, int Pid)> azurite, TableClient direct, TableClient proxied, StorageProxy probeProxy, TextWriter output)
    {
        (_meter, _running, _controlPlanePid, _azurite, _direct, _proxied, _probeProxy, _out) = (meter, running, controlPlanePid, azurite, direct, proxied, probeProxy, output);
    }

    /// <summary>
    /// Starts the probes and the periodic line. <paramref name="azuriteTables"/> is Azurite's own table endpoint (no proxy);
    /// <paramref name="azurite"/> its processes (one, or the table and the queue service apart).
    /// </summary>
    public static async Task<Diagnostics> StartAsync(
        Meter meter, Func<int> running, int controlPlanePid, IReadOnlyList<(string Name, int Pid)> azurite, Uri azuriteTables, Uri azuriteQueues, TextWriter output)
    {
        // A proxy of this process that counts nothing: the probe's reads stay out of every figure.
        var probeProxy = new StorageProxy();
        await probeProxy.StartAsync(azuriteTables, azuriteQueues, CancellationToken.None);
        var options = new TableClientOptions();
        options.Retry.MaxRetries = 0;
        options.Retry.NetworkTimeout = TimeSpan.FromMinutes(5);
        string Connection(Uri tables) => $"DefaultEndpointsProtocol=http;AccountName={Sim.AccountName};AccountKey={Sim.AccountKey};TableEndpoint={tables.ToString().TrimEnd('/')}/{Sim.AccountName};";
        var direct = new TableClient(Connection(azuriteTables), "ScaleSimProbe", options);
        await direct.CreateIfNotExistsAsync();
        var proxied = new TableClient(Connection(probeProxy.TableRoot), "ScaleSimProbe", options);
        var diagnostics = new Diagnostics(meter, running, controlPlanePid, azurite, direct, proxied, probeProxy, output);
        diagnostics._loops.Add(Task.Run(diagnostics.ProbeAsync));
        diagnostics._loops.Add(Task.Run(diagnostics.TimerLagAsync));
        diagnostics._loops.Add(Task.Run(diagnostics.ReportAsync));
        return diagnostics;
    }

    /// <summary>Times one API call of the run (for the periodic line).</summary>
    public async Task<T> TimeAsync<T>(string action, Func<Task<T>> call)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            return await call();
        }
        finally
        {
            lock (_gate)
            {
                if (!_calls.TryGetValue(action, out var latency)) _calls[action] = latency = new Latency();
                latency.Add(clock.Elapsed);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_loops);
        }
        catch (OperationCanceledException)
        {
        }
        await _probeProxy.DisposeAsync();
        _stop.Dispose();
    }

    // One point read a second, straight to Azurite and through a proxy of this process, alternately.
    private async Task ProbeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            foreach (var (client, latency) in new[] { (_direct, _directReads), (_proxied, _proxiedReads) })
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    await client.GetEntityIfExistsAsync<TableEntity>("probe", "probe", cancellationToken: _stop.Token);
                    lock (_gate) latency.Add(clock.Elapsed);
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    lock (_gate) latency.Fail();
                }
            }
            await Delay(TimeSpan.FromSeconds(1));
        }
    }

    // How late a 100 ms timer of this process fires: thread pool starvation or CPU starvation of the workers' process.
    private async Task TimerLagAsync()
    {
        var step = TimeSpan.FromMilliseconds(100);
        while (!_stop.IsCancellationRequested)
        {
            var start = Stopwatch.GetTimestamp();
            if (!await Delay(step)) return;
            var lag = Stopwatch.GetElapsedTime(start) - step;
            long seen;
            do seen = Interlocked.Read(ref _maxTimerLagTicks);
            while (lag.Ticks > seen && Interlocked.CompareExchange(ref _maxTimerLagTicks, lag.Ticks, seen) != seen);
        }
    }

    private async Task ReportAsync()
    {
        var self = Environment.ProcessId;
        var cpu = new Dictionary<int, (double Seconds, long At)>();
        foreach (var pid in new[] { self, _controlPlanePid }.Concat(_azurite.Select(a => a.Pid))) cpu[pid] = (CpuSeconds(pid), Stopwatch.GetTimestamp());
        var meterBefore = _meter.Take();
        var clock = Stopwatch.StartNew();
        while (await Delay(Period))
        {
            string Cpu(int pid)
            {
                if (pid <= 0) return "-";
                var now = (CpuSeconds(pid), Stopwatch.GetTimestamp());
                var (seconds, at) = cpu[pid];
                cpu[pid] = now;
                var share = (now.Item1 - seconds) / Stopwatch.GetElapsedTime(at, now.Item2).TotalSeconds;
                return double.IsNaN(share) || share < 0 ? "-" : $"{share:P0}";
            }
            var meterNow = _meter.Take();
            var window = meterNow.Since(meterBefore);
            meterBefore = meterNow;
            var bySource = window.Counts.GroupBy(c => c.Key.Source)
                .Select(g => $"{g.Key} {g.Sum(c => c.Value.Requests) / Math.Max(1, window.Seconds):F0}/s");
            string calls, reads;
            lock (_gate)
            {
                calls = string.Join(", ", _calls.Select(c => $"{c.Key} {c.Value}"));
                foreach (var latency in _calls.Values) latency.Reset();
                reads = $"direct {_directReads}, via proxy {_proxiedReads}";
                _directReads.Reset();
                _proxiedReads.Reset();
            }
            var lag = TimeSpan.FromTicks(Interlocked.Exchange(ref _maxTimerLagTicks, 0));
            ThreadPool.GetAvailableThreads(out var freeWorkers, out _);
            ThreadPool.GetMaxThreads(out var maxWorkers, out _);
            var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "-";
            var line = string.Create(CultureInfo.InvariantCulture,
                $"  [diag {clock.Elapsed.TotalSeconds:F0} s] running {_running()}; cpu sim {Cpu(self)}, control plane {Cpu(_controlPlanePid)}, {string.Join(", ", _azurite.Select(a => $"{a.Name} {Cpu(a.Pid)}"))}, load {load}; " +
                $"sim threads {ThreadPool.ThreadCount} (busy {maxWorkers - freeWorkers}), queued {ThreadPool.PendingWorkItemCount}, timer lag max {lag.TotalMilliseconds:F0} ms; " +
                $"storage read {reads}; api {(calls.Length == 0 ? "-" : calls)}; tx {string.Join(", ", bySource)}");
            lock (_out) _out.WriteLine(line);
        }
    }

    private async Task<bool> Delay(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _stop.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>User plus system CPU seconds of a process so far (Linux <c>/proc/&lt;pid&gt;/stat</c>), NaN when unknown.</summary>
    private static double CpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command (which may hold spaces) in parentheses: utime and stime are the 14th and 15th.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return double.NaN;
        }
    }

    /// <summary>Count, mean and max of some durations (and failures).</summary>
    private sealed class Latency
    {
        private int _count;
        private int _failed;
        private double _sumMs;
        private double _maxMs;

        public void Add(TimeSpan elapsed)
        {
            _count++;
            _sumMs += elapsed.TotalMilliseconds;
            _maxMs = Math.Max(_maxMs, elapsed.TotalMilliseconds);
        }

        public void Fail() => _failed++;

        public void Reset() => (_count, _failed, _sumMs, _maxMs) = (0, 0, 0, 0);

        public override string ToString() => _count == 0 && _failed == 0 ? "-"
            : string.Create(CultureInfo.InvariantCulture, $"{_count}× mean {(_count == 0 ? 0 : _sumMs / _count):F0} max {_maxMs:F0} ms{(_failed > 0 ? $" ({_failed} failed)" : "")}");
    }
}
