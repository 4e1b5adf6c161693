using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Metrics;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Metrics;

[Collection(AzuriteCollection.Name)]
public sealed class MetricStoreTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _time = new(Now);
    private readonly MetricStore _store = new(new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("met") }));

    private MetricsIngest Ingest => new(_store, new MetricsOptions(), _time, NullLogger<MetricsIngest>.Instance);

    private static MetricsReport Report(DateTimeOffset start, string instance = "i1", double cpuUsed = 256, string service = "web") => new()
    {
        Cluster = "prod",
        InstanceId = instance,
        Start = start,
        Seconds = 60,
        Instance = new InstanceLoad(2048, 4096, 512, 1024, cpuUsed, 100),
        Services = [new ServiceLoad(service, new Ratio(cpuUsed, 512, 40, 60, 2), new Ratio(100, 1024, 9, 11, 2))],
    };

    private async Task<IReadOnlyList<Datapoint>> ServiceCpuAsync(string service = "web")
        => MetricStatistics.Datapoints(
            await _store.ReadAsync(MetricStore.ServicePartition("prod", service), Now.AddHours(-1), Now.AddHours(1), CancellationToken.None),
            EcsUtilization.CpuUtilization, Now.AddHours(-1), Now.AddHours(1), 60);

    [Fact]
    public async Task A_duplicated_report_is_not_counted_twice_and_two_instances_add_up()
    {
        await Ingest.ApplyAsync(TaskMessages.Serialize(Report(Now)), CancellationToken.None);
        await Ingest.ApplyAsync(TaskMessages.Serialize(Report(Now)), CancellationToken.None);
        Assert.Equal(2, Assert.Single(await ServiceCpuAsync()).SampleCount);

        await Ingest.ApplyAsync(TaskMessages.Serialize(Report(Now, instance: "i2", cpuUsed: 0)), CancellationToken.None);
        var point = Assert.Single(await ServiceCpuAsync());
        Assert.Equal(4, point.SampleCount);
        Assert.Equal(256 * 100.0 / 1024, point.Average, 9);
        Assert.Equal(40, point.Minimum);
        Assert.Equal(60, point.Maximum);

        var cluster = MetricStatistics.Datapoints(
            await _store.ReadAsync(MetricStore.ClusterPartition("prod"), Now, Now.AddMinutes(1), CancellationToken.None),
            EcsUtilization.CpuReservation, Now, Now.AddMinutes(1), 60);
        Assert.Equal(25, Assert.Single(cluster).Average, 9);
    }

    [Fact]
    public async Task Container_insights_instance_metrics_read_one_instances_rows_of_its_cluster()
    {
        await _store.SaveAsync(Report(Now, instance: "i1", cpuUsed: 1024), CancellationToken.None);
        await _store.SaveAsync(Report(Now, instance: "i2", cpuUsed: 0), CancellationToken.None);
        var reader = new MetricReader(_store, new CustomMetricStore(new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("cus") })));
        Task<IReadOnlyList<Datapoint>> Read(string metric, string instance)
            => reader.DatapointsAsync(MetricReader.ContainerInsightsNamespace, metric,
                new Dictionary<string, string> { ["ClusterName"] = "prod", ["ContainerInstanceId"] = instance }, Now, Now.AddMinutes(1), 60, null, CancellationToken.None);

        // i1: 1024 of 2048 CPU units used, 512 reserved; i2 uses none. The cluster's CPUUtilization is their mean, 25 %.
        Assert.Equal(50, Assert.Single(await Read("instance_cpu_utilization", "i1")).Average, 9);
        Assert.Equal(0, Assert.Single(await Read("instance_cpu_utilization", "i2")).Average, 9);
        Assert.Equal(25, Assert.Single(await Read("instance_cpu_reserved_capacity", "i2")).Average, 9);
        Assert.Equal(100 * 100.0 / 4096, Assert.Single(await Read("instance_memory_utilization", "i1")).Average, 9);
        Assert.Empty(await Read("instance_cpu_utilization", "i3"));
        var cluster = await reader.DatapointsAsync(EcsUtilization.Namespace, EcsUtilization.CpuUtilization,
            new Dictionary<string, string> { ["ClusterName"] = "prod" }, Now, Now.AddMinutes(1), 60, null, CancellationToken.None);
        Assert.Equal(25, Assert.Single(cluster).Average, 9);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("""{"v":1,"cluster":"prod/../x","instanceId":"i1","start":"2026-12-02T12:00:00Z","seconds":60,"instance":{"cpuRegistered":1,"memoryRegistered":1,"cpuReserved":0,"memoryReserved":0,"cpuUsed":0,"memoryUsed":0},"services":[]}""")]
    [InlineData("""{"v":1,"cluster":"prod","instanceId":"i1","start":"2026-12-02T12:00:00Z","seconds":60,"instance":{"cpuRegistered":1,"memoryRegistered":1,"cpuReserved":0,"memoryReserved":0,"cpuUsed":0,"memoryUsed":0},"services":[{"service":"web","cpu":{"used":-1,"capacity":256,"min":0,"max":0,"count":1}}]}""")]
    [InlineData("""{"v":1,"cluster":"prod","instanceId":"i1","start":"2026-12-02T12:00:00Z","seconds":0,"instance":{"cpuRegistered":1,"memoryRegistered":1,"cpuReserved":0,"memoryReserved":0,"cpuUsed":0,"memoryUsed":0},"services":[]}""")]
    public async Task A_malformed_report_is_dropped_without_writing(string message)
    {
        await Ingest.ApplyAsync(message, CancellationToken.None);
        Assert.Empty(await ServiceCpuAsync());
    }

    [Fact]
    public async Task Reports_older_than_the_retention_are_dropped_and_the_sweep_deletes_old_rows()
    {
        await Ingest.ApplyAsync(TaskMessages.Serialize(Report(Now.AddDays(-16))), CancellationToken.None);
        await _store.SaveAsync(Report(Now.AddDays(-15).AddMinutes(-1), service: "old"), CancellationToken.None);
        await _store.SaveAsync(Report(Now, service: "old"), CancellationToken.None);
        Assert.Empty(await _store.ReadAsync(MetricStore.ServicePartition("prod", "web"), Now.AddDays(-17), Now, CancellationToken.None));

        await new MetricRetention(_store, new Serverless.Core.Alarms.MetricAlarmStore(new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("alh") })), new MetricsOptions(), _time, NullLogger<MetricRetention>.Instance).SweepAsync(CancellationToken.None);

        var left = await _store.ReadAsync(MetricStore.ServicePartition("prod", "old"), Now.AddDays(-17), Now.AddDays(1), CancellationToken.None);
        Assert.Equal(Now, Assert.Single(left).Start);
    }
}
