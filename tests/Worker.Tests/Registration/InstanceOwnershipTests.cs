using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.ContainerInstances;
using Serverless.TestSupport;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Registration;

/// <summary>Two workers claiming one instance id, on real Azurite and Docker: only one may run it.</summary>
public sealed class InstanceOwnershipTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    private readonly EcsOptions _ecs = new() { StoragePrefix = TestNames.Unique(nameof(InstanceOwnershipTests)) };

    private IHost NewWorker(string instanceId, string host) => new HostBuilder()
        .ConfigureServices(services => services
            .AddLogging(logging => logging.AddProvider(new XunitLoggerProvider(output)).SetMinimumLevel(LogLevel.Information))
            .AddWorker(new WorkerOptions
            {
                InstanceId = instanceId,
                Ec2InstanceId = host,
                HeartbeatSeconds = 1,
                CommandPollMaxDelayMilliseconds = 200,
                WakeFallbackPollSeconds = 0,
            }, _ecs, fixture.ConnectionString))
        .Build();

    private static async Task<ContainerInstanceRecord> EventuallyAsync(
        ContainerInstanceStore store, string id, Func<ContainerInstanceRecord?, bool> done, CancellationToken cancellationToken)
    {
        while (true)
        {
            var value = await store.FindAsync("default", id, cancellationToken);
            if (done(value)) return value!;
            await Task.Delay(100, cancellationToken);
        }
    }

    private static Task StoppedAsync(IHost host, CancellationToken cancellationToken)
        => Task.Delay(Timeout.Infinite, host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping)
            .ContinueWith(_ => { }, TaskScheduler.Default).WaitAsync(cancellationToken);

    [Fact]
    public async Task A_second_worker_with_a_running_workers_instance_id_is_refused_and_exits()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var token = timeout.Token;
        var id = fixture.NewInstanceId();
        using var first = NewWorker(id, "host-a");
        await first.StartAsync(token);
        var store = first.Services.GetRequiredService<ContainerInstanceStore>();
        var firstSession = first.Services.GetRequiredService<Serverless.Worker.Registration.WorkerIdentity>().Session;
        await EventuallyAsync(store, id, i => i?.Owner == firstSession, token);

        using var second = NewWorker(id, "host-b");
        await second.StartAsync(token);
        await StoppedAsync(second, token);

        var instance = await store.FindAsync("default", id, token);
        Assert.Equal((firstSession, "host-a"), (instance!.Owner, instance.Ec2InstanceId));
        // The first keeps beating: it still runs its instance.
        var beat = instance.Beat;
        await EventuallyAsync(store, id, i => i!.Beat != beat, token);
        Assert.False(first.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested);
        await second.StopAsync(token);
        await first.StopAsync(token);
    }

    [Fact]
    public async Task A_worker_whose_instance_was_registered_by_another_stops_at_its_next_heartbeat()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var token = timeout.Token;
        var id = fixture.NewInstanceId();
        using var worker = NewWorker(id, "host-a");
        await worker.StartAsync(token);
        var store = worker.Services.GetRequiredService<ContainerInstanceStore>();
        var session = worker.Services.GetRequiredService<Serverless.Worker.Registration.WorkerIdentity>().Session;
        var registered = await EventuallyAsync(store, id, i => i?.Owner == session, token);

        // As if this worker had been cut off long enough for another to take the instance id over.
        await store.RegisterAsync(registered with { Owner = "another-worker", Ec2InstanceId = "host-b" }, token);
        await StoppedAsync(worker, token);

        Assert.Equal("another-worker", (await store.FindAsync("default", id, token))!.Owner);
        await worker.StopAsync(token);
    }

    [Fact]
    public async Task A_restarted_worker_takes_its_own_instance_back()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var token = timeout.Token;
        var id = fixture.NewInstanceId();
        using (var before = NewWorker(id, "host-a"))
        {
            await before.StartAsync(token);
            var session = before.Services.GetRequiredService<Serverless.Worker.Registration.WorkerIdentity>().Session;
            await EventuallyAsync(before.Services.GetRequiredService<ContainerInstanceStore>(), id, i => i?.Owner == session, token);
            await before.StopAsync(token);
        }
        using var after = NewWorker(id, "host-a");
        await after.StartAsync(token);
        var store = after.Services.GetRequiredService<ContainerInstanceStore>();
        var restarted = after.Services.GetRequiredService<Serverless.Worker.Registration.WorkerIdentity>().Session;
        await EventuallyAsync(store, id, i => i?.Owner == restarted, token);
        await after.StopAsync(token);
    }
}
