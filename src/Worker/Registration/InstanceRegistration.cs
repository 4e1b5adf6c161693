using System.Reflection;
using System.Runtime.InteropServices;
using Docker.DotNet;
using Microsoft.Extensions.Logging;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Storage;

namespace Serverless.Worker.Registration;

/// <summary>
/// Registers the host as a container instance (the agent's RegisterContainerInstance): its CPU,
/// memory, reserved ports and attributes, under the persisted instance id. A restarted worker
/// re-registers the same id, which keeps the instance's reservations and tasks.
/// </summary>
public sealed class InstanceRegistration(
    ContainerInstanceStore store, ServiceResync resync, IDockerClient docker, QueueWake wake, WorkerIdentity identity, WorkerOptions options, ILogger<InstanceRegistration> logger)
{
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

        var wanted = await DescribeHostAsync(cancellationToken);
        var registered = await store.RegisterAsync(wanted, cancellationToken);
        logger.LogInformation("Registered {ContainerInstanceArn} ({Ec2InstanceId}): CPU {Cpu}, MEMORY {Memory} MiB",
            identity.ContainerInstanceArn, registered.Ec2InstanceId, registered.RegisteredCpu, registered.RegisteredMemory);
        // What RegisterContainerInstance does in the control plane: the cluster's services look at
        // the new capacity now (a DAEMON service starts its task here) rather than at the next resync.
        await resync.ResyncClusterAsync(identity.Cluster, cancellationToken);
        return registered;
    }

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
                options, HostResources.CpuArchitecture(RuntimeInformation.OSArchitecture), version.MinAPIVersion, version.APIVersion),
            AgentVersion = AgentVersion,
            // ECS reports the engine as "DockerVersion: <version>".
            DockerVersion = $"DockerVersion: {version.Version}",
            WakeEndpoint = wake.Endpoint,
        };
    }

    /// <summary>The worker's version, reported as ECS's agent version.</summary>
    public static string AgentVersion { get; } =
        typeof(InstanceRegistration).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(InstanceRegistration).Assembly.GetName().Version?.ToString() ?? "0.0.0";
}
