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
    /// Returns null when an ARN is not an ECS ARN of that resource type. Region and account are
    /// not checked here: <see cref="ParseOwn"/> checks them.
    /// </summary>
    public string? ResourcePart(string nameOrArn, string resourceType)
        => !Arn.IsArn(nameOrArn) ? nameOrArn
            : Arn.Parse(nameOrArn) is { Service: "ecs" } arn && arn.ResourceType == resourceType ? arn.ResourceId : null;

    /// <summary><see cref="ResourcePart"/> split on <c>/</c>: <c>[cluster, id]</c>, <c>[name]</c>…; null as there.</summary>
    public string[]? ResourcePath(string nameOrArn, string resourceType) => ResourcePart(nameOrArn, resourceType)?.Split('/');

    /// <summary>
    /// <paramref name="arn"/> when it is an ECS ARN of <paramref name="resourceType"/> in this
    /// partition, region and account (another region's or account's ARN names nothing here); null otherwise.
    /// </summary>
    public Arn? ParseOwn(string arn, string resourceType)
        => Arn.Parse(arn) is { Partition: "aws", Service: "ecs", ResourceId: not null } parsed
           && parsed.Region == options.Region && parsed.Account == options.AccountId && parsed.ResourceType == resourceType
            ? parsed : null;

    /// <summary>
    /// The <c>cluster/id</c> of an ARN of a cluster-scoped resource (task, service, container
    /// instance) exactly as this endpoint writes it; null for anything else, including the old
    /// format without the cluster.
    /// </summary>
    public (string Cluster, string Id)? ParseClusterScoped(string arn, string resourceType)
        => ParseOwn(arn, resourceType)?.Path is [var cluster, var id] ? (cluster, id) : null;

    /// <summary>
    /// The last segment of an ECS ARN's resource: a task's or container instance's id, a service's
    /// name, a task definition's <c>family:revision</c>. For an ARN this endpoint wrote.
    /// </summary>
    public static string LastSegment(string arn) => arn[(arn.LastIndexOf('/') + 1)..];

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

/// <summary>
/// An ARN's parts, <c>arn:partition:service:region:account:resource</c>; an ECS resource is
/// <c>type/id</c>, where the id may hold further <c>/</c>-separated parts (<c>cluster/id</c>).
/// The one place an ARN is taken apart.
/// </summary>
public sealed record Arn(string Partition, string Service, string Region, string Account, string Resource)
{
    public static bool IsArn(string text) => text.StartsWith("arn:", StringComparison.Ordinal);

    /// <summary>The parts of <paramref name="text"/>, or null when it is not six <c>:</c>-separated parts starting with <c>arn</c>.</summary>
    public static Arn? Parse(string text)
        => IsArn(text) && text.Split(':', 6) is [_, var partition, var service, var region, var account, var resource]
            ? new Arn(partition, service, region, account, resource)
            : null;

    /// <summary>The resource up to its first <c>/</c> (all of it when there is none).</summary>
    public string ResourceType => Resource.IndexOf('/') is > 0 and var slash ? Resource[..slash] : Resource;

    /// <summary>The resource after <c>type/</c>; null when the resource has no type prefix.</summary>
    public string? ResourceId => Resource.IndexOf('/') is > 0 and var slash ? Resource[(slash + 1)..] : null;

    /// <summary><see cref="ResourceId"/> split on <c>/</c>; empty when there is none.</summary>
    public string[] Path => ResourceId?.Split('/') ?? [];
}
