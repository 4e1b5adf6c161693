using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;

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
        services.AddSingleton<CapacityLoop>();
        services.AddSingleton<IActionSource, CapacityProviderActions>();
        return services;
    }
}
