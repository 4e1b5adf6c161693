namespace Serverless.Core.Tasks;

/// <summary>
/// ECS task statuses (a task's and a container's <c>lastStatus</c> and <c>desiredStatus</c>), with
/// their wire names, in lifecycle order: a task only ever moves forward through them. Named apart
/// from <see cref="System.Threading.Tasks.TaskStatus"/> so that no file needs an alias to say which.
/// </summary>
public static class EcsTaskStatus
{
    public const string Provisioning = "PROVISIONING";
    public const string Pending = "PENDING";
    public const string Activating = "ACTIVATING";
    public const string Running = "RUNNING";
    public const string Deactivating = "DEACTIVATING";
    public const string Stopping = "STOPPING";
    public const string Deprovisioning = "DEPROVISIONING";
    public const string Stopped = "STOPPED";

    private static readonly string[] Order = [Provisioning, Pending, Activating, Running, Deactivating, Stopping, Deprovisioning, Stopped];

    public static int Rank(string status) => Array.IndexOf(Order, status);

    /// <summary>Whether <paramref name="next"/> is later in the lifecycle than <paramref name="current"/>.</summary>
    public static bool IsForward(string current, string next) => Rank(next) > Rank(current);
}

/// <summary>
/// A task's and a container's <c>healthStatus</c>, with their wire names: <c>UNKNOWN</c> until an
/// essential container's health check has passed or failed (and for a task without one).
/// </summary>
public static class HealthStatus
{
    public const string Healthy = "HEALTHY";
    public const string Unhealthy = "UNHEALTHY";
    public const string Unknown = "UNKNOWN";
}
