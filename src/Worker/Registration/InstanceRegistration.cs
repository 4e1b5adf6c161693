using System.Reflection;
using System.Runtime.InteropServices;
using Docker.DotNet;
using Microsoft.Extensions.Logging;
using Serverless.Core.Capacity;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Registration;

/// <summary>
/// Registers the host as a container instance (the agent's RegisterContainerInstance): its CPU,
/// memory, reserved ports and attributes, under the persisted instance id. A restarted worker
/// re-registers the same id, which keeps the instance's reservations and tasks.
/// </summary>
public sealed class InstanceRegistration(
    ContainerInstanceStore store, ServiceResync resync, IDockerClient docker, QueueWake wake, WorkerIdentity identity, WorkerOptions options,
    StorageClock clock, TimeProvider time, ILogger<InstanceRegistration> logger, WaitingTaskStore? waiting = null, EngineStorage? storage = null)
{
    /// <summary>
    /// Registers the host, unless another live worker holds the instance id: then throws
    /// <see cref="InvalidOperationException"/> (the worker exits) and leaves the row alone.
    /// </summary>
    public async Task<ContainerInstanceRecord> RegisterAsync(CancellationToken cancellationToken)
    {
        var existing = await store.FindAsync(identity.Cluster, identity.InstanceId, cancellationToken);
        if (existing is { Status: ContainerInstanceRecord.Inactive })
        {
            // As the ECS agent: a deregistered instance does not come back by itself.
            throw new InvalidOperationException(
                $"Container instance {identity.ContainerInstanceArn} was deregistered. Remove the worker's state " +
                $"({InstanceIdentity.StateDirectory(options)}) or set Worker__InstanceId to register as a new instance.");
        }
        if (existing is { Owner: { } owner } && owner != identity.Session && await StillBeatingAsync(existing, cancellationToken))
        {
            logger.LogCritical("Container instance {ContainerInstanceArn} is held by another running worker ({Owner}); this worker exits " +
                "rather than run or report that worker's tasks. Give each worker its own instance id (Worker__InstanceId or its state directory {StateDirectory}).",
                identity.ContainerInstanceArn, owner, InstanceIdentity.StateDirectory(options));
            throw new InvalidOperationException(
                $"Container instance {identity.ContainerInstanceArn} is held by another running worker. Give each worker its own instance id.");
        }

        var wanted = await DescribeHostAsync(cancellationToken) with { Owner = identity.Session };
        await clock.SyncAsync(TaskMessages.CommandQueue(identity.InstanceId), cancellationToken);
        var registered = await store.RegisterAsync(wanted, cancellationToken);
        logger.LogInformation("Registered {ContainerInstanceArn} ({Ec2InstanceId}): CPU {Cpu}, MEMORY {Memory} MiB",
            identity.ContainerInstanceArn, registered.Ec2InstanceId, registered.RegisteredCpu, registered.RegisteredMemory);
        // What RegisterContainerInstance does in the control plane: the cluster's services that new room
        // can change look at it now (a DAEMON service starts its task here) rather than at the next resync.
        await resync.ResyncClusterAsync(identity.Cluster, cancellationToken, newCapacity: true);
        await WakeCapacityLoopsAsync(cancellationToken);
        return registered;
    }

    /// <summary>
    /// Tasks of this worker's capacity provider that wait for room can be placed here now: the control
    /// planes that put them waiting (their rows name where they take wakes) are woken, so their capacity
    /// loops place them at once rather than at their next tick. Best effort: the tick still finds them.
    /// </summary>
    private async Task WakeCapacityLoopsAsync(CancellationToken cancellationToken)
    {
        if (waiting is null || options.CapacityProvider is not { Length: > 0 } provider || CapacityProviderNames.IsFargate(provider)) return;
        try
        {
            foreach (var endpoint in await waiting.WakesAsync(identity.Cluster, provider, cancellationToken))
                wake.Send(endpoint, CapacityLoop.WakeName);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogDebug("Could not read where to wake the capacity loop: {Error}", e.Message);
        }
    }

    /// <summary>
    /// Whether the worker that holds <paramref name="seen"/> is alive: its heartbeat changes the
    /// row's beat within two heartbeat intervals. Judged by watching the row, not by anyone's clock.
    /// A worker that stopped cleanly gave the row up, so only a crashed one costs this wait.
    /// </summary>
    private async Task<bool> StillBeatingAsync(ContainerInstanceRecord seen, CancellationToken cancellationToken)
    {
        var watch = TimeSpan.FromSeconds(2 * Math.Max(1, options.HeartbeatSeconds) + 1);
        logger.LogInformation("{ContainerInstanceArn} is held by worker {Owner}; watching its heartbeat for {Watch} before taking it over",
            identity.ContainerInstanceArn, seen.Owner, watch);
        await Task.Delay(watch, time, cancellationToken);
        var now = await store.FindAsync(identity.Cluster, identity.InstanceId, cancellationToken);
        return now is not null && now.Owner == seen.Owner && now.Beat != seen.Beat;
    }

    /// <summary>Gives the instance up when the worker stops cleanly, so its next start registers without waiting.</summary>
    public Task ReleaseAsync(CancellationToken cancellationToken)
        => store.ReleaseOwnerAsync(identity.Cluster, identity.InstanceId, identity.Session, cancellationToken);

    /// <summary>What this host offers, as a registration.</summary>
    public async Task<ContainerInstanceRecord> DescribeHostAsync(CancellationToken cancellationToken)
    {
        var info = await docker.System.GetSystemInfoAsync(cancellationToken);
        var version = await docker.System.GetVersionAsync(cancellationToken);
        return new ContainerInstanceRecord
        {
            Cluster = identity.Cluster,
            Id = identity.InstanceId,
            Ec2InstanceId = options.Ec2InstanceId is { Length: > 0 } ec2 ? ec2 : Environment.MachineName,
            RegisteredCpu = HostResources.Cpu(options, Environment.ProcessorCount),
            RegisteredMemory = HostResources.Memory(options, HostResources.TotalMemoryMiB(info.MemTotal)),
            RegisteredTcpPorts = ContainerInstanceRecord.EcsReservedPorts,
            RegisteredUdpPorts = [],
            Attributes = InstanceAttributes.Build(
                options, HostResources.CpuArchitecture(RuntimeInformation.OSArchitecture), version.MinAPIVersion, version.APIVersion,
                storage?.Resolve(info) == true),
            AgentVersion = AgentVersion,
            // ECS reports the engine as "DockerVersion: <version>".
            DockerVersion = $"DockerVersion: {version.Version}",
            WakeEndpoint = wake.Endpoint,
            HostAddress = HostAddress(options),
            CapacityProviderName = options.CapacityProvider is { Length: > 0 } provider ? provider : null,
        };
    }

    /// <summary><see cref="WorkerOptions.HostAddress"/>, checked: one IP address (a load balancer connects to it), default loopback.</summary>
    public static string HostAddress(WorkerOptions options)
    {
        if (options.HostAddress is not { Length: > 0 } configured) return System.Net.IPAddress.Loopback.ToString();
        return System.Net.IPAddress.TryParse(configured, out var ip) && !ip.Equals(System.Net.IPAddress.Any) && !ip.Equals(System.Net.IPAddress.IPv6Any)
            ? ip.ToString()
            : throw new InvalidOperationException($"Worker:HostAddress '{configured}' is not one IP address of this host.");
    }

    /// <summary>The worker's version, reported as ECS's agent version.</summary>
    public static string AgentVersion { get; } =
        typeof(InstanceRegistration).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(InstanceRegistration).Assembly.GetName().Version?.ToString() ?? "0.0.0";
}
