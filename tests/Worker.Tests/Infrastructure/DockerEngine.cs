using Docker.DotNet;
using Docker.DotNet.Models;

namespace Serverless.Worker.Tests.Infrastructure;

/// <summary>
/// The local Docker engine the worker tests run against. It must be there: a missing engine or
/// image fails the tests with the way to get them, it never skips them.
/// </summary>
public static class DockerEngine
{
    public const string Endpoint = "unix:///var/run/docker.sock";

    /// <summary>Built locally from busybox-static (no registry is reachable here).</summary>
    public const string Busybox = "local/busybox:latest";

    /// <summary>Put on every container and volume the tests make, beside the worker's own labels, for cleanup.</summary>
    public const string TestLabel = "ecs-worker.tests";

    public static IDockerClient CreateClient() => WorkerServices.CreateDockerClient(Endpoint);

    public static async Task EnsureReadyAsync(IDockerClient docker)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await docker.System.PingAsync(timeout.Token);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"The worker tests need a Docker engine at {Endpoint}, and it does not answer ({e.GetType().Name}: {e.Message}). " +
                "Install and start it: bash scripts/install-deps.sh (or apt-get install -y docker.io, then run dockerd in the background).", e);
        }
        try
        {
            await docker.Images.InspectImageAsync(Busybox);
        }
        catch (DockerImageNotFoundException e)
        {
            throw new InvalidOperationException(
                $"The worker tests need the local image {Busybox}, which is missing. Build it from busybox-static: " +
                "put /bin/busybox and its links in a folder, then `tar -C folder -c . | docker import - local/busybox:latest` " +
                "(scripts/install-deps.sh does this).", e);
        }
    }

    /// <summary>Removes every container and volume of an instance (the worker's label), whatever state they are in.</summary>
    public static async Task RemoveInstanceAsync(IDockerClient docker, string instanceId)
    {
        var filter = new Dictionary<string, IDictionary<string, bool>>
        {
            ["label"] = new Dictionary<string, bool> { [$"ecs-worker.instance-id={instanceId}"] = true },
        };
        foreach (var container in await docker.Containers.ListContainersAsync(new ContainersListParameters { All = true, Filters = filter }))
        {
            try
            {
                await docker.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true, RemoveVolumes = true });
            }
            catch (DockerApiException e) when (e.StatusCode is System.Net.HttpStatusCode.NotFound or System.Net.HttpStatusCode.Conflict)
            {
                // Gone, or being removed by the worker's own clean-up.
            }
        }
        var volumes = await docker.Volumes.ListAsync(new VolumesListParameters { Filters = filter });
        foreach (var volume in volumes.Volumes ?? [])
        {
            try
            {
                await docker.Volumes.RemoveAsync(volume.Name, force: true);
            }
            catch (DockerApiException)
            {
            }
        }
        // And the awsvpc networks (a subnet's stays while the worker runs), once their containers are gone.
        foreach (var network in await docker.Networks.ListNetworksAsync(new NetworksListParameters { Filters = filter }))
        {
            try
            {
                await docker.Networks.DeleteNetworkAsync(network.ID);
            }
            catch (DockerApiException)
            {
            }
        }
    }
}
