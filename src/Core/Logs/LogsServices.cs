using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;

namespace Serverless.Core.Logs;

public static class LogsServices
{
    /// <summary>CloudWatch Logs at the one endpoint: its model, its actions, its stores and the retention sweep.</summary>
    public static IServiceCollection AddLogs(this IServiceCollection services)
    {
        // 1 MiB of messages (PutLogEvents' limit) is up to six times that as JSON when every byte is escaped.
        services.AddSingleton(ServiceModel.Load("logs").WithMaxRequestBodyBytes(8 * 1024 * 1024));
        services.AddSingleton<LogStore>();
        services.AddSingleton<LogEventStore>();
        services.AddSingleton<LogIngest>();
        services.AddSingleton<IActionSource, LogsActions>();
        services.AddSingleton<LogRetention>();
        return services;
    }
}
