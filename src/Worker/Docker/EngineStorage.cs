using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;

namespace Serverless.Worker.Docker;

/// <summary>
/// Whether the worker's Docker engine can limit a container's writable layer (<c>HostConfig.StorageOpt</c>
/// <c>size</c>, <c>docker create --storage-opt size=</c>), which is how a task's <c>ephemeralStorage</c>
/// is honoured (<see cref="TaskTranslation"/>). Docker takes a size only from some storage drivers, and
/// refuses the whole create otherwise, so the worker passes one only where it is known to work:
/// <list type="bullet">
/// <item><c>btrfs</c> (a qgroup limit on the container's subvolume; the driver turns quotas on itself),
/// <c>zfs</c> (the dataset's quota) and <c>devicemapper</c> (the thin device's size): always;</item>
/// <item><c>overlay2</c>: only over xfs (<c>docker info</c>'s DriverStatus "Backing Filesystem" <c>xfs</c>)
/// mounted with project quotas (<c>pquota</c>, shown as <c>prjquota</c> in the mount's options), which
/// Docker does not report: the worker reads the data root's mount in <c>/proc/self/mountinfo</c>, so it
/// can tell only for an engine on its own host whose data root it sees (a unix socket endpoint); an
/// engine elsewhere, or a data root it cannot see, counts as unable;</item>
/// <item>anything else (overlay2 on ext4, vfs, fuse-overlayfs, ...): unable.</item>
/// </list>
/// Decided once, from the <c>docker info</c> of the worker's registration (before any task is planned),
/// and advertised as <see cref="Attribute"/>.
/// </summary>
public sealed class EngineStorage(IDockerClient docker, WorkerOptions options, ILogger<EngineStorage> logger)
{
    /// <summary>The instance attribute of a worker whose engine sizes writable layers (ECS's agent has none: Fargate sizes its own).</summary>
    public const string Attribute = "ecs-worker.ephemeral-storage";

    private const string MountInfo = "/proc/self/mountinfo";
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool? _sizes;

    /// <summary>Whether the engine sizes writable layers; false until <see cref="ResolveAsync(CancellationToken)"/> ran.</summary>
    public bool SizesWritableLayers => _sizes == true;

    /// <summary>Decides from the engine's <c>docker info</c>, once (later calls return the first answer).</summary>
    public async Task<bool> ResolveAsync(CancellationToken cancellationToken)
    {
        if (_sizes is { } known) return known;
        var info = await docker.System.GetSystemInfoAsync(cancellationToken);
        return Resolve(info);
    }

    /// <summary>Decides from <paramref name="info"/> (the engine's <c>docker info</c>) unless decided already.</summary>
    public bool Resolve(SystemInfoResponse info)
    {
        _gate.Wait();
        try
        {
            if (_sizes is { } known) return known;
            var local = options.DockerEndpoint.StartsWith("unix://", StringComparison.Ordinal);
            var (sizes, why) = Decide(info, local && File.Exists(MountInfo) ? File.ReadAllText(MountInfo) : null);
            logger.LogInformation(sizes
                ? "The Docker engine sizes writable layers ({Why}): a task's ephemeralStorage limits its containers'"
                : "The Docker engine cannot size writable layers ({Why}): a task's ephemeralStorage is not applied", why);
            _sizes = sizes;
            return sizes;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// The rule, pure: whether an engine with <paramref name="info"/> takes <c>StorageOpt size</c>, and why.
    /// <paramref name="mountInfo"/> is the text of <c>/proc/self/mountinfo</c> on the engine's host, or null when unknown.
    /// </summary>
    public static (bool Sizes, string Why) Decide(SystemInfoResponse info, string? mountInfo)
    {
        var driver = info.Driver ?? "";
        switch (driver)
        {
            case "btrfs" or "zfs" or "devicemapper":
                return (true, $"storage driver {driver}");
            case "overlay2":
                var backing = info.DriverStatus?.FirstOrDefault(s => s is [var key, _] && key == "Backing Filesystem")?[1] ?? "unknown";
                if (backing != "xfs") return (false, $"storage driver overlay2 on backing filesystem {backing}; a size needs xfs mounted with pquota");
                if (mountInfo is null) return (false, "storage driver overlay2 on xfs, whose mount options this worker cannot see (the engine is not on its host)");
                // The worker must see the engine's own mount (not, say, its container's root): it is xfs too.
                if (MountOf(mountInfo, info.DockerRootDir ?? "/var/lib/docker") is not { FileSystem: "xfs" } mount)
                    return (false, $"storage driver overlay2 on xfs; the data root {info.DockerRootDir} is not on an xfs mount this worker sees");
                return HasProjectQuota(mount.Options)
                    ? (true, $"storage driver overlay2 on xfs at {mount.MountPoint} with project quotas")
                    : (false, $"storage driver overlay2 on xfs at {mount.MountPoint} without pquota ({mount.Options})");
            default:
                return (false, $"storage driver {(driver.Length > 0 ? driver : "unknown")}");
        }
    }

    /// <summary>Project quotas are enforced: xfs lists <c>prjquota</c> for <c>pquota</c>/<c>prjquota</c> (<c>pqnoenforce</c> only accounts, so it does not count).</summary>
    public static bool HasProjectQuota(string options)
        => options.Split(',').Any(o => o is "prjquota" or "pquota");

    /// <summary>
    /// The mount holding <paramref name="path"/> in <c>/proc/self/mountinfo</c>'s text: the one with the
    /// longest mount point that is a prefix of the path (the last such line when mounts are stacked), with
    /// its per-mount and superblock options joined.
    /// </summary>
    public static (string MountPoint, string FileSystem, string Options)? MountOf(string mountInfo, string path)
    {
        (string MountPoint, string FileSystem, string Options)? best = null;
        foreach (var line in mountInfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            // id parent major:minor root mount-point mount-options [optional fields...] - fstype source super-options
            var fields = line.Split(' ');
            var separator = Array.IndexOf(fields, "-");
            if (fields.Length < 6 || separator < 6 || fields.Length < separator + 4) continue;
            var mountPoint = Unescape(fields[4]);
            if (!Contains(mountPoint, path)) continue;
            if (best is { } current && current.MountPoint.Length > mountPoint.Length) continue;
            best = (mountPoint, fields[separator + 1], fields[5] + "," + fields[separator + 3]);
        }
        return best;
    }

    private static bool Contains(string mountPoint, string path)
        => mountPoint == "/" || path == mountPoint || path.StartsWith(mountPoint.TrimEnd('/') + "/", StringComparison.Ordinal);

    /// <summary>mountinfo escapes space, tab, newline and backslash as octal (<c>\040</c>).</summary>
    private static string Unescape(string field)
        => System.Text.RegularExpressions.Regex.Replace(field, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString());
}
