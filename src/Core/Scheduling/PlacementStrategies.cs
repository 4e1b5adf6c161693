using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Scheduling;

/// <summary>Reads and checks <c>placementStrategy</c> and <c>placementConstraints</c> as ECS accepts them.</summary>
public static class PlacementStrategies
{
    public const int MaxStrategies = 5;
    public const int MaxConstraints = 10;

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
                case "spread" when field is "instanceId" or "host" || field?.StartsWith("attribute:", StringComparison.Ordinal) == true:
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
                var query = ClusterQuery.Parse(expression);
                return (Func<ContainerInstanceRecord, bool>)(instance => query.Matches(QueryTarget.From(instance)));
            })
            .ToList();
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
