using System.Text.RegularExpressions;

namespace Serverless.Worker.Registration;

/// <summary>Who this worker is: its cluster, container instance id and ARN. Fixed for the process's life.</summary>
public sealed record WorkerIdentity(string Cluster, string InstanceId, string ContainerInstanceArn)
{
    /// <summary>This worker process, as the instance row's owner: a second worker with the same instance id has another.</summary>
    public string Session { get; init; } = Guid.NewGuid().ToString("N");
}

/// <summary>
/// The container instance id, kept across restarts the way the ECS agent keeps its registration in
/// ECS_DATADIR: a restarted worker re-registers as the same instance, so the control plane's tasks
/// and reservations for it stay valid and the worker can adopt its containers.
/// </summary>
public static partial class InstanceIdentity
{
    public const string FileName = "instance-id";

    /// <summary>
    /// The configured id (<see cref="WorkerOptions.InstanceId"/>), else the one saved in the state
    /// directory, else a new one, saved there before it is used.
    /// </summary>
    public static string Resolve(WorkerOptions options)
    {
        if (options.InstanceId is { Length: > 0 } configured)
        {
            return IsValid(configured)
                ? configured.ToLowerInvariant()
                : throw new InvalidOperationException($"Worker:InstanceId '{configured}' is not 32 hexadecimal digits.");
        }

        var directory = StateDirectory(options);
        var path = Path.Combine(directory, FileName);
        if (File.Exists(path))
        {
            var saved = File.ReadAllText(path).Trim();
            if (IsValid(saved)) return saved.ToLowerInvariant();
            throw new InvalidOperationException($"{path} does not hold a container instance id (32 hexadecimal digits); remove it to register as a new instance.");
        }

        var id = Guid.NewGuid().ToString("N");
        Directory.CreateDirectory(directory);
        // Write-then-rename: a crash mid-write must not leave a half id that would fail the next start.
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, id + "\n");
        File.Move(temporary, path, overwrite: true);
        return id;
    }

    /// <summary><see cref="WorkerOptions.StateDirectory"/>, or <c>${XDG_STATE_HOME:-~/.local/state}/ecs-worker/&lt;cluster&gt;</c>.</summary>
    public static string StateDirectory(WorkerOptions options)
    {
        if (options.StateDirectory is { Length: > 0 } configured) return configured;
        var stateHome = Environment.GetEnvironmentVariable("XDG_STATE_HOME");
        if (string.IsNullOrEmpty(stateHome))
            stateHome = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        return Path.Combine(stateHome, "ecs-worker", options.Cluster);
    }

    public static bool IsValid(string id) => HexId().IsMatch(id);

    [GeneratedRegex("^[0-9a-fA-F]{32}$")]
    private static partial Regex HexId();
}
