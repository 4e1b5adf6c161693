using System.Text.Json.Nodes;

namespace Serverless.Core.Api;

/// <summary>Who made a request, as established by SigV4 verification.</summary>
public sealed record RequestContext(string? AccessKeyId);

/// <summary>
/// One API action. The request has already been checked against the AWS model's input shape
/// (JSON types, required members, enums), so a handler may rely on member types; it returns
/// the output shape's members as JSON, or throws an <see cref="EcsException"/>.
/// </summary>
public delegate Task<JsonObject> ActionHandler(JsonObject request, RequestContext context, CancellationToken cancellationToken);

/// <summary>A capability that serves actions (clusters, task definitions, ...).</summary>
public interface IActionSource
{
    void MapActions(ActionRegistry registry);
}

/// <summary>Action name (the part of <c>X-Amz-Target</c> after the dot) to handler, per target prefix.</summary>
public sealed class ActionRegistry
{
    public const string EcsTargetPrefix = "AmazonEC2ContainerServiceV20141113";
    public const string AutoScalingTargetPrefix = "AnyScaleFrontendService";

    private readonly Dictionary<string, ActionHandler> _handlers = new(StringComparer.Ordinal);

    public ActionRegistry(IEnumerable<IActionSource> sources)
    {
        foreach (var source in sources) source.MapActions(this);
    }

    public void Map(string action, ActionHandler handler, string targetPrefix = EcsTargetPrefix)
        => _handlers.Add($"{targetPrefix}.{action}", handler);

    public bool TryGet(string target, out ActionHandler handler) => _handlers.TryGetValue(target, out handler!);

    public IEnumerable<string> Targets => _handlers.Keys;
}
