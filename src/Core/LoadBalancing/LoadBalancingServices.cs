using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;
using Serverless.Core.Api.Query;

namespace Serverless.Core.LoadBalancing;

public static class LoadBalancingServices
{
    /// <summary>The ELBv2 API at the shared endpoint, in the query protocol (signing name <c>elasticloadbalancing</c>).</summary>
    public static IServiceCollection AddLoadBalancing(this IServiceCollection services)
    {
        services.AddSingleton(QueryServiceModel.Load("elbv2"));
        services.AddSingleton<QueryEndpoint>();
        services.AddSingleton<ElbArns>();
        services.AddSingleton<LoadBalancingStore>();
        services.AddSingleton<LoadBalancingActions>();
        services.AddSingleton<IActionSource>(sp => sp.GetRequiredService<LoadBalancingActions>());
        services.AddSingleton<ListenerTraffic>();
        services.AddSingleton<ServiceTargets>();
        return services;
    }
}
