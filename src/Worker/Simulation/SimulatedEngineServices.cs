using Docker.DotNet;
using Microsoft.Extensions.DependencyInjection;

namespace Serverless.Worker.Simulation;

public static class SimulatedEngineServices
{
    /// <summary>
    /// The worker's <see cref="IDockerClient"/>: the Docker Engine, unless <see cref="WorkerOptions.Engine"/>
    /// explicitly says <c>simulated</c>. Any other value is refused, so a typo never runs tasks on nothing.
    /// </summary>
    public static IServiceCollection AddContainerEngine(this IServiceCollection services, WorkerOptions options)
    {
        switch (options.Engine.ToLowerInvariant())
        {
            case "docker":
                services.AddSingleton<IDockerClient>(_ => WorkerServices.CreateDockerClient(options.DockerEndpoint));
                break;
            case "simulated":
                services.AddSingleton(sp => new SimulatedEngine(
                    sp.GetRequiredService<TimeProvider>(), TimeSpan.FromMilliseconds(Math.Max(0, options.SimulatedStartMilliseconds)),
                    cpus: options.Cpu is > 0 and var cpu ? Math.Max(1, cpu / 1024) : 4,
                    memoryBytes: options.MemoryMiB is > 0 and var memory ? (memory + options.ReservedMemoryMiB) * (1L << 20) : 16L << 30));
                services.AddSingleton<IDockerClient>(sp => new SimulatedDockerClient(sp.GetRequiredService<SimulatedEngine>()));
                break;
            default:
                throw new InvalidOperationException($"Worker__Engine is '{options.Engine}': it must be 'docker' (the default) or 'simulated'.");
        }
        return services;
    }
}
