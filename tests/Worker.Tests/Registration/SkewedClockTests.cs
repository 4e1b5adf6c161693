using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Storage;
using Serverless.TestSupport;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Registration;

/// <summary>A worker whose host clock is minutes off, judged by a control plane with a correct one (real Azurite and Docker).</summary>
public sealed class SkewedClockTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    /// <summary>The host's clock, <paramref name="skew"/> off; timers run at the normal pace.</summary>
    private sealed class SkewedClock(TimeSpan skew) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + skew;
    }

    [Theory]
    [InlineData(-4)]
    [InlineData(4)]
    public async Task A_worker_whose_clock_is_minutes_off_is_judged_connected_and_its_heartbeat_is_dated_by_the_control_planes_clock(int minutes)
    {
        var options = new WorkerOptions { InstanceId = fixture.NewInstanceId(), Ec2InstanceId = "skewed-host", HeartbeatSeconds = 1, CommandPollMaxDelayMilliseconds = 200, WakeFallbackPollSeconds = 0 };
        var ecs = new EcsOptions { StoragePrefix = TestNames.Unique(nameof(SkewedClockTests)) };
        using var host = new HostBuilder()
            .ConfigureServices(services => services
                .AddSingleton<TimeProvider>(new SkewedClock(TimeSpan.FromMinutes(minutes)))
                .AddLogging(logging => logging.AddProvider(new XunitLoggerProvider(output)).SetMinimumLevel(LogLevel.Information))
                .AddWorker(options, ecs, fixture.ConnectionString))
            .Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var token = timeout.Token;
        await host.StartAsync(token);

        // The control plane: its own stores on the same tables, with a correct clock.
        var controlPlane = new ContainerInstanceStore(new StorageClients(fixture.ConnectionString, ecs), new Arns(ecs), TimeProvider.System);
        ContainerInstanceRecord? instance;
        string? firstBeat = null;
        while (true)
        {
            instance = await controlPlane.FindAsync("default", options.InstanceId, token);
            firstBeat ??= instance?.Beat;
            if (instance is not null && instance.Beat != firstBeat) break;   // a heartbeat after registration
            await Task.Delay(100, token);
        }

        var now = TimeProvider.System.GetUtcNow();
        Assert.True(instance.IsAgentConnected(now, TimeSpan.FromSeconds(60)), $"last heartbeat {instance.LastHeartbeat:O}, now {now:O}");
        // Not merely "connected": dated within seconds of the control plane's now, not minutes.
        Assert.InRange(instance.LastHeartbeat, now - TimeSpan.FromSeconds(30), now + TimeSpan.FromSeconds(30));
        Assert.InRange(instance.RegisteredAt, now - TimeSpan.FromSeconds(30), now + TimeSpan.FromSeconds(30));
        await host.StopAsync(token);
    }
}
