using Serverless.Core.Tasks;

namespace Serverless.Worker.Docker;

/// <summary>Where a <c>dependsOn</c> condition stands: wait, go, or give up (with the agent's reason).</summary>
public sealed record DependencyVerdict(DependencyVerdictKind Kind, string? Reason = null)
{
    public static readonly DependencyVerdict Waiting = new(DependencyVerdictKind.Waiting);
    public static readonly DependencyVerdict Satisfied = new(DependencyVerdictKind.Satisfied);

    public static DependencyVerdict Impossible(string reason) => new(DependencyVerdictKind.Impossible, reason);
}

public enum DependencyVerdictKind
{
    Waiting,
    Satisfied,
    Impossible,
}

/// <summary>
/// ECS's container dependency conditions, judged the way the agent's dependency graph judges them
/// for a container that wants to start. Pure: a verdict from the dependency's known state.
/// </summary>
public static class DependencyConditions
{
    public const string Start = "START";
    public const string Complete = "COMPLETE";
    public const string Success = "SUCCESS";
    public const string Healthy = "HEALTHY";

    /// <summary>
    /// <list type="bullet">
    /// <item>START: the dependency has started (it may have exited since).</item>
    /// <item>COMPLETE: it ran and exited, with any code.</item>
    /// <item>SUCCESS: it ran and exited 0; a non-zero exit can never satisfy it.</item>
    /// <item>HEALTHY: its health check passed; it can no longer once the dependency stopped, or if it has no health check.</item>
    /// </list>
    /// A dependency stopped without ever starting satisfies nothing.
    /// </summary>
    public static DependencyVerdict Evaluate(string target, ContainerDependency dependency, ContainerSnapshot? state)
    {
        var name = dependency.ContainerName;
        if (state is null)
            return DependencyVerdict.Impossible($"dependency graph: container ordering dependency [{name}] for target [{target}] does not exist.");

        var neverStarts = state.Status == ContainerKnownStatus.Stopped && !state.Started;
        if (dependency.Condition == Success && state.Status == ContainerKnownStatus.Stopped && state.Started && state.ExitCode != 0)
            return DependencyVerdict.Impossible(
                $"dependency graph: failed to resolve container ordering dependency [{name}] for target [{target}] as dependency did not exit successfully.");
        if (neverStarts)
            return DependencyVerdict.Impossible(
                $"dependency graph: failed to resolve container ordering dependency [{name}] for target [{target}] because dependency will never start");

        switch (dependency.Condition)
        {
            case Start:
                return state.Started ? DependencyVerdict.Satisfied : DependencyVerdict.Waiting;
            case Complete:
                return state.Status == ContainerKnownStatus.Stopped ? DependencyVerdict.Satisfied : DependencyVerdict.Waiting;
            case Success:
                return state.Status == ContainerKnownStatus.Stopped ? DependencyVerdict.Satisfied : DependencyVerdict.Waiting;
            case Healthy:
                if (!state.HasHealthCheck)
                    return DependencyVerdict.Impossible(
                        $"dependency graph: failed to resolve container ordering dependency [{name}] for target [{target}] because dependency has no health check");
                if (state.Status == ContainerKnownStatus.Stopped)
                    return DependencyVerdict.Impossible(
                        $"dependency graph: failed to resolve container ordering dependency [{name}] for target [{target}] because dependency stopped before it was healthy");
                return state.Health == HealthStatus.Healthy ? DependencyVerdict.Satisfied : DependencyVerdict.Waiting;
            default:
                return DependencyVerdict.Impossible(
                    $"dependency graph: container ordering dependency [{name}] for target [{target}] has an unknown condition {dependency.Condition}");
        }
    }

    /// <summary>All of a container's conditions together: the first impossible one, else waiting until every one is satisfied.</summary>
    public static DependencyVerdict EvaluateAll(string target, IEnumerable<ContainerDependency> dependencies, Func<string, ContainerSnapshot?> lookup)
    {
        var waiting = false;
        foreach (var dependency in dependencies)
        {
            var verdict = Evaluate(target, dependency, lookup(dependency.ContainerName));
            if (verdict.Kind == DependencyVerdictKind.Impossible) return verdict;
            waiting |= verdict.Kind == DependencyVerdictKind.Waiting;
        }
        return waiting ? DependencyVerdict.Waiting : DependencyVerdict.Satisfied;
    }

    /// <summary>The agent's wording when a container waited longer than its <c>startTimeout</c>.</summary>
    public static string TimedOut(string dependency, string target)
        => $"dependency graph: container ordering dependency [{dependency}] for target [{target}] has timed out.";
}
