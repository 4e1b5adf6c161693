using System.Text.Json.Nodes;
using Serverless.Core.Api;

namespace Serverless.Core.Tags;

/// <summary><c>TagResource</c>, <c>UntagResource</c>, <c>ListTagsForResource</c> over every taggable resource type.</summary>
public sealed class TagActions(IEnumerable<ITaggedResource> stores) : IActionSource
{
    private readonly Dictionary<string, ITaggedResource> _stores = stores.ToDictionary(s => s.ResourceType, StringComparer.Ordinal);

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("TagResource", TagResourceAsync);
        registry.Map("UntagResource", UntagResourceAsync);
        registry.Map("ListTagsForResource", ListTagsForResourceAsync);
    }

    private async Task<JsonObject> TagResourceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (store, arn) = Resolve(request);
        var tags = Tag.FromRequest(request);
        await store.UpdateTagsAsync(arn, existing => Tag.Merge(existing, tags), cancellationToken);
        return [];
    }

    private async Task<JsonObject> UntagResourceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (store, arn) = Resolve(request);
        var keys = request.Strings("tagKeys").ToList();
        await store.UpdateTagsAsync(arn, existing => Tag.Remove(existing, keys), cancellationToken);
        return [];
    }

    private async Task<JsonObject> ListTagsForResourceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (store, arn) = Resolve(request);
        var tags = await store.GetTagsAsync(arn, cancellationToken);
        return new JsonObject { ["tags"] = Tag.ToJson(tags) };
    }

    private (ITaggedResource Store, string Arn) Resolve(JsonObject request)
    {
        var arn = request.String("resourceArn")!;
        if (Arn.Parse(arn) is not { Service: "ecs" } parsed)
            throw new InvalidParameterException("The ARN provided is invalid.");
        var type = parsed.ResourceType;
        if (!_stores.TryGetValue(type, out var store))
            throw new InvalidParameterException($"Resources of type {type} cannot be tagged.");
        return (store, arn);
    }
}
