using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Metrics;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;
using Serverless.Worker.Registration;
using Serverless.Worker.Reporting;

namespace Serverless.Worker.Metrics;

/// <summary>
/// The agent's stats engine: every <see cref="WorkerOptions.MetricsSampleSeconds"/> it reads Docker's
/// stats of this instance's containers (CPU time, memory), and at the end of each
/// <see cref="WorkerOptions.MetricsPeriodSeconds"/> period it sends one <see cref="MetricsReport"/> for
/// the whole instance: each task's CPU units and MiB averaged over the period, summed per service.
/// </summary>
public sealed class TaskMetricsSampler(
    IDockerClient docker,
    TaskDefinitionCache definitions,
    StorageClients storage,
    WorkerIdentity identity,
    WorkerOptions options,
    Arns arns,
    TimeProvider time,
    ILogger<TaskMetricsSampler> logger,
    QueueWake? wake = null,
    TaskStateReporter? reporter = null) : BackgroundService
{
    private readonly Dictionary<string, (ulong Cpu, DateTimeOffset Read)> _previous = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TaskSamples> _samples = new(StringComparer.Ordinal);
    private DateTimeOffset _periodStart;
    private (double Cpu, double Memory)? _registered;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.MetricsSampleSeconds), time);
        do
        {
            try
            {
                await SampleAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Task metrics: sampling failed: {Error}", e.Message);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>
    /// Takes one sample of every task's containers; when the period has turned, first sends the finished
    /// period's report. Returns the report sent, if any.
    /// </summary>
    public async Task<MetricsReport?> SampleAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var period = PeriodStart(now, options.MetricsPeriodSeconds);
        MetricsReport? sent = null;
        if (period != _periodStart)
        {
            if (_samples.Count > 0) sent = await SendAsync(_periodStart, cancellationToken);
            _samples.Clear();
            _periodStart = period;
        }

        var containers = await docker.Containers.ListContainersAsync(
            new ContainersListParameters { Filters = DockerLabels.InstanceFilter(identity.InstanceId) }, cancellationToken);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var task in containers.Where(c => DockerLabels.Get(c.Labels, DockerLabels.TaskArn) is not null).GroupBy(c => c.Labels[DockerLabels.TaskArn]))
        {
            double? cpu = 0;
            double memory = 0;
            foreach (var container in task)
            {
                seen.Add(container.ID);
                var stats = await StatsAsync(container.ID, cancellationToken);
                if (stats is null) { cpu = null; continue; }
                memory += EcsUtilization.MemoryMiB(stats.MemoryStats?.Usage ?? 0, Cache(stats.MemoryStats?.Stats));
                var read = new DateTimeOffset(DateTime.SpecifyKind(stats.Read, DateTimeKind.Utc));
                var total = stats.CPUStats?.CPUUsage?.TotalUsage ?? 0;
                var units = _previous.TryGetValue(container.ID, out var before) ? EcsUtilization.CpuUnits(before.Cpu, before.Read, total, read) : null;
                _previous[container.ID] = (total, read);
                cpu = units is null ? null : cpu + units;
            }
            var first = task.First();
            if (!_samples.TryGetValue(task.Key, out var samples))
            {
                var group = DockerLabels.Get(first.Labels, DockerLabels.Group);
                samples = _samples[task.Key] = new TaskSamples(
                    group is not null && group.StartsWith("service:", StringComparison.Ordinal) ? group["service:".Length..] : null,
                    DockerLabels.Get(first.Labels, DockerLabels.TaskDefinitionFamily) ?? "",
                    long.TryParse(DockerLabels.Get(first.Labels, DockerLabels.TaskDefinitionVersion), out var revision) ? revision : 0);
            }
            samples.Memory.Add(memory);
            if (cpu is { } used) samples.Cpu.Add(used);
        }
        foreach (var gone in _previous.Keys.Where(id => !seen.Contains(id)).ToList()) _previous.Remove(gone);
        return sent;
    }

    /// <summary>Sends the report of the period that started at <paramref name="start"/>: one queue message for the instance.</summary>
    private async Task<MetricsReport?> SendAsync(DateTimeOffset start, CancellationToken cancellationToken)
    {
        var tasks = new List<TaskUsage>();
        foreach (var (taskArn, samples) in _samples)
        {
            if (samples.Cpu.Count == 0 && samples.Memory.Count == 0) continue;
            var definition = await definitions.FindAsync(arns.TaskDefinition(samples.Family, samples.Revision), cancellationToken);
            if (definition is null) continue;
            var need = TaskSizing.Need(definition, overrides: null);
            tasks.Add(new TaskUsage(taskArn, samples.Service,
                samples.Cpu.Count > 0 ? samples.Cpu.Average() : 0, samples.Memory.Count > 0 ? samples.Memory.Average() : 0, need.Cpu, need.Memory));
        }
        if (tasks.Count == 0) return null;
        var (cpuRegistered, memoryRegistered) = await RegisteredAsync(cancellationToken);
        var report = new MetricsReport
        {
            Cluster = identity.Cluster,
            InstanceId = identity.InstanceId,
            Start = start,
            Seconds = options.MetricsPeriodSeconds,
            Instance = EcsUtilization.Instance(tasks, cpuRegistered, memoryRegistered),
            Services = EcsUtilization.Services(tasks),
        };
        var queue = await storage.QueueAsync(MetricsReport.Queue, cancellationToken);
        await queue.SendMessageAsync(TaskMessages.Serialize(report), cancellationToken);
        // The control plane that commands this worker takes the report now rather than at its next idle poll.
        wake?.Send(reporter?.ReportWake, MetricsReport.Queue);
        logger.LogDebug("Task metrics of {Start} sent: {Tasks} task(s), {Services} service(s)", start, tasks.Count, report.Services.Count);
        return report;
    }

    private async Task<ContainerStatsResponse?> StatsAsync(string id, CancellationToken cancellationToken)
    {
        ContainerStatsResponse? stats = null;
        try
        {
            await docker.Containers.GetContainerStatsAsync(id, new ContainerStatsParameters { Stream = false, OneShot = true },
                new Inline<ContainerStatsResponse>(s => stats = s), cancellationToken);
        }
        catch (DockerContainerNotFoundException)
        {
            // Removed between the list and the read: it has no sample this time.
        }
        return stats;
    }

    private async Task<(double Cpu, double Memory)> RegisteredAsync(CancellationToken cancellationToken)
    {
        if (_registered is { } known) return known;
        var info = await docker.System.GetSystemInfoAsync(cancellationToken);
        var registered = ((double)HostResources.Cpu(options, Environment.ProcessorCount), (double)HostResources.Memory(options, HostResources.TotalMemoryMiB(info.MemTotal)));
        _registered = registered;
        return registered;
    }

    /// <summary>The page cache Docker counts in usage: cgroup v1's <c>cache</c>, v2's <c>inactive_file</c>.</summary>
    private static ulong Cache(IDictionary<string, ulong>? stats)
        => stats is not null && (stats.TryGetValue("cache", out var cache) || stats.TryGetValue("inactive_file", out cache)) ? cache : 0;

    /// <summary>The start of the period holding <paramref name="now"/>: periods are aligned to the epoch, so every worker's line up.</summary>
    public static DateTimeOffset PeriodStart(DateTimeOffset now, int seconds)
        => DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() / seconds * seconds);

    private sealed record TaskSamples(string? Service, string Family, long Revision)
    {
        public List<double> Cpu { get; } = [];
        public List<double> Memory { get; } = [];
    }
}

public static class TaskMetricsServices
{
    /// <summary>The task metrics sampler; it runs on its own when the worker runs as a hosted service.</summary>
    public static IServiceCollection AddTaskMetrics(this IServiceCollection services, bool runAsHostedService)
    {
        services.AddSingleton<TaskMetricsSampler>();
        if (runAsHostedService) services.AddHostedService(sp => sp.GetRequiredService<TaskMetricsSampler>());
        return services;
    }
}
