using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Services;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;

namespace Serverless.Core.Tags;

/// <summary>
/// An ECS resource type whose rows carry tags, as TagResource, UntagResource and ListTagsForResource
/// reach it: the ARN's checks and the API's errors are here; the tags are read and changed on the
/// resource's own row through its store, under optimistic concurrency.
/// </summary>
public interface ITaggedResource
{
    /// <summary>The ARN resource type, e.g. <c>cluster</c>.</summary>
    string ResourceType { get; }

    /// <summary>The tags of <paramref name="arn"/>; <see cref="ResourceNotFoundException"/> when it does not exist.</summary>
    Task<IReadOnlyList<Tag>> GetTagsAsync(string arn, CancellationToken cancellationToken);

    /// <summary>Applies <paramref name="change"/> to the current tags; <see cref="ResourceNotFoundException"/> when it does not exist.</summary>
    Task UpdateTagsAsync(string arn, Func<IReadOnlyList<Tag>, IReadOnlyList<Tag>> change, CancellationToken cancellationToken);
}

/// <summary>What every ECS resource type answers for an ARN that is not one of its own.</summary>
internal static class TaggedArns
{
    public static InvalidParameterException Invalid() => new("The ARN provided is invalid.");

    public static (string Cluster, string Id) ClusterScoped(Arns arns, string arn, string type)
        => arns.ParseClusterScoped(arn, type) ?? throw Invalid();
}

public sealed class ClusterTags(ClusterStore clusters, Arns arns) : ITaggedResource
{
    public string ResourceType => "cluster";
    private static ResourceNotFoundException NotFound() => new("The specified cluster is inactive. Specify an active cluster and try again.");

    public async Task<IReadOnlyList<Tag>> GetTagsAsync(string arn, CancellationToken cancellationToken)
        => (await clusters.FindAsync(Name(arn), cancellationToken))?.Tags ?? throw NotFound();

    public async Task UpdateTagsAsync(string arn, Func<IReadOnlyList<Tag>, IReadOnlyList<Tag>> change, CancellationToken cancellationToken)
    {
        try
        {
            await clusters.UpdateAsync(Name(arn), c => c with { Tags = change(c.Tags) }, cancellationToken);
        }
        catch (ClusterNotFoundException)
        {
            throw NotFound();
        }
    }

    private string Name(string arn)
        => arns.ParseOwn(arn, ResourceType)?.ResourceId is { Length: > 0 } name ? name : throw TaggedArns.Invalid();
}

public sealed class ServiceTags(ServiceStore services, Arns arns) : ITaggedResource
{
    public string ResourceType => "service";
    private static ResourceNotFoundException NotFound() => new("The specified service could not be found.");

    public async Task<IReadOnlyList<Tag>> GetTagsAsync(string arn, CancellationToken cancellationToken)
    {
        var (cluster, name) = TaggedArns.ClusterScoped(arns, arn, ResourceType);
        return (await services.FindAsync(cluster, name, cancellationToken))?.Tags ?? throw NotFound();
    }

    public async Task UpdateTagsAsync(string arn, Func<IReadOnlyList<Tag>, IReadOnlyList<Tag>> change, CancellationToken cancellationToken)
    {
        var (cluster, name) = TaggedArns.ClusterScoped(arns, arn, ResourceType);
        try
        {
            await services.UpdateAsync(cluster, name, s => s with { Tags = change(s.Tags) }, cancellationToken);
        }
        catch (ServiceNotFoundException)
        {
            throw NotFound();
        }
    }
}

public sealed class TaskTags(TaskStore tasks, Arns arns) : ITaggedResource
{
    public string ResourceType => "task";
    private static ResourceNotFoundException NotFound() => new("The specified task could not be found.");

    public async Task<IReadOnlyList<Tag>> GetTagsAsync(string arn, CancellationToken cancellationToken)
    {
        var (cluster, id) = TaggedArns.ClusterScoped(arns, arn, ResourceType);
        return (await tasks.FindAsync(cluster, id, cancellationToken))?.Tags ?? throw NotFound();
    }

    public async Task UpdateTagsAsync(string arn, Func<IReadOnlyList<Tag>, IReadOnlyList<Tag>> change, CancellationToken cancellationToken)
    {
        var (cluster, id) = TaggedArns.ClusterScoped(arns, arn, ResourceType);
        _ = await tasks.UpdateAsync(cluster, id, t => t with { Tags = change(t.Tags) }, cancellationToken) ?? throw NotFound();
    }
}

public sealed class ContainerInstanceTags(ContainerInstanceStore instances, Arns arns) : ITaggedResource
{
    public string ResourceType => "container-instance";
    private static ResourceNotFoundException NotFound() => new("The specified container instance does not exist.");

    public async Task<IReadOnlyList<Tag>> GetTagsAsync(string arn, CancellationToken cancellationToken)
    {
        var (cluster, id) = TaggedArns.ClusterScoped(arns, arn, ResourceType);
        return (await instances.FindAsync(cluster, id, cancellationToken))?.Tags ?? throw NotFound();
    }

    public async Task UpdateTagsAsync(string arn, Func<IReadOnlyList<Tag>, IReadOnlyList<Tag>> change, CancellationToken cancellationToken)
    {
        var (cluster, id) = TaggedArns.ClusterScoped(arns, arn, ResourceType);
        if (await instances.FindAsync(cluster, id, cancellationToken) is null) throw NotFound();
        // Rows are never deleted, so the instance found above is still there to update.
        await instances.UpdateAsync(cluster, id, i => i with { Tags = change(i.Tags) }, cancellationToken);
    }
}

public sealed class TaskDefinitionTags(TaskDefinitionStore definitions, Arns arns) : ITaggedResource
{
    public string ResourceType => "task-definition";
    private static ResourceNotFoundException NotFound() => new("The specified task definition does not exist.");

    public async Task<IReadOnlyList<Tag>> GetTagsAsync(string arn, CancellationToken cancellationToken)
        => await definitions.FindTagsAsync(Key(arn), cancellationToken) ?? throw NotFound();

    public async Task UpdateTagsAsync(string arn, Func<IReadOnlyList<Tag>, IReadOnlyList<Tag>> change, CancellationToken cancellationToken)
    {
        if (!await definitions.UpdateTagsAsync(Key(arn), change, cancellationToken)) throw NotFound();
    }

    /// <summary>A revision of this account and region; the round trip refuses what this endpoint would not write (a revision "01", say).</summary>
    private TaskDefinitionKey Key(string arn)
        => arns.ParseOwn(arn, ResourceType)?.ResourceId is { } resource
           && TaskDefinitionKey.TryParse(resource) is { } key && TaskDefinitionStore.IsFamily(key.Family) && arns.TaskDefinition(key.Family, key.Revision) == arn
            ? key
            : throw TaggedArns.Invalid();
}
