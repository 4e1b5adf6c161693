using System.Globalization;
using Serverless.Core.ContainerInstances;
using Serverless.Core.TaskDefinitions;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Registration;

/// <summary>
/// The attributes a worker registers, as the ECS agent advertises them: the platform
/// (<c>ecs.os-type</c>, <c>ecs.os-family</c>, <c>ecs.cpu-architecture</c>, optionally
/// <c>ecs.instance-type</c> and <c>ecs.availability-zone</c>), the capabilities it really has,
/// and the operator's custom attributes. Placement matches a task definition's
/// <c>requiresAttributes</c> against these, so nothing is advertised that the worker cannot do:
/// no task IAM roles, no ECR auth, no registry credentials, no awsvpc, and what reaches into the host
/// (privileged containers, host namespaces, bind mounts, ...) only when the settings allow it.
/// </summary>
public static class InstanceAttributes
{
    private const string Legacy = "com.amazonaws.ecs.capability.";
    private const string Current = "ecs.capability.";

    /// <summary>The Docker API versions the ECS agent knows to advertise (docker-remote-api.1.17 onwards).</summary>
    private static readonly Version FirstKnownApiVersion = new(1, 17);

    /// <summary>Logging drivers advertised (ECS_AVAILABLE_LOGGING_DRIVERS' default).</summary>
    public static readonly IReadOnlyList<string> LoggingDrivers = ["json-file", "none", "awslogs"];

    /// <param name="sizesWritableLayers">The engine limits containers' writable layers (<see cref="EngineStorage"/>): advertised as <see cref="EngineStorage.Attribute"/>.</param>
    public static IReadOnlyList<InstanceAttribute> Build(
        WorkerOptions options, string cpuArchitecture, string dockerMinApiVersion, string dockerApiVersion, bool sizesWritableLayers = false)
    {
        var attributes = new List<InstanceAttribute>
        {
            new("ecs.os-type", "linux"),
            new("ecs.os-family", "LINUX"),
            new("ecs.cpu-architecture", cpuArchitecture),
        };
        if (options.InstanceType is { Length: > 0 } instanceType) attributes.Add(new("ecs.instance-type", instanceType));
        if (options.AvailabilityZone is { Length: > 0 } zone) attributes.Add(new("ecs.availability-zone", zone));

        foreach (var version in ApiVersions(dockerMinApiVersion, dockerApiVersion))
            attributes.Add(new(Legacy + "docker-remote-api." + version, null));
        foreach (var driver in LoggingDrivers)
            attributes.Add(new(Legacy + "logging-driver." + driver, null));
        attributes.Add(new(Current + "container-health-check", null));
        attributes.Add(new(Current + "container-ordering", null));
        attributes.Add(new(Current + "docker-plugin.local", null));
        // Secrets from Secrets Manager and the Parameter Store, sealed to this worker (Worker/Secrets).
        attributes.Add(new(Current + "secrets.asm.environment-variables", null));
        attributes.Add(new(Current + "secrets.ssm.environment-variables", null));
        // awsvpc: each task gets its own network (a Docker network and pause container, as the agent's task ENI).
        attributes.Add(new(Current + "task-eni", null));
        foreach (var name in HostAccess(options)) attributes.Add(new(name, null));
        // ephemeralStorage is applied (each container's writable layer sized): a definition can require it.
        if (sizesWritableLayers) attributes.Add(new(EngineStorage.Attribute, null));

        foreach (var custom in ParseCustom(options.Attributes))
        {
            attributes.RemoveAll(a => a.Name == custom.Name);
            attributes.Add(custom);
        }
        return attributes;
    }

    /// <summary>The <see cref="HostAccessAttributes"/> this worker's settings allow (the ECS agent drops privileged-container under ECS_DISABLE_PRIVILEGED).</summary>
    public static IEnumerable<string> HostAccess(WorkerOptions options)
    {
        if (options.AllowPrivileged) yield return HostAccessAttributes.Privileged;
        if (options.AllowHostNetwork) yield return HostAccessAttributes.HostNetwork;
        if (options.AllowHostPidMode) yield return HostAccessAttributes.HostPidMode;
        if (options.AllowHostIpcMode) yield return HostAccessAttributes.HostIpcMode;
        if (TaskPermissions.From(options).AllowedHostPaths.Count > 0) yield return HostAccessAttributes.HostPathMounts;
        if (options.AllowAddedCapabilities) yield return HostAccessAttributes.AddedCapabilities;
        if (options.AllowDevices) yield return HostAccessAttributes.Devices;
        if (options.AllowVolumeDriverOptions) yield return HostAccessAttributes.VolumeDriverOptions;
        if (options.AllowSecurityOptions)
        {
            yield return HostAccessAttributes.SeLinux;
            yield return HostAccessAttributes.AppArmor;
            yield return HostAccessAttributes.SecurityOptions;
        }
    }

    /// <summary>
    /// <c>1.17</c> … the engine's API version, as the agent lists them (each minor version the engine
    /// serves, from the agent's first known one or the engine's minimum, whichever is later).
    /// </summary>
    public static IReadOnlyList<string> ApiVersions(string minimum, string maximum)
    {
        if (!Version.TryParse(maximum, out var max)) return [];
        var min = Version.TryParse(minimum, out var parsed) && parsed > FirstKnownApiVersion ? parsed : FirstKnownApiVersion;
        var versions = new List<string>();
        if (max.Major != 1) return versions;
        for (var minor = min.Minor; minor <= max.Minor; minor++)
            versions.Add(string.Create(CultureInfo.InvariantCulture, $"1.{minor}"));
        return versions;
    }

    /// <summary>Custom attributes, <c>name=value;name2=value2</c>; a name without <c>=</c> has no value.</summary>
    public static IReadOnlyList<InstanceAttribute> ParseCustom(string? text)
    {
        var result = new List<InstanceAttribute>();
        foreach (var item in (text ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = item.IndexOf('=');
            var (name, value) = equals < 0 ? (item, (string?)null) : (item[..equals].Trim(), item[(equals + 1)..].Trim());
            if (name.Length == 0) continue;
            result.RemoveAll(a => a.Name == name);
            result.Add(new InstanceAttribute(name, value));
        }
        return result;
    }
}
