using Docker.DotNet;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Serverless.Core;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;
using Serverless.Worker.Commands;
using Serverless.Worker.Docker;
using Serverless.Worker.Logs;
using Serverless.Worker.Metadata;
using Serverless.Worker.Metrics;
using Serverless.Worker.Registration;
using Serverless.Worker.Reporting;
using Serverless.Worker.Secrets;
using Serverless.Worker.Simulation;

namespace Serverless.Worker;

public static class WorkerServices
{
    /// <summary>
    /// Everything the worker needs, from configuration: section <c>Worker</c> (<see cref="WorkerOptions"/>),
    /// section <c>Ecs</c> (region, account, storage prefix) and <c>AzureWebJobsStorage</c>, a connection
    /// string or an identity-based connection (<see cref="StorageAccess"/>). Without
    /// <paramref name="runAsHostedService"/> the parts are registered but nothing starts (tests drive them).
    /// </summary>
    public static IServiceCollection AddWorker(this IServiceCollection services, IConfiguration configuration, bool runAsHostedService = true)
    {
        var options = new WorkerOptions();
        configuration.GetSection("Worker").Bind(options);
        var ecs = new EcsOptions();
        configuration.GetSection("Ecs").Bind(ecs);
        return services.AddWorker(options, ecs, StorageAccess.From(configuration), runAsHostedService);
    }

    public static IServiceCollection AddWorker(
        this IServiceCollection services, WorkerOptions options, EcsOptions ecs, string storageConnectionString, bool runAsHostedService = true)
        => services.AddWorker(options, ecs, new StorageAccess(storageConnectionString, null, null, false, null), runAsHostedService);

    public static IServiceCollection AddWorker(
        this IServiceCollection services, WorkerOptions options, EcsOptions ecs, StorageAccess storage, bool runAsHostedService = true)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(options);
        services.AddSingleton(ecs);
        services.AddSingleton<Arns>();
        services.AddSingleton(storage.CreateClients(ecs));
        services.AddSingleton<QueueWake>();
        services.AddSingleton(sp =>
        {
            var arns = sp.GetRequiredService<Arns>();
            var id = InstanceIdentity.Resolve(options);
            return new WorkerIdentity(options.Cluster, id, arns.ContainerInstance(options.Cluster, id));
        });
        services.AddContainerEngine(options);

        services.AddSingleton<TaskDefinitionStore>();
        services.AddSingleton<TaskStore>();
        // The instance row's heartbeat and registration times are stamped with the storage's clock, not the host's.
        services.AddSingleton(sp => new StorageClock(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<StorageClients>()));
        services.AddSingleton(sp => new ContainerInstanceStore(
            sp.GetRequiredService<StorageClients>(), sp.GetRequiredService<Arns>(), sp.GetRequiredService<StorageClock>()));
        services.AddSingleton<ServiceStore>();
        services.AddSingleton<ReconcileQueue>();
        services.AddSingleton<ServiceResync>();
        services.AddSingleton<Serverless.Core.Capacity.WaitingTaskStore>();
        services.AddSingleton<TaskDefinitionCache>();

        services.AddSingleton<TaskStateReporter>();
        services.AddSingleton<ImagePuller>();
        services.AddSingleton<EngineStorage>();
        services.AddSingleton<TaskRunner>();
        services.AddWorkerLogs();
        services.AddSingleton<DockerEventWatcher>();
        services.AddSingleton<TaskAdoption>();
        services.AddSingleton<InstanceRegistration>();
        services.AddSingleton<Heartbeat>();
        services.AddSingleton<CommandLoop>();
        services.AddWorkerSecrets(runAsHostedService);
        services.AddTaskMetrics(runAsHostedService);
        services.AddTaskMetadata(runAsHostedService);
        if (runAsHostedService) services.AddHostedService<WorkerService>();
        return services;
    }

    /// <summary>
    /// A client for the engine at <paramref name="endpoint"/>. The default request timeout is long
    /// enough for a stop that waits a container's whole stopTimeout (ECS allows up to 120 s).
    /// </summary>
    public static IDockerClient CreateDockerClient(string endpoint)
    {
        var client = new DockerClientConfiguration(new Uri(endpoint), defaultTimeout: TimeSpan.FromMinutes(5)).CreateClient();
        return client;
    }
}
