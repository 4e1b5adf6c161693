using System.Text.Json.Nodes;
using Serverless.Core.Api;

namespace Serverless.Core.AutoScaling;

/// <summary>TagResource, UntagResource and ListTagsForResource on scalable target ARNs; the tags live on the target's row.</summary>
public sealed class ScalableTargetTags(AutoScalingStore store) : IActionSource
{
    /// <summary>Application Auto Scaling's limit of tags per scalable target.</summary>
    public const int MaxTags = 50;

    public void MapActions(ActionRegistry registry)
    {
        const string prefix = ActionRegistry.AutoScalingTargetPrefix;
        registry.Map("TagResource", TagAsync, prefix);
        registry.Map("UntagResource", UntagAsync, prefix);
        registry.Map("ListTagsForResource", ListAsync, prefix);
    }

    /// <summary>
    /// <paramref name="current"/> with <paramref name="added"/> over it: no key may start with <c>aws:</c>
    /// (ValidationException) and the result holds at most <see cref="MaxTags"/> (TooManyTagsException).
    /// </summary>
    public static IReadOnlyDictionary<string, string>? Checked(IReadOnlyDictionary<string, string>? current, JsonObject? added, string arn)
    {
        if (added is null) return current;
        var tags = new SortedDictionary<string, string>(current?.ToDictionary() ?? [], StringComparer.Ordinal);
        foreach (var (key, value) in added)
        {
            if (key.StartsWith("aws:", StringComparison.OrdinalIgnoreCase))
                throw AutoScalingException.Validation($"Tag keys starting with aws: are reserved for AWS use: {key}");
            tags[key] = value!.GetValue<string>();
        }
        if (tags.Count > MaxTags)
            throw new AutoScalingException("TooManyTagsException", $"A scalable target can have at most {MaxTags} tags; {arn} would have {tags.Count}.");
        return tags;
    }

    private async Task<JsonObject> TagAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        await UpdateAsync(request, t => Checked(t.Tags, request["Tags"]!.AsObject(), t.Arn), cancellationToken);
        return [];
    }

    private async Task<JsonObject> UntagAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var keys = request.Strings("TagKeys").ToHashSet(StringComparer.Ordinal);
        await UpdateAsync(request, t => t.Tags?.Where(tag => !keys.Contains(tag.Key)).ToDictionary(StringComparer.Ordinal), cancellationToken);
        return [];
    }

    private async Task<JsonObject> ListAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var target = await FindAsync(request, cancellationToken);
        return new JsonObject { ["Tags"] = new JsonObject((target.Tags ?? new Dictionary<string, string>()).Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value))) };
    }

    private async Task UpdateAsync(JsonObject request, Func<ScalableTargetRecord, IReadOnlyDictionary<string, string>?> change, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var target = await FindAsync(request, cancellationToken);
            try
            {
                await store.SaveTargetAsync(target with { Tags = change(target) }, cancellationToken);
                return;
            }
            catch (ConcurrentUpdateException) when (attempt < 3)
            {
            }
            catch (ConcurrentUpdateException)
            {
                throw AutoScalingException.ConcurrentUpdate($"The scalable target {target.Arn} was updated concurrently. Retry the request.");
            }
        }
    }

    /// <summary>The target with this ARN (the targets table holds only registered targets, so one read of it).</summary>
    private async Task<ScalableTargetRecord> FindAsync(JsonObject request, CancellationToken cancellationToken)
    {
        var arn = request.String("ResourceARN")!;
        return (await store.ListAsync(cancellationToken)).Select(t => t.Target).FirstOrDefault(t => t.Arn == arn)
            ?? throw new AutoScalingException("ResourceNotFoundException", $"Scalable target not found: {arn}");
    }
}
