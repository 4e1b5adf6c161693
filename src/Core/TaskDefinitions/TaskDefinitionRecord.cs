using System.Text.Json.Nodes;
using Azure;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Tags;

namespace Serverless.Core.TaskDefinitions;

/// <summary>
/// One task definition revision as stored: its identity, status, tags and the complete
/// DescribeTaskDefinition JSON (<see cref="TaskDefinition"/>, with ECS's defaults applied).
/// <see cref="ETag"/> is the revision row's, for conditional writes.
/// </summary>
public sealed record TaskDefinitionRecord(
    string Family,
    int Revision,
    string Status,
    string Arn,
    JsonObject TaskDefinition,
    IReadOnlyList<Tag> Tags,
    ETag ETag)
{
    public const string Active = "ACTIVE";
    public const string Inactive = "INACTIVE";
    public const string DeleteInProgress = "DELETE_IN_PROGRESS";

    /// <summary>The typed view the system reads the definition through (<see cref="TaskDefinition"/> stays the stored form).</summary>
    public TaskDefinitionView View => new(TaskDefinition);

    /// <summary>The network mode, as described (<c>bridge</c> when the definition gives none).</summary>
    public string NetworkMode => View.NetworkMode;

    /// <summary>The container definitions' JSON, as described (defaults filled in), for passing on untouched.</summary>
    public IEnumerable<JsonObject> ContainerDefinitions => View.ContainerDefinitions.Select(c => c.Json);

    /// <summary>The container definitions, read through their typed view.</summary>
    public IReadOnlyList<ContainerDefinitionView> Containers => View.ContainerDefinitions;

    /// <summary>The <c>requiresAttributes</c> placement must satisfy (name, and value when given).</summary>
    public IReadOnlyList<InstanceAttribute> RequiresAttributes => View.RequiresAttributes;
}

/// <summary>A revision's place in the table: family and revision number.</summary>
public readonly record struct TaskDefinitionKey(string Family, int Revision)
{
    public override string ToString() => $"{Family}:{Revision}";

    /// <summary>Parses <c>family:revision</c>; null when it is not one.</summary>
    public static TaskDefinitionKey? TryParse(string value)
    {
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out var revision)) return null;
        return new TaskDefinitionKey(value[..colon], revision);
    }
}

/// <summary>The <c>status</c> filter of ListTaskDefinitionFamilies.</summary>
public enum FamilyStatusFilter
{
    All,
    Active,
    Inactive,
}
