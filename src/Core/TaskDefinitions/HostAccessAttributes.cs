namespace Serverless.Core.TaskDefinitions;

/// <summary>
/// Attributes for what a task may do to its host. A worker advertises one only when its settings
/// allow the feature, and a task definition that uses the feature requires it, so placement sends
/// the task only where it may run. ECS's own name where ECS has one, else an <c>ecs-worker.*</c> name.
/// </summary>
public static class HostAccessAttributes
{
    /// <summary>ECS's own: a container with <c>privileged: true</c>.</summary>
    public const string Privileged = "com.amazonaws.ecs.capability.privileged-container";

    /// <summary><c>networkMode: host</c>.</summary>
    public const string HostNetwork = "ecs-worker.network-mode.host";

    /// <summary><c>pidMode: host</c>.</summary>
    public const string HostPidMode = "ecs-worker.pid-mode.host";

    /// <summary><c>ipcMode: host</c>.</summary>
    public const string HostIpcMode = "ecs-worker.ipc-mode.host";

    /// <summary>A volume with <c>host.sourcePath</c> (a bind mount); the worker still checks the path against its allow-list.</summary>
    public const string HostPathMounts = "ecs-worker.host-path-mounts";

    /// <summary><c>linuxParameters.capabilities.add</c>.</summary>
    public const string AddedCapabilities = "ecs-worker.linux-parameters.capabilities-add";

    /// <summary><c>linuxParameters.devices</c>.</summary>
    public const string Devices = "ecs-worker.linux-parameters.devices";

    /// <summary>A <c>dockerVolumeConfiguration</c> with a driver other than <c>local</c>, or with <c>driverOpts</c>.</summary>
    public const string VolumeDriverOptions = "ecs-worker.docker-volume-driver-options";
}
