using System.Text;
using System.Text.Json;

namespace Serverless.TestSupport.Storage;

/// <summary>
/// What Azure Storage refuses and Azurite lets through, as pure checks over a request's parts. Each
/// returns the refusal Azure answers with (status, error code, message), or null to let it pass.
/// </summary>
/// <remarks>
/// Sources: "Understanding the Table service data model" (255 properties with the three system ones,
/// 1 MiB entity, 64 KiB property, 1 KiB key, the characters keys may not hold), "Querying tables and
/// entities" (15 discrete comparisons in a <c>$filter</c>), "Performing entity group transactions"
/// (100 operations, 4 MiB, one partition, one operation per entity), "Put Message" (64 KiB), and
/// "Table Storage error codes" / "Queue Storage error codes" for the answers. Where the error code
/// pages leave a choice, the wording is what Azure answers (as recorded by SDK and stub test suites
/// run against it), e.g. PropertyValueTooLarge for a key over 1 KiB and OutOfRangeInput for a key
/// with a forbidden character.
/// </remarks>
public static class AzureLimits
{
    public const int MaxFilterComparisons = 15;
    public const int MaxBatchOperations = 100;
    public const int MaxBatchBytes = 4 * 1024 * 1024;
    public const int MaxEntityBytes = 1024 * 1024;
    public const int MaxProperties = 255;
    public const int MaxPropertyBytes = 64 * 1024;
    public const int MaxKeyChars = 1024;
    public const int MaxQueueMessageBytes = 64 * 1024;

    private const string PropertyValueTooLargeMessage =
        "The property value exceeds the maximum allowed size (64KB). If the property value is a string, it is UTF-16 encoded and the maximum number of characters should be 32K or less.";

    private static readonly string[] SystemProperties = ["PartitionKey", "RowKey", "Timestamp"];

    /// <summary>A <c>$filter</c> with more than 15 comparisons (eq, ne, gt, ge, lt, le outside string literals).</summary>
    public static StorageRefusal? CheckFilter(string? filter)
        => filter is not null && CountComparisons(filter) > MaxFilterComparisons
            ? new StorageRefusal(501, "NotImplemented", "The requested operation is not implemented on the specified resource.")
            : null;

    public static int CountComparisons(string filter)
    {
        var count = 0;
        var i = 0;
        while (i < filter.Length)
        {
            var c = filter[i];
            if (c == '\'')
            {
                // A literal: '' is an escaped quote inside it.
                i++;
                while (i < filter.Length)
                {
                    if (filter[i] == '\'' && (i + 1 >= filter.Length || filter[i + 1] != '\'')) break;
                    i += filter[i] == '\'' ? 2 : 1;
                }
                i++;
                continue;
            }
            if (char.IsAsciiLetter(c))
            {
                var start = i;
                while (i < filter.Length && (char.IsAsciiLetterOrDigit(filter[i]) || filter[i] == '_')) i++;
                if (filter.AsSpan(start, i - start) is "eq" or "ne" or "gt" or "ge" or "lt" or "le") count++;
                continue;
            }
            i++;
        }
        return count;
    }

    /// <summary>
    /// An entity as written (the JSON body of an insert, update, merge or upsert): keys, property count,
    /// property sizes and the entity's size by the documented formula.
    /// </summary>
    public static StorageRefusal? CheckEntity(JsonElement entity, string? partitionKey = null, string? rowKey = null)
    {
        partitionKey ??= entity.TryGetProperty("PartitionKey", out var pk) && pk.ValueKind == JsonValueKind.String ? pk.GetString() : null;
        rowKey ??= entity.TryGetProperty("RowKey", out var rk) && rk.ValueKind == JsonValueKind.String ? rk.GetString() : null;
        if (CheckKeys(partitionKey, rowKey) is { } keys) return keys;

        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in entity.EnumerateObject())
        {
            if (property.Name.EndsWith("@odata.type", StringComparison.Ordinal) && property.Value.ValueKind == JsonValueKind.String)
                types[property.Name[..^"@odata.type".Length]] = property.Value.GetString()!;
        }

        var custom = 0;
        long size = 4 + 2L * ((partitionKey?.Length ?? 0) + (rowKey?.Length ?? 0));
        foreach (var property in entity.EnumerateObject())
        {
            var name = property.Name;
            if (name.Contains('@') || name.StartsWith("odata.", StringComparison.Ordinal) || SystemProperties.Contains(name)) continue;
            if (property.Value.ValueKind == JsonValueKind.Null) continue;
            custom++;
            long valueSize;
            switch (types.GetValueOrDefault(name))
            {
                case "Edm.Binary":
                    var bytes = property.Value.GetBytesFromBase64().Length;
                    if (bytes > MaxPropertyBytes) return PropertyValueTooLarge();
                    valueSize = 4 + bytes;
                    break;
                case "Edm.Guid":
                    valueSize = 16;
                    break;
                case "Edm.Int64" or "Edm.DateTime" or "Edm.Double":
                    valueSize = 8;
                    break;
                case null when property.Value.ValueKind == JsonValueKind.String:
                case "Edm.String":
                    // Strings are stored as UTF-16.
                    var chars = property.Value.GetString()!.Length;
                    if (2L * chars > MaxPropertyBytes) return PropertyValueTooLarge();
                    valueSize = 4 + 2L * chars;
                    break;
                case null when property.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                    valueSize = 1;
                    break;
                case null when property.Value.ValueKind == JsonValueKind.Number:
                    valueSize = property.Value.TryGetInt32(out _) ? 4 : 8;
                    break;
                default:
                    valueSize = 8;
                    break;
            }
            size += 8 + 2L * name.Length + valueSize;
        }
        if (custom > MaxProperties - SystemProperties.Length)
            return new StorageRefusal(400, "TooManyProperties", "The entity contains more properties than allowed.");
        if (size > MaxEntityBytes)
            return new StorageRefusal(400, "EntityTooLarge", "The entity is larger than the maximum size permitted.");
        return null;
    }

    /// <summary>PartitionKey and RowKey: at most 1 KiB, none of <c>/ \ # ?</c> or control characters.</summary>
    public static StorageRefusal? CheckKeys(string? partitionKey, string? rowKey)
    {
        foreach (var (name, value) in new[] { ("PartitionKey", partitionKey), ("RowKey", rowKey) })
        {
            if (value is null) continue;
            if (value.Any(c => c is '/' or '\\' or '#' or '?' || char.IsControl(c)))
                return new StorageRefusal(400, "OutOfRangeInput", $"The '{name}' parameter of value '{value}' is out of range.");
            if (value.Length > MaxKeyChars) return PropertyValueTooLarge();
        }
        return null;
    }

    /// <summary>The message text of a Put Message or Update Message body, decoded from its XML, over 64 KiB.</summary>
    public static StorageRefusal? CheckQueueMessage(string? messageText)
        => messageText is not null && Encoding.UTF8.GetByteCount(messageText) > MaxQueueMessageBytes
            ? new StorageRefusal(413, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum permissible limit.", MaxLimit: MaxQueueMessageBytes)
            : null;

    /// <summary>
    /// An entity-group transaction: its size, then each operation in order (count, partition,
    /// duplicates, the entity itself). A refusal of one operation carries its index, as Azure's does.
    /// </summary>
    public static StorageRefusal? CheckBatch(int bodyBytes, IReadOnlyList<BatchOperation> operations)
    {
        if (bodyBytes > MaxBatchBytes)
            return new StorageRefusal(413, "RequestBodyTooLarge", "The request body is too large and exceeds the maximum permissible limit.", MaxLimit: MaxBatchBytes);
        if (operations.Count > MaxBatchOperations)
            return new StorageRefusal(400, "InvalidInput", "The batch request operation exceeds the maximum 100 changes per change set.", OperationIndex: MaxBatchOperations - 1);
        var seen = new HashSet<(string?, string?)>();
        for (var i = 0; i < operations.Count; i++)
        {
            var operation = operations[i];
            if (i > 0 && operation.PartitionKey != operations[0].PartitionKey)
                return new StorageRefusal(400, "CommandsInBatchActOnDifferentPartitions", "All commands in a batch must operate on same entity group.", OperationIndex: i);
            if (!seen.Add((operation.PartitionKey, operation.RowKey)))
                return new StorageRefusal(400, "InvalidDuplicateRow", "The batch request contains multiple changes with same row key. An entity can appear only once in a batch request.", OperationIndex: i);
            var refusal = operation.Entity is { } entity
                ? CheckEntity(entity, operation.PartitionKey, operation.RowKey)
                : CheckKeys(operation.PartitionKey, operation.RowKey);
            if (refusal is not null) return refusal with { OperationIndex = i };
        }
        return null;
    }

    private static StorageRefusal PropertyValueTooLarge() => new(400, "PropertyValueTooLarge", PropertyValueTooLargeMessage);
}

/// <summary>Azure's answer to a request it refuses. <see cref="OperationIndex"/> names the operation of a batch.</summary>
public sealed record StorageRefusal(int Status, string Code, string Message, int? OperationIndex = null, int? MaxLimit = null);

/// <summary>One operation of an entity-group transaction: its keys and, for writes, its entity.</summary>
public sealed record BatchOperation(string Method, string? Table, string? PartitionKey, string? RowKey, JsonElement? Entity);
