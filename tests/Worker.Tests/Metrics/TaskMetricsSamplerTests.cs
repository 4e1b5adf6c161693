using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Metrics;
using Serverless.Worker.Metrics;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Metrics;

/// <summary>The sampler on real Docker: a busy-looping task's CPU and memory, reported once per period for the instance.</summary>
public sealed class TaskMetricsSamplerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>, IAsyncLifetime
{
    // The period clock is fake (it decides when a period ends); CPU time comes from Docker's own readings.
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 2, 12, 0, 1, TimeSpan.Zero));
    private WorkerHarness _worker = null!;

    public async Task InitializeAsync() => _worker = await WorkerHarness.StartAsync(fixture, output, time: _time);

    public async Task DisposeAsync() => await _worker.DisposeAsync();

    [Fact]
    public async Task A_busy_task_is_reported_with_its_CPU_units_over_its_reservation_once_per_period()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "busy", "cpu": "256", "memory": "64", "containerDefinitions": [{
              "name": "main", "image": "local/busybox:latest", "entryPoint": ["sh", "-c"],
              "command": ["trap 'exit 0' TERM; while :; do :; done"]}]}
            """);
        var start = _worker.StartCommand(definition) with { Group = "service:busy" };
        await _worker.Runner.StartAsync(start, redelivered: false, _worker.Stopping);
        await fixture.Events.WaitForStatusAsync(start.TaskArn, "RUNNING", _worker.Stopping);

        var sampler = _worker.Get<TaskMetricsSampler>();
        for (var i = 0; i < 3; i++)
        {
            Assert.Null(await sampler.SampleAsync(_worker.Stopping));
            await Task.Delay(700, _worker.Stopping);
        }
        _time.Advance(TimeSpan.FromSeconds(60));
        var report = await sampler.SampleAsync(_worker.Stopping);

        Assert.NotNull(report);
        Assert.Equal(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero), report.Start);
        Assert.Equal(60, report.Seconds);
        Assert.Equal(_worker.Identity.InstanceId, report.InstanceId);
        var busy = Assert.Single(report.Services);
        Assert.Equal("busy", busy.Service);
        // A loop that never sleeps uses far more than a tenth of its 256 units, whatever else the machine runs.
        Assert.True(busy.Cpu!.Percent > 10, $"CPU {busy.Cpu.Percent:0.0} %");
        Assert.Equal(256, busy.Cpu.Capacity);
        Assert.Equal(1, busy.Cpu.Count);
        Assert.Equal(64, busy.Memory!.Capacity);
        Assert.InRange(busy.Memory.Used, 0.01, 64);
        Assert.Equal(256, report.Instance.CpuReserved);
        Assert.Equal(busy.Cpu.Used, report.Instance.CpuUsed, 9);
        Assert.Null(await sampler.SampleAsync(_worker.Stopping));   // the next period has only begun
    }
}
