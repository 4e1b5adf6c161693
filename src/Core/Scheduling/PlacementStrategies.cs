using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Scheduling;

/// <summary>Reads and checks <c>placementStrategy</c> and <c>placementConstraints</c> as ECS accepts them.</summary>
public static class PlacementStrategies
{
    public const int MaxStrategies = 5;
    public const int MaxConstraints = 10;
    private const string AttributePrefix = "attribute:";

    public static IReadOnlyList<PlacementStrategy> Parse(JsonArray? json, IReadOnlyList<PlacementStrategy> @default)
    {
        if (json is null || json.Count == 0) return @default;
        if (json.Count > MaxStrategies) throw new InvalidParameterException($"A maximum of {MaxStrategies} placement strategies is allowed.");
        return json.Select(node =>
        {
            var type = node!["type"]?.GetValue<string>() ?? throw new InvalidParameterException("Placement strategy type must be specified.");
            var field = node["field"]?.GetValue<string>();
            switch (type)
            {
                case "random":
                    return new PlacementStrategy(type);
                case "binpack" when field is not null && (field.Equals("cpu", StringComparison.OrdinalIgnoreCase) || field.Equals("memory", StringComparison.OrdinalIgnoreCase)):
                    return new PlacementStrategy(type, field.ToLowerInvariant());
                case "binpack":
                    throw new InvalidParameterException($"Invalid field for binpack strategy: {field ?? "(none)"}. Valid fields are cpu and memory.");
                // An attribute's name is 1 to 128 characters (PutAttributes): a longer one names nothing an instance can have.
                case "spread" when field is "instanceId" or "host" || (field?.StartsWith("attribute:", StringComparison.Ordinal) == true && field.Length <= AttributePrefix.Length + 128):
                    return new PlacementStrategy(type, field == "host" ? "instanceId" : field);
                case "spread":
                    throw new InvalidParameterException($"Invalid field for spread strategy: {field ?? "(none)"}. Valid fields are instanceId, host and attribute:<name>.");
                default:
                    throw new InvalidParameterException($"Invalid placement strategy type: {type}.");
            }
        }).ToList();
    }

    public static bool HasDistinctInstance(JsonArray constraints)
    {
        Check(constraints);
        return constraints.Any(c => c!["type"]?.GetValue<string>() == "distinctInstance");
    }

    /// <summary>Each <c>memberOf</c> constraint compiled to a test on an instance (task groups are not known here).</summary>
    public static IReadOnlyList<Func<ContainerInstanceRecord, bool>> MemberOf(JsonArray constraints)
    {
        Check(constraints);
        return constraints
            .Where(c => c!["type"]?.GetValue<string>() == "memberOf")
            .Select(c =>
            {
                var expression = c!["expression"]?.GetValue<string>();
                if (string.IsNullOrWhiteSpace(expression)) throw new InvalidParameterException("A memberOf placement constraint requires an expression.");
                return MemberOfExpression(expression);
            })
            .ToList();
    }

    /// <summary>The <c>memberOf</c> expressions of <paramref name="constraints"/>, as given (checked by <see cref="MemberOf"/>).</summary>
    public static IReadOnlyList<string> MemberOfExpressions(JsonArray constraints)
        => [.. constraints.Where(c => c!["type"]?.GetValue<string>() == "memberOf").Select(c => c!["expression"]!.GetValue<string>())];

    /// <summary>One <c>memberOf</c> expression compiled to a test on an instance.</summary>
    public static Func<ContainerInstanceRecord, bool> MemberOfExpression(string expression)
    {
        var query = ClusterQuery.Parse(expression);
        return instance => query.Matches(QueryTarget.From(instance));
    }

    private static void Check(JsonArray constraints)
    {
        if (constraints.Count > MaxConstraints)
            throw new InvalidParameterException($"A maximum of {MaxConstraints} placement constraints is allowed.");
    }
}

/// <summary>How a launch chooses among instances: its strategies and its constraints (distinctInstance, memberOf).</summary>
public sealed record PlacementRules(
    IReadOnlyList<PlacementStrategy> Strategies, bool DistinctInstance, IReadOnlyList<Func<ContainerInstanceRecord, bool>> MemberOf)
{
    public static readonly PlacementRules RunTaskDefault = new(Placement.RunTaskDefault, false, []);

    /// <summary>A service's: its own strategies (ECS's default spread when it gives none; none for DAEMON) and constraints.</summary>
    public static PlacementRules Of(Services.ServiceRecord service)
        => new(service.IsDaemon ? [] : service.PlacementStrategy.Count > 0 ? service.PlacementStrategy : Placement.ServiceDefault,
            PlacementStrategies.HasDistinctInstance(service.PlacementConstraints),
            PlacementStrategies.MemberOf(service.PlacementConstraints));
}
