using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.Scheduling;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Capacity;

/// <summary>The capacity providers every cluster may use without creating them.</summary>
public static class CapacityProviderNames
{
    public const string Fargate = "FARGATE";
    public const string FargateSpot = "FARGATE_SPOT";

    public static bool IsFargate(string name) => name is Fargate or FargateSpot;
}

/// <summary>
/// Where a RunTask's or a service's tasks run: a launch type (EC2 or FARGATE) and, when capacity
/// providers decide, the strategy that spreads them. <see cref="PlatformVersion"/> is the resolved
/// Fargate platform version (null for EC2).
/// </summary>
public sealed record LaunchTarget(string LaunchType, IReadOnlyList<StrategyItem> Strategy, string? PlatformVersion)
{
    public bool IsFargate => LaunchType == LaunchTargets.Fargate;
}

/// <summary>ECS's rules for <c>launchType</c>, <c>capacityProviderStrategy</c> and <c>platformVersion</c>.</summary>
public static class LaunchTargets
{
    public const string Ec2 = "EC2";
    public const string Fargate = "FARGATE";

    /// <summary>What <c>LATEST</c> means for Linux Fargate tasks today.</summary>
    public const string LatestPlatformVersion = "1.4.0";

    private static readonly string[] PlatformVersions = ["1.4.0", "1.3.0"];

    public const string BothGiven = "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.";
    public const string NotAssociated = "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.";
    public const string MoreThanOneBase = "Only one capacity provider in a capacity provider strategy can have a base value specified.";
    public const string NoWeight = "At least one capacity provider in a capacity provider strategy must have a weight value greater than zero.";
    public const string MixedTypes = "A capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.";
    public const string NotFargateCompatible = "Task definition does not support launch_type FARGATE.";
    public const string Ec2PlatformVersion = "The platform version must be null when specifying an EC2 launch type.";
    public const string UnknownPlatformVersion = "The specified platform version does not exist.";

    /// <summary>
    /// The target of a request: its <c>launchType</c>, else its <c>capacityProviderStrategy</c>, else
    /// the cluster's default strategy, else EC2. Throws ECS's <see cref="InvalidParameterException"/>s.
    /// </summary>
    public static LaunchTarget Resolve(JsonObject request, ClusterRecord? cluster, TaskDefinitionRecord? definition)
    {
        var launchType = request.String("launchType");
        var given = Parse(request["capacityProviderStrategy"] as JsonArray);
        if (launchType is not null && given.Count > 0) throw new InvalidParameterException(BothGiven);
        if (launchType is not (null or Ec2 or Fargate))
            throw new InvalidParameterException($"The {launchType} launch type is not supported by this cluster's capacity.");

        var strategy = launchType is null ? given.Count > 0 ? given : DefaultStrategy(cluster) : [];
        if (strategy.Count > 0) Check(strategy, Associated(cluster));
        var fargate = launchType == Fargate || strategy.Any(s => CapacityProviderNames.IsFargate(s.CapacityProvider));

        var platformVersion = request.String("platformVersion");
        if (!fargate)
        {
            if (platformVersion is not null) throw new InvalidParameterException(Ec2PlatformVersion);
            return new LaunchTarget(Ec2, strategy, null);
        }
        if (definition is not null && TaskDefinitionDefaults.FargateIncompatibility(definition.TaskDefinition) is not null)
            throw new InvalidParameterException(NotFargateCompatible);
        var resolved = platformVersion is null or "LATEST" ? LatestPlatformVersion : platformVersion;
        if (!PlatformVersions.Contains(resolved)) throw new InvalidParameterException(UnknownPlatformVersion);
        return new LaunchTarget(Fargate, strategy, resolved);
    }

    /// <summary>A strategy as the API takes it (weight and base default to 0).</summary>
    public static IReadOnlyList<StrategyItem> Parse(JsonArray? items)
        => (items ?? []).OfType<JsonObject>()
            .Select(i => new StrategyItem(i.String("capacityProvider") ?? "", i.Int("weight") ?? 0, i.Int("base") ?? 0))
            .ToList();

    /// <summary>ECS's checks of a strategy against the providers the cluster has.</summary>
    public static void Check(IReadOnlyList<StrategyItem> strategy, IReadOnlyCollection<string> associated)
    {
        if (strategy.Any(s => !associated.Contains(s.CapacityProvider))) throw new InvalidParameterException(NotAssociated);
        if (strategy.Count(s => s.Base > 0) > 1) throw new InvalidParameterException(MoreThanOneBase);
        if (strategy.All(s => s.Weight == 0)) throw new InvalidParameterException(NoWeight);
        if (strategy.Any(s => CapacityProviderNames.IsFargate(s.CapacityProvider)) && !strategy.All(s => CapacityProviderNames.IsFargate(s.CapacityProvider)))
            throw new InvalidParameterException(MixedTypes);
    }

    /// <summary>The capacity providers associated with the cluster (PutClusterCapacityProviders, CreateCluster).</summary>
    public static IReadOnlyList<string> Associated(ClusterRecord? cluster)
        => cluster?.CapacityProviders is { } json && JsonNode.Parse(json) is JsonArray names
            ? names.Select(n => n!.GetValue<string>()).ToList()
            : [];

    public static IReadOnlyList<StrategyItem> DefaultStrategy(ClusterRecord? cluster)
        => cluster?.DefaultCapacityProviderStrategy is { } json ? Parse(JsonNode.Parse(json) as JsonArray) : [];

    /// <summary>A strategy in the API's shape.</summary>
    public static JsonArray ToJson(IReadOnlyList<StrategyItem> strategy)
        => strategy.Select(s => (JsonNode?)new JsonObject { ["capacityProvider"] = s.CapacityProvider, ["weight"] = s.Weight, ["base"] = s.Base }).ToJsonArray();
}
