using System.Globalization;
using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Tags;

namespace Serverless.Core.TaskDefinitions;

/// <summary>
/// RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions, ListTaskDefinitionFamilies,
/// DeregisterTaskDefinition and DeleteTaskDefinitions: parse the request, call the store, shape the answer.
/// </summary>
public sealed class TaskDefinitionActions(TaskDefinitionStore store, Arns arns) : IActionSource
{
    /// <summary>ECS's answer for a task definition it cannot find (or may not show).</summary>
    public const string UnableToDescribe = "Unable to describe task definition.";

    public const string StillActive = "The specified task definition is still in ACTIVE status. Please deregister the target and try again.";
    public const string DoesNotExist = "The specified task definition does not exist. Specify a valid account, family, revision and try again.";
    public const string InvalidIdentifier = "The specified task definition identifier is invalid. Specify a valid name or ARN and try again.";

    public const int MaxDeletesPerCall = 10;

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("RegisterTaskDefinition", RegisterAsync);
        registry.Map("DescribeTaskDefinition", DescribeAsync);
        registry.Map("ListTaskDefinitions", ListAsync);
        registry.Map("ListTaskDefinitionFamilies", ListFamiliesAsync);
        registry.Map("DeregisterTaskDefinition", DeregisterAsync);
        registry.Map("DeleteTaskDefinitions", DeleteAsync);
    }

    private async Task<JsonObject> RegisterAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        TaskDefinitionValidation.ValidateRegistration(request);
        var tags = Tag.FromRequest(request);
        var body = TaskDefinitionDefaults.Resolve(request, arns.Caller(context.AccessKeyId));
        var record = await store.RegisterAsync(body, tags, cancellationToken);

        var response = new JsonObject { ["taskDefinition"] = record.TaskDefinition.DeepClone() };
        if (request["tags"] is not null) response["tags"] = Tag.ToJson(record.Tags);
        return response;
    }

    private async Task<JsonObject> DescribeAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (family, revision) = ParseIdentifier(request.String("taskDefinition")!) ?? throw new ClientException(UnableToDescribe);
        var record = revision is { } number
            ? await store.FindAsync(family, number, cancellationToken)
            : await store.FindLatestActiveAsync(family, cancellationToken);
        if (record is null) throw new ClientException(UnableToDescribe);

        var response = new JsonObject { ["taskDefinition"] = record.TaskDefinition.DeepClone() };
        if (request.Strings("include").Contains("TAGS")) response["tags"] = Tag.ToJson(record.Tags);
        return response;
    }

    /// <summary>
    /// Despite its name, <c>familyPrefix</c> is "the full family name" on ECS: <c>web</c> lists
    /// web's revisions, not web-api's (ListTaskDefinitionFamilies, by contrast, takes a real prefix).
    /// </summary>
    private async Task<JsonObject> ListAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var familyPrefix = request.String("familyPrefix");
        var status = request.String("status") ?? TaskDefinitionRecord.Active;
        var descending = request.String("sort") == "DESC";
        var take = Paging.MaxResults(request);
        TaskDefinitionKey? after = Paging.AfterKey(request) is { } key
            ? TaskDefinitionKey.TryParse(key) ?? throw new InvalidParameterException("Invalid nextToken.")
            : null;

        var (items, more) = await store.ListAsync(familyPrefix, status, descending, take, after, cancellationToken);
        var response = new JsonObject
        {
            ["taskDefinitionArns"] = items.Select(k => arns.TaskDefinition(k.Family, k.Revision)).ToJsonArray(),
        };
        Paging.AddNextToken(response, more, items.Count > 0 ? items[^1].ToString() : null);
        return response;
    }

    private async Task<JsonObject> ListFamiliesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var status = request.String("status") switch
        {
            "ACTIVE" => FamilyStatusFilter.Active,
            "INACTIVE" => FamilyStatusFilter.Inactive,
            _ => FamilyStatusFilter.All,
        };
        var take = Paging.MaxResults(request);
        var (families, more) = await store.ListFamiliesAsync(request.String("familyPrefix"), status, take, Paging.AfterKey(request), cancellationToken);
        var response = new JsonObject { ["families"] = families.ToJsonArray() };
        Paging.AddNextToken(response, more, families.Count > 0 ? families[^1] : null);
        return response;
    }

    /// <summary>Deregistering needs a revision; an INACTIVE one is returned as it is, as ECS does.</summary>
    private async Task<JsonObject> DeregisterAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (family, revision) = ParseIdentifier(request.String("taskDefinition")!) ?? throw new ClientException(UnableToDescribe);
        if (revision is null) throw new ClientException("Revision is missing.");
        var record = await store.DeregisterAsync(new TaskDefinitionKey(family, revision.Value), cancellationToken)
            ?? throw new ClientException(UnableToDescribe);
        return new JsonObject { ["taskDefinition"] = record.TaskDefinition.DeepClone() };
    }

    /// <summary>
    /// Up to 10 revisions, each judged on its own: INACTIVE ones move to DELETE_IN_PROGRESS (and
    /// ones already there are returned again); the rest become <c>failures</c> with ECS's reasons.
    /// </summary>
    private async Task<JsonObject> DeleteAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var identifiers = request.Strings("taskDefinitions").ToList();
        if (identifiers.Count == 0) throw new InvalidParameterException("size of TaskDefinition references list must be greater than 0");
        if (identifiers.Count > MaxDeletesPerCall)
            throw new InvalidParameterException($"Size of TaskDefinition references list cannot exceed {MaxDeletesPerCall}");

        var deleted = new JsonArray();
        var failures = new JsonArray();
        foreach (var identifier in identifiers)
        {
            if (ParseIdentifier(identifier) is not (var family, { } revision))
            {
                failures.Add(Failure(identifier, InvalidIdentifier));
                continue;
            }
            var arn = arns.TaskDefinition(family, revision);
            var record = await store.MarkDeleteInProgressAsync(new TaskDefinitionKey(family, revision), cancellationToken);
            if (record is null) failures.Add(Failure(arn, DoesNotExist));
            else if (record.Status == TaskDefinitionRecord.Active) failures.Add(Failure(arn, StillActive));
            else deleted.Add(record.TaskDefinition.DeepClone());
        }
        return new JsonObject { ["taskDefinitions"] = deleted, ["failures"] = failures };
    }

    private static JsonObject Failure(string arn, string reason) => new() { ["arn"] = arn, ["reason"] = reason };

    /// <summary>
    /// <c>family</c>, <c>family:revision</c> or a task definition ARN of this account and region,
    /// as (family, revision or null). Null when it cannot name a task definition here.
    /// A revision that is not a number is refused as ECS does.
    /// </summary>
    private (string Family, int? Revision)? ParseIdentifier(string identifier)
    {
        var name = identifier;
        if (Arn.IsArn(identifier))
        {
            // Another account's or region's ARN names nothing here.
            if (arns.ParseOwn(identifier, "task-definition")?.ResourceId is not { } resource) return null;
            name = resource;
        }

        var colon = name.IndexOf(':');
        if (colon < 0) return TaskDefinitionValidation.NamePattern().IsMatch(name) ? (name, null) : null;

        var family = name[..colon];
        var text = name[(colon + 1)..];
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var revision))
            throw new InvalidParameterException($"Invalid revision number. Number: {text}");
        return TaskDefinitionValidation.NamePattern().IsMatch(family) && revision > 0 ? (family, revision) : null;
    }
}
