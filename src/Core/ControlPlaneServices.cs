using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Serverless.Core.AccountSettings;
using Serverless.Core.Alarms;
using Serverless.Core.Api;
using Serverless.Core.AutoScaling;
using Serverless.Core.Capacity;
using Serverless.Core.Api.Auth;
using Serverless.Core.Clusters;
using Serverless.Core.Deploy;
using Serverless.Core.Logs;
using Serverless.Core.Metrics;
using Serverless.Core.LoadBalancing;
using Serverless.Core.Reconciliation;
using Serverless.Core.Secrets;
using Serverless.Core.Services;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Storage;
using Serverless.Core.TaskProtection;
using Serverless.Core.Tags;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;
using Serverless.Core.WebConsole;

namespace Serverless.Core;

public static class ControlPlaneServices
{
    /// <summary>
    /// Everything the control plane needs, from configuration: section <c>Ecs</c> (<see cref="EcsOptions"/>)
    /// and the storage connection <c>AzureWebJobsStorage</c>, as the Functions host names it: a connection
    /// string, or an identity-based connection (<see cref="StorageAccess"/>).
    /// </summary>
    public static IServiceCollection AddControlPlane(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new EcsOptions();
        configuration.GetSection("Ecs").Bind(options);

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(options);
        services.AddSingleton<Arns>();
        services.AddSingleton(StorageAccess.From(configuration).CreateClients(options));
        services.AddSingleton<QueueWake>();
        services.AddSingleton(sp => new SigV4Verifier(options.ParseAccessKeys(), sp.GetRequiredService<TimeProvider>()));

        services.AddSingleton<AccountSettingsStore>();
        services.AddSingleton<AccountSettingsActions>();
        services.AddSingleton<IActionSource>(sp => sp.GetRequiredService<AccountSettingsActions>());

        services.AddSingleton<ClusterStore>();
        services.AddSingleton<ITaggedResource, ClusterTags>();
        services.AddSingleton<IActionSource, ClusterActions>();

        services.AddSingleton<TaskDefinitionStore>();
        services.AddSingleton<ITaggedResource, TaskDefinitionTags>();
        services.AddSingleton<IActionSource, TaskDefinitionActions>();

        services.AddSingleton<ContainerInstanceStore>();
        services.AddSingleton<ITaggedResource, ContainerInstanceTags>();
        services.AddSingleton<IClusterUsage, ContainerInstanceUsage>();
        services.AddSingleton<IActionSource, ContainerInstanceActions>();

        services.AddSingleton<TaskStore>();
        services.AddSingleton<ITaggedResource, TaskTags>();
        services.AddSingleton<TaskJson>();
        services.AddSingleton<TaskLauncher>();
        services.AddSingleton<TaskStateApplier>();
        services.AddSingleton<ReconcileQueue>();

        services.AddSingleton<ServiceStore>();
        services.AddSingleton<ITaggedResource, ServiceTags>();
        services.AddSingleton<IClusterUsage, ServiceUsage>();
        services.AddSingleton<ServiceJson>();
        services.AddSingleton<IActionSource, ServiceActions>();
        services.AddSingleton<IActionSource, ServiceDeploymentActions>();
        services.AddSingleton<ServiceReconciler>();
        services.AddSingleton<ReconcileRuns>();
        services.AddSingleton<ServiceResync>();
        services.AddSingleton<InstanceHealthSweep>();
        services.AddSingleton<TaskRetention>();
        services.AddSingleton<TaskDeliverySweep>();
        services.AddSingleton<SweepReads>();
        services.AddSingleton<TaskEventsRedrive>();
        services.AddSingleton<ClientTokens>();
        services.AddSingleton<IActionSource, TaskActions>();

        services.AddSingleton<IActionSource, TagActions>();
        services.AddCapacity(configuration);
        services.AddLoadBalancing();
        services.AddSingleton(ServiceModel.Ecs);
        services.AddSingleton(ServiceModel.AutoScaling);
        services.AddLogs();
        services.AddSingleton<ActionRegistry>();
        services.AddSingleton<ApiEndpoint>();
        services.AddSecrets(configuration);
        services.AddDeploy(configuration);
        services.AddMetrics(configuration);
        services.AddAutoScaling(configuration);
        services.AddAlarms();
        services.AddConsole();
        services.AddTaskProtection();
        return services;
    }
}
