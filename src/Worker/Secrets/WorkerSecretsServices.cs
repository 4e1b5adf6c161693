using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serverless.Core.Secrets;

namespace Serverless.Worker.Secrets;

public static class WorkerSecretsServices
{
    /// <summary>The worker's part of task secrets: its key pair, its publication, the injection at start.</summary>
    public static IServiceCollection AddWorkerSecrets(this IServiceCollection services, bool runAsHostedService)
    {
        services.AddSingleton<TaskSecretsStore>();
        services.AddSingleton<WorkerSecretKey>();
        services.AddSingleton<WorkerKeyPublisher>();
        services.AddSingleton<TaskSecretsReceiver>();
        // Before the worker's own hosted service: the key is out before the instance can get tasks.
        if (runAsHostedService) services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<WorkerKeyPublisher>());
        return services;
    }
}
