using System.Text.Json.Nodes;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Worker.Docker;

/// <summary>
/// What this worker lets a task do to its host, from <see cref="WorkerOptions"/>: the ECS agent's
/// <c>ECS_DISABLE_PRIVILEGED</c> and its kin, turned around so that nothing is allowed unless the
/// operator says so. <see cref="Refusal"/> is the pure check; <see cref="Registration.InstanceAttributes"/>
/// advertises what is allowed so placement sends a task only where it may run.
/// </summary>
/// <param name="HostPaths">Host directories a <c>volumes[].host.sourcePath</c> may be, or lie below (absolute, normalised).</param>
public sealed record TaskPermissions(
    bool Privileged = false,
    bool HostNetwork = false,
    bool HostPidMode = false,
    bool HostIpcMode = false,
    IReadOnlyList<string>? HostPaths = null,
    bool AddedCapabilities = false,
    bool Devices = false,
    bool VolumeDriverOptions = false,
    bool SecurityOptions = false)
{
    /// <summary>The default: every feature that reaches into the host is refused.</summary>
    public static readonly TaskPermissions None = new();

    /// <summary>Everything allowed (tests of translation that are not about permissions).</summary>
    public static readonly TaskPermissions All = new(true, true, true, true, ["/"], true, true, true, true);

    /// <summary><see cref="HostPaths"/> normalised: absolute, no trailing slash, no <c>..</c>; relative ones dropped.</summary>
    public IReadOnlyList<string> AllowedHostPaths => (HostPaths ?? []).Select(Normalize).OfType<string>().Distinct().ToList();

    /// <summary>
    /// Follows symbolic links in a host path (as Docker will when it binds it), or null to judge
    /// paths as written. Without it, a link inside an allowed directory could point anywhere.
    /// </summary>
    public Func<string, string>? ResolveLinks { get; init; }

    /// <summary>The worker's permissions; bind sources are judged after following the host's links.</summary>
    public static TaskPermissions From(WorkerOptions options) => new(
        options.AllowPrivileged, options.AllowHostNetwork, options.AllowHostPidMode, options.AllowHostIpcMode,
        (options.AllowedHostPaths ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        options.AllowAddedCapabilities, options.AllowDevices, options.AllowVolumeDriverOptions, options.AllowSecurityOptions)
    {
        ResolveLinks = HostPathResolver.Resolve,
    };

    /// <summary>
    /// The first thing the task definition asks for that this worker does not allow, as a stopped
    /// reason naming the setting that would allow it; null when the task may run.
    /// </summary>
    public string? Refusal(JsonObject taskDefinition)
    {
        var view = new TaskDefinitionView(taskDefinition);
        if (!HostNetwork && view.NetworkMode == TaskDefinitionDefaults.Host)
            return Refused("the host network mode is", nameof(WorkerOptions.AllowHostNetwork));
        if (!HostPidMode && view.PidMode == "host")
            return Refused("pidMode host is", nameof(WorkerOptions.AllowHostPidMode));
        if (!HostIpcMode && view.IpcMode == "host")
            return Refused("ipcMode host is", nameof(WorkerOptions.AllowHostIpcMode));

        foreach (var container in view.ContainerDefinitions)
        {
            if (!Privileged && container.Privileged)
                return Refused("privileged containers are", nameof(WorkerOptions.AllowPrivileged));
            if (!AddedCapabilities && container.LinuxParameters?.AddedCapabilities.Count > 0)
                return Refused("added Linux capabilities (linuxParameters.capabilities.add) are", nameof(WorkerOptions.AllowAddedCapabilities));
            if (!Devices && container.LinuxParameters?.Devices.Count > 0)
                return Refused("host devices (linuxParameters.devices) are", nameof(WorkerOptions.AllowDevices));
            if (!SecurityOptions && container.DockerSecurityOptions.Any(HostAccessAttributes.LoosensConfinement))
                return Refused("Docker security options other than no-new-privileges are", nameof(WorkerOptions.AllowSecurityOptions));
        }

        foreach (var volume in view.Volumes)
        {
            var name = volume.Json["name"]?.GetValue<string>();
            if (volume.HostSourcePath is { Length: > 0 } sourcePath && !MayMount(sourcePath))
            {
                return $"CannotCreateContainerError: volume {name}: host path {sourcePath} is not allowed on this worker "
                       + $"(Worker__{nameof(WorkerOptions.AllowedHostPaths)}={string.Join(';', AllowedHostPaths)})";
            }
            if (!VolumeDriverOptions && volume.DockerVolumeConfiguration is { NeedsDriverOptions: true })
            {
                return $"ResourceInitializationError: volume {name}: Docker volume drivers other than local, and driver options, are disabled on this worker "
                       + $"(Worker__{nameof(WorkerOptions.AllowVolumeDriverOptions)}=false)";
            }
        }
        return null;
    }

    /// <summary>
    /// Whether a bind source lies in an allowed directory. The path is normalised first (no
    /// <c>..</c> escapes), and with <see cref="ResolveLinks"/> it must still lie there once its
    /// links are followed; a relative path is never allowed.
    /// </summary>
    public bool MayMount(string sourcePath)
    {
        if (Normalize(sourcePath) is not { } path) return false;
        var allowed = AllowedHostPaths;
        if (!Within(path, allowed)) return false;
        // Where Docker will really bind: the path, and the allowed directories, with links followed.
        return ResolveLinks is not { } resolve || Within(resolve(path), allowed.Select(resolve).ToList());
    }

    private static bool Within(string path, IReadOnlyList<string> allowed)
        => allowed.Any(a => a == "/" || path == a || path.StartsWith(a + "/", StringComparison.Ordinal));

    /// <summary>
    /// A Docker volume that is not the plain local driver: another driver, or any driver options
    /// (the local driver's <c>type=none,o=bind,device=/</c> is a bind mount of any host path).
    /// </summary>

    private static string? Normalize(string path)
    {
        if (!path.StartsWith('/')) return null;
        var full = Path.GetFullPath(path);
        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    private static string Refused(string what, string setting)
        => $"CannotCreateContainerError: {what} disabled on this worker (Worker__{setting}=false)";
}
