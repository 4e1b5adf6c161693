namespace Serverless.Core.LoadBalancing;

/// <summary>A target's health as the checker knows it: the state and the run of equal results behind it.</summary>
public sealed record TargetHealthState(string State, string? Reason, string? Description, int Successes, int Failures)
{
    public static TargetHealthState Initial { get; } = new("initial", "Elb.InitialHealthChecking", "Initial health checks in progress", 0, 0);
}

/// <summary>What one health check found: passed, or why not.</summary>
public sealed record HealthCheckResult(bool Passed, string? Reason = null, string? Description = null)
{
    public static HealthCheckResult Pass { get; } = new(true);
    public static HealthCheckResult Timeout { get; } = new(false, "Target.Timeout", "Request timed out");
    public static HealthCheckResult Mismatch(int status) => new(false, "Target.ResponseCodeMismatch", $"Health checks failed with these codes: [{status}]");
    public static HealthCheckResult Failed { get; } = new(false, "Target.FailedHealthChecks", "Health checks failed");
}

/// <summary>
/// ELBv2's health state machine: a target turns healthy after <c>HealthyThresholdCount</c> passes in a row
/// and unhealthy after <c>UnhealthyThresholdCount</c> failures in a row, from whatever state it is in.
/// </summary>
public static class HealthChecks
{
    public static TargetHealthState Next(TargetHealthState current, HealthCheckResult result, int healthyThreshold, int unhealthyThreshold)
    {
        if (result.Passed)
        {
            var successes = current.Successes + 1;
            return successes >= healthyThreshold
                ? new("healthy", null, null, successes, 0)
                : current with { Successes = successes, Failures = 0 };
        }
        var failures = current.Failures + 1;
        return failures >= unhealthyThreshold
            ? new("unhealthy", result.Reason, result.Description, 0, failures)
            : current with { Successes = 0, Failures = failures };
    }
}
