using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Secrets;

/// <summary>A secret's or parameter's tag (<c>{"Key","Value"}</c> in these services' casing).</summary>
public sealed record SecretTag(string Key, string Value)
{
    /// <summary>Tags as one table property: <c>[["key","value"],...]</c>.</summary>
    public static string Serialize(IEnumerable<SecretTag> tags) => JsonSerializer.Serialize(tags.Select(t => new[] { t.Key, t.Value }));

    public static List<SecretTag> Deserialize(string? json)
        => [.. JsonSerializer.Deserialize<string[][]>(json ?? "[]")!.Select(t => new SecretTag(t[0], t[1]))];
}

/// <summary>
/// A secret as stored: its metadata, its versions with their staging labels, and a copy of the
/// AWSCURRENT version's encrypted value, so the common read (GetSecretValue of the current value)
/// is one point read. The version rows hold every version's encrypted value.
/// </summary>
public sealed record SecretRecord(
    string Name,
    string Arn,
    string? Description,
    string? KmsKeyId,
    IReadOnlyList<SecretTag> Tags,
    DateTimeOffset Created,
    DateTimeOffset LastChanged,
    DateTimeOffset? DeletedDate,
    DateTimeOffset? DeletionDate,
    IReadOnlyList<SecretVersion> Versions,
    EncryptedValue? Current,
    ETag ETag = default)
{
    public const string MetadataRow = "secret";
    private const string CurrentPrefix = "Cur";

    public bool IsDeleted => DeletedDate is not null;

    public TableEntity ToEntity()
    {
        var entity = new TableEntity(SecretStore.Partition(Name), MetadataRow)
        {
            ["Name"] = Name,
            ["Arn"] = Arn,
            ["Description"] = Description,
            ["KmsKeyId"] = KmsKeyId,
            ["Tags"] = SecretTag.Serialize(Tags),
            ["Created"] = Created,
            ["LastChanged"] = LastChanged,
            ["DeletedDate"] = DeletedDate,
            ["DeletionDate"] = DeletionDate,
        };
        LargeJson.Write(entity, new JsonArray([.. Versions.Select(v => (JsonNode)new JsonObject
        {
            ["id"] = v.VersionId,
            ["created"] = v.Created.ToUnixTimeMilliseconds(),
            ["stages"] = new JsonArray([.. v.Stages.Select(s => (JsonNode)JsonValue.Create(s))]),
        })]).ToJsonString(), "Versions");
        Current?.WriteTo(entity, CurrentPrefix);
        return entity;
    }

    public static SecretRecord FromEntity(TableEntity entity)
    {
        var versions = JsonNode.Parse(LargeJson.Read(entity, "Versions") ?? "[]")!.AsArray().Select(v => new SecretVersion(
            v!["id"]!.GetValue<string>(),
            DateTimeOffset.FromUnixTimeMilliseconds(v["created"]!.GetValue<long>()),
            [.. v["stages"]!.AsArray().Select(s => s!.GetValue<string>())])).ToList();
        return new SecretRecord(
            entity.GetString("Name")!,
            entity.GetString("Arn")!,
            entity.GetString("Description"),
            entity.GetString("KmsKeyId"),
            SecretTag.Deserialize(entity.GetString("Tags")),
            entity.GetDateTimeOffset("Created")!.Value,
            entity.GetDateTimeOffset("LastChanged")!.Value,
            entity.GetDateTimeOffset("DeletedDate"),
            entity.GetDateTimeOffset("DeletionDate"),
            versions,
            EncryptedValue.ReadFrom(entity, CurrentPrefix),
            entity.ETag);
    }

    /// <summary>What the value of <paramref name="versionId"/> is encrypted against: the secret and the version.</summary>
    public string Context(string versionId) => $"{Arn}|{versionId}";
}
