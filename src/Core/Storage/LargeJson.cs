using Azure.Data.Tables;

namespace Serverless.Core.Storage;

/// <summary>
/// Stores a JSON document larger than one Table Storage string property allows (64 KiB, that
/// is 32K UTF-16 characters) across consecutive properties <c>{prefix}0</c>, <c>{prefix}1</c>, …
/// An entity holds at most 1 MiB in all, so a document is capped at <see cref="MaxChars"/>,
/// which leaves room for an entity's other properties.
/// </summary>
public static class LargeJson
{
    /// <summary>Characters per property: 32K UTF-16 code units is exactly the 64 KiB limit.</summary>
    public const int ChunkChars = 32 * 1024;

    /// <summary>At most this many properties (12 × 64 KiB = 768 KiB of the 1 MiB entity limit).</summary>
    public const int MaxChunks = 12;

    public const int MaxChars = ChunkChars * MaxChunks;

    /// <summary>Whether <paramref name="json"/> fits in one entity.</summary>
    public static bool Fits(string json) => json.Length <= MaxChars;

    /// <summary>
    /// Writes <paramref name="json"/> into <paramref name="entity"/>. Throws
    /// <see cref="ArgumentException"/> when it does not fit (<see cref="Fits"/>). A chunk never
    /// ends between the two halves of a surrogate pair, so every chunk is valid UTF-16 on its own.
    /// </summary>
    public static void Write(TableEntity entity, string json, string prefix = "Json")
    {
        if (!Fits(json))
            throw new ArgumentException($"JSON of {json.Length} characters exceeds the {MaxChars} an entity can hold.", nameof(json));

        var index = 0;
        for (var start = 0; start < json.Length; index++)
        {
            var length = Math.Min(ChunkChars, json.Length - start);
            if (start + length < json.Length && char.IsHighSurrogate(json[start + length - 1])) length--;
            entity[prefix + index] = json.Substring(start, length);
            start += length;
        }
        if (index == 0) entity[prefix + index++] = "";

        // A rewritten entity may have held more chunks before; a Replace drops them, a Merge would not.
        for (; index < MaxChunks + 1 && entity.ContainsKey(prefix + index); index++) entity.Remove(prefix + index);
    }

    /// <summary>The document written by <see cref="Write"/>, or null when the entity has none.</summary>
    public static string? Read(TableEntity entity, string prefix = "Json")
    {
        if (entity.GetString(prefix + "0") is not { } first) return null;
        if (entity.GetString(prefix + "1") is null) return first;

        var parts = new System.Text.StringBuilder(first);
        for (var index = 1; entity.GetString(prefix + index) is { } next; index++) parts.Append(next);
        return parts.ToString();
    }
}
