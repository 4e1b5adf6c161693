using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Core.Api;

namespace Serverless.Core.Tags;

/// <summary>A resource tag as ECS models it (<c>{"key","value"}</c>).</summary>
public sealed record Tag(string Key, string Value)
{
    public const int MaxPerResource = 50;

    public JsonObject ToJson() => new() { ["key"] = Key, ["value"] = Value };

    /// <summary>Reads <c>tags</c> from a validated request, refusing ECS's reserved prefix.</summary>
    public static IReadOnlyList<Tag> FromRequest(JsonObject request, string member = "tags")
    {
        if (request[member] is not JsonArray array) return [];
        var tags = new List<Tag>(array.Count);
        foreach (var item in array)
        {
            var key = item!["key"]?.GetValue<string>()
                ?? throw new InvalidParameterException("Tag key must not be null.");
            if (key.StartsWith("aws:", StringComparison.OrdinalIgnoreCase))
                throw new InvalidParameterException("Tag keys with the prefix 'aws:' are reserved for AWS use.");
            tags.Add(new Tag(key, item["value"]?.GetValue<string>() ?? ""));
        }
        return Merge([], tags);
    }

    /// <summary>Adds or overwrites by key, as TagResource does; at most 50 tags result.</summary>
    public static IReadOnlyList<Tag> Merge(IReadOnlyList<Tag> existing, IReadOnlyList<Tag> added)
    {
        var merged = existing.ToList();
        foreach (var tag in added)
        {
            var index = merged.FindIndex(t => t.Key == tag.Key);
            if (index >= 0) merged[index] = tag; else merged.Add(tag);
        }
        if (merged.Count > MaxPerResource)
            throw new InvalidParameterException($"A resource can have at most {MaxPerResource} tags.");
        return merged;
    }

    public static IReadOnlyList<Tag> Remove(IReadOnlyList<Tag> existing, IEnumerable<string> keys)
    {
        var removed = keys.ToHashSet(StringComparer.Ordinal);
        return existing.Where(t => !removed.Contains(t.Key)).ToList();
    }

    public static JsonArray ToJson(IEnumerable<Tag> tags) => tags.Select(t => (JsonNode?)t.ToJson()).ToJsonArray();

    /// <summary>Storage form: a compact JSON array in one string property.</summary>
    public static string Serialize(IEnumerable<Tag> tags) => ToJson(tags).ToJsonString();

    public static IReadOnlyList<Tag> Deserialize(string? json)
    {
        if (string.IsNullOrEmpty(json)) return [];
        return JsonNode.Parse(json)!.AsArray()
            .Select(t => new Tag(t!["key"]!.GetValue<string>(), t["value"]!.GetValue<string>()))
            .ToList();
    }
}
