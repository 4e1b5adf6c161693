using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace Serverless.TestSupport.Storage;

/// <summary>
/// One storage transaction as the proxy saw it: the service, the table or queue, the partition
/// (a table's partition key; the queue itself for a queue) and how many entities a batch carried.
/// A query whose filter names no single partition key has partition <see cref="AnyPartition"/>;
/// a query's <see cref="Entities"/> are those its answer carried (at least 1).
/// </summary>
public sealed partial record StorageRequest(StorageService Service, string Method, string? Resource, string? Partition, string Kind, int Entities)
{
    /// <summary>The partition of a query that names none (a range or a scan).</summary>
    public const string AnyPartition = "(range)";

    public static StorageRequest Of(StorageService service, string method, string path, string rawTarget, byte[] body, IReadOnlyList<BatchOperation>? batch, string? resource)
    {
        if (service == StorageService.Queue)
        {
            var messages = path.Contains("/messages", StringComparison.Ordinal);
            var kind = !messages ? "queue" : method switch
            {
                "POST" => "put",
                "GET" => rawTarget.Contains("peekonly=true", StringComparison.OrdinalIgnoreCase) ? "peek" : "get",
                "DELETE" => "delete",
                "PUT" => "update",
                _ => method.ToLowerInvariant(),
            };
            return new StorageRequest(service, method, resource, resource, kind, 1);
        }
        if (batch is not null)
            return new StorageRequest(service, method, resource, batch.FirstOrDefault()?.PartitionKey, "batch", batch.Count);
        if (resource is null) return new StorageRequest(service, method, "Tables", null, "tables", 1);
        var (partitionKey, _) = StorageWire.EntityKeys(rawTarget);
        if (partitionKey is not null)
            return new StorageRequest(service, method, resource, partitionKey, HttpMethods.IsGet(method) ? "read" : "write", 1);
        if (HttpMethods.IsGet(method))
        {
            var query = QueryHelpers(rawTarget);
            // One partition: the filter is "PartitionKey eq 'x'", alone or and-ed with the rest, and names no other partition key.
            var match = query is null ? null : SinglePartition().Match(query);
            var single = match is { Success: true } && query!.IndexOf("PartitionKey", match.Length, StringComparison.Ordinal) < 0
                ? match.Groups[1].Value.Replace("''", "'")
                : AnyPartition;
            return new StorageRequest(service, method, resource, single, "query", 1);
        }
        // An insert names its keys in its body.
        string? inserted = null;
        if (body.Length > 0)
        {
            try
            {
                using var entity = JsonDocument.Parse(body);
                if (entity.RootElement.TryGetProperty("PartitionKey", out var pk)) inserted = pk.GetString();
            }
            catch (JsonException)
            {
            }
        }
        return new StorageRequest(service, method, resource, inserted, "write", 1);
    }

    /// <summary>The entities a query's answer carries (its <c>value</c> array); 1 when it is not such an answer.</summary>
    public static int CountEntities(byte[] answer)
    {
        try
        {
            using var document = JsonDocument.Parse(answer);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("value", out var value) && value.ValueKind == JsonValueKind.Array
                ? Math.Max(1, value.GetArrayLength())
                : 1;
        }
        catch (JsonException)
        {
            return 1;
        }
    }

    private static string? QueryHelpers(string rawTarget)
    {
        var question = rawTarget.IndexOf('?');
        if (question < 0) return null;
        foreach (var part in rawTarget[(question + 1)..].Split('&'))
        {
            if (part.StartsWith("$filter=", StringComparison.Ordinal)) return Uri.UnescapeDataString(part["$filter=".Length..].Replace('+', ' '));
        }
        return null;
    }

    [GeneratedRegex(@"^\(?PartitionKey eq '((?:[^']|'')*)'\)?(?: and |$)")]
    private static partial Regex SinglePartition();
}
