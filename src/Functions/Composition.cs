using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Serverless.Core;
using Serverless.Core.Telemetry;

namespace Serverless.Functions;

/// <summary>
/// The single place the app's services are registered. Both the Functions host mode and the standalone
/// mode call it, so a function class resolves the same dependencies in both.
/// </summary>
public static class Composition
{
    public static void ConfigureServices(IServiceCollection services, IConfiguration configuration)
    {
        // All time comes from here, so tests can substitute a FakeTimeProvider.
        services.TryAddSingleton(TimeProvider.System);
        services.AddControlPlane(configuration);
        services.AddTelemetry(configuration, "ecs-control-plane");
    }
}
