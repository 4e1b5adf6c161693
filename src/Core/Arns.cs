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

    public string CapacityProvider(string name) => $"{Prefix}capacity-provider/{name}";

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

    /// <summary>
    /// The cluster name from a name or cluster ARN; <c>default</c> when omitted, as ECS does. A name no
    /// cluster can have (up to 255 letters, digits, hyphens and underscores) is refused in ECS's words
    /// before it can reach storage as a key.
    /// </summary>
    public string ClusterName(string? nameOrArn)
        => TryClusterName(nameOrArn) ?? throw new Api.InvalidParameterException(
            $"Cluster must match ^[a-zA-Z0-9\\-_]{{1,255}}$, but was {(string.IsNullOrEmpty(nameOrArn) ? "default" : ResourcePart(nameOrArn, "cluster") ?? nameOrArn)}");

    /// <summary>As <see cref="ClusterName"/>, or null for a name no cluster can have.</summary>
    public string? TryClusterName(string? nameOrArn)
    {
        var name = string.IsNullOrEmpty(nameOrArn) ? "default" : ResourcePart(nameOrArn, "cluster") ?? nameOrArn;
        return IsClusterName(name) ? name : null;
    }

    public static bool IsClusterName(string name)
        => name.Length is > 0 and <= 255 && name.AsSpan().IndexOfAnyExcept(ClusterNameChars) < 0;

    private static readonly System.Buffers.SearchValues<char> ClusterNameChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
}
