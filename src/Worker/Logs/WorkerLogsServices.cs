using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Logs;

namespace Serverless.Worker.Logs;

public static class WorkerLogsServices
{
    /// <summary>The awslogs driver: the Logs stores the worker writes into directly, and the shipper.</summary>
    public static IServiceCollection AddWorkerLogs(this IServiceCollection services)
    {
        services.AddSingleton<LogStore>();
        services.AddSingleton<LogEventStore>();
        services.AddSingleton<LogIngest>();
        services.AddSingleton<AwsLogsShipper>();
        return services;
    }
}
