namespace Serverless.Worker.Docker;

/// <summary>A container's known status, in lifecycle order (the agent's known status, without PULLED).</summary>
public enum ContainerKnownStatus
{
    None,
    Created,
    Running,
    Stopped,
}

/// <summary>
/// What the worker knows about one container at a moment: the input of the pure decisions
/// (<see cref="DependencyConditions"/>, <see cref="TaskStatusRules"/>).
/// </summary>
/// <param name="Started">Whether it ever ran: a container stopped before it started satisfies nothing.</param>
/// <param name="Health">HEALTHY/UNHEALTHY/UNKNOWN for a container with a health check, else null.</param>
public sealed record ContainerSnapshot(
    string Name,
    bool Essential,
    ContainerKnownStatus Status,
    bool Started = false,
    int? ExitCode = null,
    string? Health = null,
    bool HasHealthCheck = false);
