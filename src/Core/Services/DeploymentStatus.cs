namespace Serverless.Core.Services;

/// <summary>
/// A deployment's <c>status</c>, with its wire names: the one <c>PRIMARY</c> deployment a service
/// rolls towards, <c>ACTIVE</c> older ones that still run tasks, <c>INACTIVE</c> once they run none.
/// </summary>
public static class DeploymentStatus
{
    public const string Primary = "PRIMARY";
    public const string Active = "ACTIVE";
    public const string Inactive = "INACTIVE";
}

/// <summary>A deployment's <c>rolloutState</c> (botocore's <c>DeploymentRolloutState</c>), with its wire names.</summary>
public static class DeploymentRolloutState
{
    public const string InProgress = "IN_PROGRESS";
    public const string Completed = "COMPLETED";
    public const string Failed = "FAILED";
}
