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

    /// <summary>ECS's own (ECS_SELINUX_CAPABLE): a <c>dockerSecurityOptions</c> entry <c>label:...</c>.</summary>
    public const string SeLinux = "com.amazonaws.ecs.capability.selinux";

    /// <summary>ECS's own (ECS_APPARMOR_CAPABLE): a <c>dockerSecurityOptions</c> entry <c>apparmor:...</c>.</summary>
    public const string AppArmor = "com.amazonaws.ecs.capability.apparmor";

    /// <summary>Any <c>dockerSecurityOptions</c> entry but <c>no-new-privileges</c> (which only hardens).</summary>
    public const string SecurityOptions = "ecs-worker.docker-security-options";

    /// <summary>Whether a <c>dockerSecurityOptions</c> entry loosens or changes confinement (all but <c>no-new-privileges</c>).</summary>
    public static bool LoosensConfinement(string securityOption)
        => securityOption is not ("no-new-privileges" or "no-new-privileges:true" or "no-new-privileges=true");
}
