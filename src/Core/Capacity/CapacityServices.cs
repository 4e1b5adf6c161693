using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;
using Serverless.Core.Storage;

namespace Serverless.Core.Capacity;

public static class CapacityServices
{
    /// <summary>Capacity providers: their table and their ECS actions.</summary>
    public static IServiceCollection AddCapacity(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new CapacityOptions();
        configuration.GetSection("Capacity").Bind(options);
        services.AddSingleton(options);
        services.AddSingleton<CapacityProviderStore>();
        services.AddSingleton<WaitingTaskStore>();
        services.AddSingleton<WorkerPoolStore>();
        // Scale-set pools are reached through Azure Resource Manager with the app's identity.
        if (options.ScaleSets.Count > 0)
            services.AddSingleton(sp => ActivatorUtilities.CreateInstance<ScaleSetPools>(sp, StorageAccess.From(configuration).Credential(), new HttpClient()));
        services.AddSingleton<CapacityLoop>();
        services.AddHostedService<CapacityWakes>();
        services.AddSingleton<IActionSource, CapacityProviderActions>();
        return services;
    }
}
