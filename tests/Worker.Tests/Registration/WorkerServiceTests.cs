using Azure.Storage.Queues;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.ContainerInstances;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;
using Serverless.TestSupport;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Registration;

/// <summary>The whole worker as a hosted service: it registers, heartbeats and runs what its queue says.</summary>
public sealed class WorkerServiceTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    [Fact]
    public async Task A_started_worker_registers_its_host_heartbeats_its_task_counts_and_runs_commands()
    {
        var options = new WorkerOptions
        {
            InstanceId = fixture.NewInstanceId(),
            Ec2InstanceId = "test-host-1",
            ReservedMemoryMiB = 512,
            AvailabilityZone = "local-1a",
            Attributes = "stack=test",
            HeartbeatSeconds = 1,
            CommandPollMaxDelayMilliseconds = 200,
            WakeFallbackPollSeconds = 0,
        };
        var ecs = new EcsOptions { StoragePrefix = TestNames.Unique(nameof(WorkerServiceTests)) };
        using var host = new HostBuilder()
            .ConfigureServices(services => services
                .AddLogging(logging => logging.AddProvider(new XunitLoggerProvider(output)).SetMinimumLevel(LogLevel.Debug))
                .AddWorker(options, ecs, fixture.ConnectionString))
            .Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var token = timeout.Token;
        await host.StartAsync(token);
        var instances = host.Services.GetRequiredService<ContainerInstanceStore>();

        var registered = await EventuallyAsync(() => instances.FindAsync("default", options.InstanceId, token), i => i is not null, token);
        Assert.Equal("test-host-1", registered!.Ec2InstanceId);
        Assert.Equal("ACTIVE", registered.Status);
        Assert.Equal(1024 * Environment.ProcessorCount, registered.RegisteredCpu);
        var total = Serverless.Worker.Registration.HostResources.MemTotalMiB(await File.ReadAllTextAsync("/proc/meminfo", token))!.Value;
        Assert.Equal(total - 512, registered.RegisteredMemory);
        Assert.Equal([22, 2375, 2376, 51678, 51679], registered.RegisteredTcpPorts);
        Assert.Empty(registered.RegisteredUdpPorts);
        Assert.Equal("linux", registered.Attribute("ecs.os-type"));
        Assert.Equal("local-1a", registered.Attribute("ecs.availability-zone"));
        Assert.Equal("test", registered.Attribute("stack"));
        Assert.Contains(registered.Attributes, a => a.Name == "com.amazonaws.ecs.capability.docker-remote-api.1.41");
        Assert.StartsWith("DockerVersion: ", registered.DockerVersion);

        var definitions = host.Services.GetRequiredService<TaskDefinitionStore>();
        var definition = await definitions.RegisterAsync(TaskDefinitionDefaults.Resolve(System.Text.Json.Nodes.JsonNode.Parse("""
            {"family": "hosted", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """)!.AsObject(), "test"), [], token);
        var arns = host.Services.GetRequiredService<Arns>();
        var taskArn = arns.Task("default", TaskIds.New("family:hosted"));
        var queue = new QueueServiceClient(fixture.ConnectionString, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None })
            .GetQueueClient(TaskMessages.CommandQueue(options.InstanceId));
        await queue.CreateIfNotExistsAsync(cancellationToken: token);
        await queue.SendMessageAsync(TaskMessages.Serialize(new TaskCommand
        {
            Type = TaskCommand.Start, Cluster = "default", TaskArn = taskArn, TaskDefinitionArn = definition.Arn,
        }), token);

        await fixture.Events.WaitForStatusAsync(taskArn, "RUNNING", token);
        var beating = await EventuallyAsync(() => instances.FindAsync("default", options.InstanceId, token), i => i!.RunningTasksCount == 1, token);
        Assert.True(beating!.LastHeartbeat > registered.LastHeartbeat);

        await queue.SendMessageAsync(TaskMessages.Serialize(new TaskCommand { Type = TaskCommand.Stop, Cluster = "default", TaskArn = taskArn, Reason = "bye" }), token);
        await fixture.Events.WaitForStatusAsync(taskArn, "STOPPED", token);
        await EventuallyAsync(() => instances.FindAsync("default", options.InstanceId, token), i => i!.RunningTasksCount == 0, token);
        await host.StopAsync(token);
    }

    private static async Task<T> EventuallyAsync<T>(Func<Task<T>> read, Func<T, bool> done, CancellationToken cancellationToken)
    {
        while (true)
        {
            var value = await read();
            if (done(value)) return value;
            await Task.Delay(100, cancellationToken);
        }
    }
}
