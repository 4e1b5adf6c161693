using System.Text.Json.Nodes;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.ContainerInstances;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;
using Serverless.TestSupport;
using Serverless.Worker.Commands;
using Serverless.Worker.Docker;
using Serverless.Worker.Registration;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Infrastructure;

/// <summary>
/// One worker, composed as the real one (<see cref="WorkerServices.AddWorker(IServiceCollection, WorkerOptions, EcsOptions, string, bool)"/>)
/// but driven by the test: its event watcher runs, the rest is called directly. Disposing it is a
/// worker process ending: its containers keep running.
/// </summary>
public sealed class WorkerHarness : IAsyncDisposable
{
    public const string Cluster = "default";

    private readonly ServiceProvider _services;
    private readonly CancellationTokenSource _stopping = new();
    private Task _watching = Task.CompletedTask;

    private WorkerHarness(ServiceProvider services, string storagePrefix, string connectionString)
    {
        _services = services;
        StoragePrefix = storagePrefix;
        ConnectionString = connectionString;
    }

    public string StoragePrefix { get; }

    public string ConnectionString { get; }

    public WorkerIdentity Identity => Get<WorkerIdentity>();
    public WorkerOptions Options => Get<WorkerOptions>();
    public TaskRunner Runner => Get<TaskRunner>();
    public TaskAdoption Adoption => Get<TaskAdoption>();
    public CommandLoop Commands => Get<CommandLoop>();
    public InstanceRegistration Registration => Get<InstanceRegistration>();
    public Heartbeat Heartbeat => Get<Heartbeat>();
    public TaskDefinitionStore Definitions => Get<TaskDefinitionStore>();
    public TaskStore Tasks => Get<TaskStore>();
    public ContainerInstanceStore Instances => Get<ContainerInstanceStore>();
    public Arns Arns => Get<Arns>();
    public IDockerClient Docker => Get<IDockerClient>();
    public CancellationToken Stopping => _stopping.Token;

    public T Get<T>() where T : notnull => _services.GetRequiredService<T>();

    /// <summary>
    /// A worker (without <paramref name="watchEvents"/>: deaf to Docker's events) for a new instance id, or for
    /// <paramref name="instanceId"/> (a restart) sharing <paramref name="storagePrefix"/>'s tables; on
    /// <paramref name="time"/>'s clock when given.
    /// </summary>
    public static async Task<WorkerHarness> StartAsync(
        WorkerFixture fixture, ITestOutputHelper output, string? instanceId = null, string? storagePrefix = null, Action<WorkerOptions>? configure = null,
        bool watchEvents = true, TimeProvider? time = null, Func<IDockerClient, IDockerClient>? wrapDocker = null)
    {
        var options = new WorkerOptions
        {
            Cluster = Cluster,
            InstanceId = instanceId ?? fixture.NewInstanceId(),
            ContainerStopTimeoutSeconds = 2,
            CommandPollMaxDelayMilliseconds = 200,
            WakeFallbackPollSeconds = 0,
            HeartbeatSeconds = 1,
            ImagePullTimeoutSeconds = 30,
            // The tests of transitional reports stop in 3 s; the default would race them.
            TransitionReportDelayMilliseconds = 1000,
        };
        configure?.Invoke(options);
        var prefix = storagePrefix ?? TestNames.Unique("worker");
        var collection = new ServiceCollection();
        if (time is not null) collection.AddSingleton(time);
        collection
            .AddLogging(logging => logging.AddProvider(new XunitLoggerProvider(output)).SetMinimumLevel(LogLevel.Debug))
            .AddWorker(options, new EcsOptions { StoragePrefix = prefix }, fixture.ConnectionString, runAsHostedService: false);
        if (wrapDocker is not null)
        {
            // The worker's engine client, as composed, seen through the test's wrapper.
            var engine = collection.Last(d => d.ServiceType == typeof(IDockerClient));
            collection.Remove(engine);
            collection.AddSingleton(sp => wrapDocker((IDockerClient)(engine.ImplementationInstance
                ?? engine.ImplementationFactory?.Invoke(sp)
                ?? ActivatorUtilities.CreateInstance(sp, engine.ImplementationType!))));
        }
        var services = collection.BuildServiceProvider();
        var harness = new WorkerHarness(services, prefix, fixture.ConnectionString);
        if (watchEvents)
        {
            var watcher = services.GetRequiredService<DockerEventWatcher>();
            harness._watching = watcher.RunAsync(harness._stopping.Token);
            await watcher.Started;
        }
        return harness;
    }

    /// <summary>Registers a task definition (the control plane's stored form, ECS defaults applied).</summary>
    public async Task<TaskDefinitionRecord> RegisterAsync(string requestJson)
    {
        var request = JsonNode.Parse(requestJson)!.AsObject();
        return await Definitions.RegisterAsync(TaskDefinitionDefaults.Resolve(request, "arn:aws:iam::000000000000:user/test"), [], Stopping);
    }

    public string NewTaskArn(string family) => Arns.Task(Cluster, TaskIds.New("family:" + family));

    public TaskCommand StartCommand(TaskDefinitionRecord definition, string? overridesJson = null, string? taskArn = null) => new()
    {
        Type = TaskCommand.Start,
        Cluster = Cluster,
        TaskArn = taskArn ?? NewTaskArn(definition.Family),
        TaskDefinitionArn = definition.Arn,
        Overrides = overridesJson is null ? null : JsonNode.Parse(overridesJson)!.AsObject(),
        StartedBy = "worker-tests",
    };

    public static TaskCommand StopCommand(string taskArn, string reason = "Task stopped by the test") => new()
    {
        Type = TaskCommand.Stop,
        Cluster = Cluster,
        TaskArn = taskArn,
        Reason = reason,
    };

    /// <summary>The task's row, as the control plane would have written it when placing the task here.</summary>
    public async Task<TaskRecord> InsertTaskRowAsync(TaskCommand start, TaskDefinitionRecord definition, string lastStatus = "PROVISIONING", string desiredStatus = "RUNNING")
    {
        var row = new TaskRecord
        {
            Cluster = Cluster,
            Id = TaskRunner.TaskIdOf(start.TaskArn),
            Group = "family:" + definition.Family,
            TaskDefinitionArn = definition.Arn,
            Family = definition.Family,
            ContainerInstanceId = Identity.InstanceId,
            LastStatus = lastStatus,
            DesiredStatus = desiredStatus,
            StartedBy = start.StartedBy,
            Overrides = start.Overrides,
            Containers = definition.ContainerDefinitions.Select(c => new TaskContainer
            {
                Name = c["name"]!.GetValue<string>(),
                Id = Guid.NewGuid().ToString(),
                Image = c["image"]!.GetValue<string>(),
            }).ToList(),
            CreatedAt = DateTimeOffset.UtcNow,
        };
        await Tasks.InsertAsync(row, Stopping);
        return row;
    }

    /// <summary>Docker's view of a container the worker reported.</summary>
    public Task<ContainerInspectResponse> InspectAsync(string runtimeId) => Docker.Containers.InspectContainerAsync(runtimeId);

    /// <summary>This instance's containers, of one task or all.</summary>
    public async Task<IList<ContainerListResponse>> ContainersAsync(string? taskArn = null)
    {
        var labels = new Dictionary<string, bool> { [$"{DockerLabels.InstanceId}={Identity.InstanceId}"] = true };
        if (taskArn is not null) labels[$"{DockerLabels.TaskArn}={taskArn}"] = true;
        return await Docker.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = labels },
        });
    }

    /// <summary>Waits until the task has no containers left (they are removed after STOPPED is reported).</summary>
    public async Task WaitUntilRemovedAsync(string taskArn, TimeSpan? timeout = null)
    {
        var deadline = DateTimeOffset.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while ((await ContainersAsync(taskArn)).Count > 0)
        {
            if (DateTimeOffset.UtcNow > deadline) throw new TimeoutException($"The containers of {taskArn} were not removed");
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        await _watching.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _services.DisposeAsync();
        _stopping.Dispose();
    }
}
