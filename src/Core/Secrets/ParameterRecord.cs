using System.Globalization;
using Azure;
using Azure.Data.Tables;

namespace Serverless.Core.Secrets;

/// <summary>
/// One version of an SSM parameter. A SecureString's value is held only as <see cref="Encrypted"/>;
/// String and StringList values are plain (they are not secret on AWS either).
/// </summary>
public sealed record ParameterRecord(
    string Name,
    string Type,
    long Version,
    string? PlainValue,
    EncryptedValue? Encrypted,
    string? Description,
    string? KeyId,
    string? AllowedPattern,
    string Tier,
    string DataType,
    IReadOnlyList<SecretTag> Tags,
    DateTimeOffset LastModified,
    string LastModifiedUser,
    ETag ETag = default)
{
    public const string CurrentRow = "p";
    public const string SecureString = "SecureString";
    private const string ValuePrefix = "V";

    public static string VersionRow(long version) => "v" + version.ToString("D10", CultureInfo.InvariantCulture);

    public TableEntity ToEntity(string rowKey)
    {
        var entity = new TableEntity(ParameterStore.Partition(Name), rowKey)
        {
            ["Name"] = Name,
            ["Type"] = Type,
            ["Version"] = Version,
            ["Value"] = PlainValue,
            ["Description"] = Description,
            ["KeyId"] = KeyId,
            ["AllowedPattern"] = AllowedPattern,
            ["Tier"] = Tier,
            ["DataType"] = DataType,
            ["Tags"] = SecretTag.Serialize(Tags),
            ["LastModified"] = LastModified,
            ["LastModifiedUser"] = LastModifiedUser,
        };
        Encrypted?.WriteTo(entity, ValuePrefix);
        return entity;
    }

    public static ParameterRecord FromEntity(TableEntity entity) => new(
        entity.GetString("Name")!,
        entity.GetString("Type")!,
        entity.GetInt64("Version")!.Value,
        entity.GetString("Value"),
        EncryptedValue.ReadFrom(entity, ValuePrefix),
        entity.GetString("Description"),
        entity.GetString("KeyId"),
        entity.GetString("AllowedPattern"),
        entity.GetString("Tier") ?? "Standard",
        entity.GetString("DataType") ?? "text",
        SecretTag.Deserialize(entity.GetString("Tags")),
        entity.GetDateTimeOffset("LastModified")!.Value,
        entity.GetString("LastModifiedUser") ?? "",
        entity.ETag);

    /// <summary>What a SecureString value of this version is encrypted against: the parameter and the version.</summary>
    public static string Context(string arn, long version) => $"{arn}|{version.ToString(CultureInfo.InvariantCulture)}";
}
