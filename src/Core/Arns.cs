namespace Serverless.Core;

/// <summary>ECS's long ARN format, with region and account from settings.</summary>
public sealed class Arns(EcsOptions options)
{
    private string Prefix => $"arn:aws:ecs:{options.Region}:{options.AccountId}:";

    public string Cluster(string name) => $"{Prefix}cluster/{name}";

    public string TaskDefinition(string family, long revision) => $"{Prefix}task-definition/{family}:{revision}";

    public string Task(string cluster, string id) => $"{Prefix}task/{cluster}/{id}";

    public string ContainerInstance(string cluster, string id) => $"{Prefix}container-instance/{cluster}/{id}";

    public string Service(string cluster, string name) => $"{Prefix}service/{cluster}/{name}";

    public string Container(string cluster, string taskId, string containerId) => $"{Prefix}container/{cluster}/{taskId}/{containerId}";

    /// <summary>The principal ECS reports as <c>registeredBy</c> for a caller's access key.</summary>
    public string Caller(string? accessKeyId) => $"arn:aws:iam::{options.AccountId}:user/{accessKeyId ?? "local"}";

    /// <summary>
    /// Accepts a name or an ARN of <paramref name="resourceType"/> and returns the part after
    /// <c>resourceType/</c> (the name, or <c>cluster/id</c> for cluster-scoped resources).
    /// Returns null when an ARN names another resource type, region or account.
    /// </summary>
    public string? ResourcePart(string nameOrArn, string resourceType)
    {
        if (!nameOrArn.StartsWith("arn:", StringComparison.Ordinal)) return nameOrArn;
        var parts = nameOrArn.Split(':', 6);
        if (parts.Length != 6 || parts[2] != "ecs") return null;
        var resource = parts[5];
        var slash = resource.IndexOf('/');
        if (slash < 0 || resource[..slash] != resourceType) return null;
        return resource[(slash + 1)..];
    }

    /// <summary>The cluster name from a name or cluster ARN; <c>default</c> when omitted, as ECS does.</summary>
    public string ClusterName(string? nameOrArn)
        => string.IsNullOrEmpty(nameOrArn) ? "default" : ResourcePart(nameOrArn, "cluster") ?? nameOrArn;
}
