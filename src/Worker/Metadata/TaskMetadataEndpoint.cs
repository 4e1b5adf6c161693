using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Security.Cryptography;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Metadata;

/// <summary>
/// Where the task metadata server listens, once it does, and what it puts into each container at
/// create: an unguessable id in a label, and the URIs that carry it in the environment
/// (<c>ECS_CONTAINER_METADATA_URI_V4</c> and <c>ECS_CONTAINER_METADATA_URI</c>, and <c>ECS_AGENT_URI</c> for
/// the agent API), as the agent does.
/// </summary>
public sealed class TaskMetadataEndpoint
{
    /// <summary>The container's metadata id: the last segment of its URIs, and the server's only key to it.</summary>
    public const string IdLabel = "ecs-worker.metadata-id";

    /// <summary>The base URI the container was given: a restarted worker listens there again, so its URIs keep working.</summary>
    public const string UriLabel = "ecs-worker.metadata-uri";

    /// <summary><c>http://address:port</c>, or null while (or when) no server listens.</summary>
    public string? BaseUri { get; internal set; }

    /// <summary>Gives every container of <paramref name="plan"/> its id and URIs (idempotent: a start retried keeps the id).</summary>
    public void Inject(TaskPlan plan)
    {
        if (BaseUri is not { } baseUri) return;
        foreach (var container in plan.Containers.Where(c => !c.Internal))
        {
            var parameters = container.Parameters;
            parameters.Labels ??= new Dictionary<string, string>();
            if (!parameters.Labels.TryGetValue(IdLabel, out var id))
                parameters.Labels[IdLabel] = id = RandomNumberGenerator.GetHexString(32, lowercase: true);
            parameters.Labels[UriLabel] = baseUri;
            // Ours win over variables of the same names, as with the agent.
            var env = (parameters.Env ?? []).Where(e => !e.StartsWith("ECS_CONTAINER_METADATA_URI", StringComparison.Ordinal) && !e.StartsWith("ECS_AGENT_URI=", StringComparison.Ordinal)).ToList();
            env.Add($"ECS_CONTAINER_METADATA_URI_V4={baseUri}/v4/{id}");
            env.Add($"ECS_CONTAINER_METADATA_URI={baseUri}/v3/{id}");
            // The agent API (task scale-in protection), keyed by the same id, as the agent's /api/<id>.
            env.Add($"ECS_AGENT_URI={baseUri}/api/{id}");
            parameters.Env = env;
        }
    }
}

/// <summary>
/// The task metadata endpoint (v4, and v3 on the same answers) for this worker's containers, on
/// <see cref="WorkerOptions.MetadataAddress"/>: by default the gateway of Docker's <c>bridge</c>
/// network, an address of the host that its containers reach (bridge, <c>awsvpc</c> and host mode)
/// and that is not on any outside interface. A request names a container by its id
/// (<see cref="TaskMetadataEndpoint.IdLabel"/>), and is answered about that container's task only.
/// </summary>
public sealed class TaskMetadataServer(
    TaskMetadataEndpoint endpoint, TaskMetadataReader reader, TaskProtectionAgent protection, IDockerClient docker, WorkerOptions options,
    Registration.WorkerIdentity identity, ILogger<TaskMetadataServer> logger) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.MetadataPort < 0) return;
        var address = options.MetadataAddress is { Length: > 0 } configured ? configured : await BridgeGatewayAsync(cancellationToken);
        var port = options.MetadataPort;
        if (port == 0 && await PreviousPortAsync(address, cancellationToken) is { } previous)
        {
            try
            {
                _app = await ListenAsync(address, previous, cancellationToken);
            }
            catch (IOException e)
            {
                logger.LogWarning("The task metadata port {Port} of this instance's running containers is taken ({Error}): their metadata URIs no longer answer", previous, e.Message);
            }
        }
        _app ??= await ListenAsync(address, port, cancellationToken);
        var bound = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        endpoint.BaseUri = $"http://{address}:{bound.Port}";
        logger.LogInformation("Task metadata endpoint at {BaseUri}", endpoint.BaseUri);
    }

    private async Task<WebApplication> ListenAsync(string address, int port, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Parse(address), port));
        var app = builder.Build();
        foreach (var version in new[] { "v3", "v4" })
        {
            app.MapGet($"/{version}/{{id}}", (string id, CancellationToken ct) => reader.ContainerAsync(id, ct));
            app.MapGet($"/{version}/{{id}}/task", (string id, CancellationToken ct) => reader.TaskAsync(id, ct));
            app.MapGet($"/{version}/{{id}}/taskWithTags", (string id, CancellationToken ct) => reader.TaskWithTagsAsync(id, ct));
            app.MapGet($"/{version}/{{id}}/stats", (string id, CancellationToken ct) => reader.ContainerStatsAsync(id, ct));
            app.MapGet($"/{version}/{{id}}/task/stats", (string id, CancellationToken ct) => reader.TaskStatsAsync(id, ct));
        }
        app.MapGet("/api/{id}/task-protection/v1/state", (string id, CancellationToken ct) => protection.GetAsync(id, ct));
        app.MapPut("/api/{id}/task-protection/v1/state", (string id, HttpRequest request, CancellationToken ct) => protection.PutAsync(id, request, ct));
        try
        {
            await app.StartAsync(cancellationToken);
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>The port in the URIs of this instance's newest container that has one on <paramref name="address"/> (a restart), or null.</summary>
    private async Task<int?> PreviousPortAsync(string address, CancellationToken cancellationToken)
    {
        var containers = await docker.Containers.ListContainersAsync(
            new ContainersListParameters { All = true, Filters = DockerLabels.InstanceFilter(identity.InstanceId) }, cancellationToken);
        return containers.OrderByDescending(c => c.Created)
            .Select(c => Uri.TryCreate(DockerLabels.Get(c.Labels, TaskMetadataEndpoint.UriLabel), UriKind.Absolute, out var uri) ? uri : null)
            .FirstOrDefault(uri => uri is not null && uri.Host == address)?.Port;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null) await _app.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
    }

    private async Task<string> BridgeGatewayAsync(CancellationToken cancellationToken)
    {
        const string missing = "Docker has no bridge network with an IPv4 gateway to serve task metadata on: set Worker__MetadataAddress (or Worker__MetadataPort=-1)";
        NetworkResponse bridge;
        try
        {
            bridge = await docker.Networks.InspectNetworkAsync("bridge", cancellationToken);
        }
        catch (DockerNetworkNotFoundException e)
        {
            throw new InvalidOperationException(missing, e);
        }
        return bridge.IPAM?.Config?.Select(c => c.Gateway).FirstOrDefault(g => IPAddress.TryParse(g, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork)
            ?? InterfaceAddress(bridge)
            // Docker gives the bridge the subnet's first address (172.17.0.1 for 172.17.0.0/16).
            ?? bridge.IPAM?.Config?.Select(c => FirstAddress(c.Subnet)).FirstOrDefault(a => a is not null)
            ?? throw new InvalidOperationException(missing);
    }

    /// <summary>
    /// The bridge's own IPv4 address on this host. A daemon that chose the default bridge's subnet
    /// itself (Debian's docker.io on a fresh machine) lists the subnet with no gateway; the gateway
    /// is then the address of the bridge interface (<c>docker0</c> unless the network names another).
    /// </summary>
    private static string? InterfaceAddress(NetworkResponse bridge)
    {
        var name = bridge.Options is { } options && options.TryGetValue("com.docker.network.bridge.name", out var named) ? named : "docker0";
        return NetworkInterface.GetAllNetworkInterfaces()
            .Where(n => n.Name == name)
            .SelectMany(n => n.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)?.ToString();
    }

    /// <summary>The first host address of an IPv4 subnet (<c>a.b.c.d/n</c>), or null.</summary>
    internal static string? FirstAddress(string? subnet)
    {
        if (subnet is null || !IPNetwork.TryParse(subnet, out var network) || network.BaseAddress.AddressFamily != AddressFamily.InterNetwork || network.PrefixLength > 30)
            return null;
        var bytes = network.BaseAddress.GetAddressBytes();
        bytes[3]++;
        return new IPAddress(bytes).ToString();
    }
}

public static class TaskMetadataServices
{
    /// <summary>The task metadata endpoint; its server starts with the worker, before tasks do.</summary>
    public static IServiceCollection AddTaskMetadata(this IServiceCollection services, bool runAsHostedService)
    {
        services.AddSingleton<TaskMetadataEndpoint>();
        services.AddSingleton<TaskMetadataReader>();
        services.AddSingleton<TaskProtectionAgent>();
        services.AddSingleton<TaskMetadataServer>();
        if (runAsHostedService) services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<TaskMetadataServer>());
        return services;
    }
}
