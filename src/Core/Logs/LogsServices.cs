using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;

namespace Serverless.Core.Logs;

public static class LogsServices
{
    /// <summary>CloudWatch Logs at the one endpoint: its model, its actions, its stores and the retention sweep.</summary>
    public static IServiceCollection AddLogs(this IServiceCollection services)
    {
        services.AddSingleton(ServiceModel.Load("logs"));
        services.AddSingleton<LogStore>();
        services.AddSingleton<LogEventStore>();
        services.AddSingleton<IActionSource, LogsActions>();
        services.AddSingleton<LogRetention>();
        return services;
    }
}
