using Serverless.Core.Metrics;

namespace Serverless.Core.Tests.Metrics;

public sealed class EcsUtilizationTests
{
    private static TaskUsage Task(string? service, double cpuUsed, double memoryUsed, int cpu = 256, int memory = 512)
        => new($"arn:task/{Guid.NewGuid():N}", service, cpuUsed, memoryUsed, cpu, memory);

    [Fact]
    public void Service_CPU_utilization_is_units_used_over_the_definition_size_times_the_tasks()
    {
        // ECS's example shape: (128 + 384) used × 100 / (256 × 2) = 100 %.
        var web = Assert.Single(EcsUtilization.Services([Task("web", 128, 100), Task("web", 384, 300)]));
        Assert.Equal(100, web.Cpu!.Percent, 9);
        Assert.Equal(2, web.Cpu.Count);
        Assert.Equal(50, web.Cpu.Min, 9);
        Assert.Equal(150, web.Cpu.Max, 9);
        Assert.Equal(400 * 100.0 / 1024, web.Memory!.Percent, 9);
    }

    [Fact]
    public void Standalone_tasks_count_for_the_cluster_but_belong_to_no_service()
    {
        var tasks = new[] { Task("web", 100, 10), Task(null, 300, 30) };
        Assert.Equal(["web"], EcsUtilization.Services(tasks).Select(s => s.Service));
        var instance = EcsUtilization.Instance(tasks, cpuRegistered: 2048, memoryRegistered: 4096);
        var cluster = EcsUtilization.Cluster(instance);
        Assert.Equal(512 * 100.0 / 2048, cluster[EcsUtilization.CpuReservation].Percent, 9);
        Assert.Equal(400 * 100.0 / 2048, cluster[EcsUtilization.CpuUtilization].Percent, 9);
        Assert.Equal(1024 * 100.0 / 4096, cluster[EcsUtilization.MemoryReservation].Percent, 9);
        Assert.Equal(40 * 100.0 / 4096, cluster[EcsUtilization.MemoryUtilization].Percent, 9);
    }

    [Fact]
    public void A_service_whose_tasks_reserve_no_CPU_has_no_CPU_utilization()
    {
        var service = Assert.Single(EcsUtilization.Services([Task("web", 100, 10, cpu: 0)]));
        Assert.Null(service.Cpu);
        Assert.NotNull(service.Memory);
        Assert.Equal([EcsUtilization.MemoryUtilization], EcsUtilization.Service(service).Keys);
    }

    [Fact]
    public void Memory_is_usage_minus_the_page_cache_in_MiB()
    {
        Assert.Equal(10, EcsUtilization.MemoryMiB(14 * 1024 * 1024, 4 * 1024 * 1024), 9);
        Assert.Equal(0, EcsUtilization.MemoryMiB(1024, 4096));
    }

    [Fact]
    public void One_core_busy_for_the_whole_interval_is_1024_CPU_units()
    {
        var t0 = new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
        Assert.Equal(1024, EcsUtilization.CpuUnits(5_000_000_000, t0, 7_000_000_000, t0.AddSeconds(2))!.Value, 6);
        Assert.Equal(256, EcsUtilization.CpuUnits(0, t0, 500_000_000, t0.AddSeconds(2))!.Value, 6);
        Assert.Null(EcsUtilization.CpuUnits(10, t0, 5, t0.AddSeconds(1)));   // the counter restarted
        Assert.Null(EcsUtilization.CpuUnits(0, t0, 5, t0));                    // no interval
    }

    [Fact]
    public void Datapoints_aggregate_instances_and_periods_with_the_ratio_of_sums()
    {
        var start = new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
        UsageRow Row(int second, string instance, double used, double capacity, int count)
            => new(start.AddSeconds(second), instance, new Dictionary<string, Ratio>
            {
                ["CPUUtilization"] = new(used, capacity, used * 100 / capacity / 2, used * 100 / capacity * 2, count),
            });
        var rows = new[] { Row(0, "a", 256, 512, 2), Row(30, "a", 512, 512, 2), Row(10, "b", 0, 256, 1), Row(70, "a", 128, 256, 1), Row(-5, "a", 1, 1, 1) };

        var points = MetricStatistics.Datapoints(rows, "CPUUtilization", start, start.AddMinutes(2), 60);

        Assert.Equal(2, points.Count);
        var first = points[0];
        Assert.Equal(start, first.Timestamp);
        Assert.Equal(5, first.SampleCount);
        Assert.Equal(768 * 100.0 / 1280, first.Average, 9);
        Assert.Equal(first.Average * 5, first.Sum, 9);
        Assert.Equal(0, first.Minimum);
        Assert.Equal(200, first.Maximum, 9);
        Assert.Equal(start.AddMinutes(1), points[1].Timestamp);
        Assert.Equal(50, points[1].Average, 9);
        Assert.Empty(MetricStatistics.Datapoints(rows, "MemoryUtilization", start, start.AddMinutes(2), 60));
    }
}
