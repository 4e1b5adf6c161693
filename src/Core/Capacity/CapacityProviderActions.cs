using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Tags;

namespace Serverless.Core.Capacity;

/// <summary>
/// CreateCapacityProvider, DescribeCapacityProviders, UpdateCapacityProvider, DeleteCapacityProvider
/// and PutClusterCapacityProviders. A capacity provider names a worker pool: the workers started
/// with <c>Worker__CapacityProvider=&lt;name&gt;</c> (by the pool agent, or by hand) in its cluster.
/// </summary>
public sealed partial class CapacityProviderActions(
    CapacityProviderStore providers, ClusterStore clusters, ContainerInstanceStore instances, Arns arns) : IActionSource
{
    public const string AlreadyExists = "The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.";
    public const string ReservedPrefix = "The specified capacity provider name is invalid. Capacity provider names cannot begin with 'aws', 'ecs', or 'fargate'.";
    public const string InvalidName = "The specified capacity provider name is invalid. Up to 255 characters are allowed, including letters (upper and lowercase), numbers, underscores, and hyphens.";
    public const string TerminationProtectionNeedsScaling = "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, managed scaling must also be enabled.";
    public const string InUse = "The specified capacity provider is in use and cannot be removed.";
    public const string DoesNotExist = "The specified capacity provider does not exist. Specify a valid capacity provider and try again.";
    public const string OtherCluster = "The specified capacity provider is already associated with a different cluster. Specify a capacity provider that is not associated with a cluster and try again.";
    public const string DefaultNotAssociated = "The specified default capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.";

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,255}$")]
    private static partial Regex NamePattern();

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("CreateCapacityProvider", CreateAsync);
        registry.Map("DescribeCapacityProviders", DescribeAsync);
        registry.Map("UpdateCapacityProvider", UpdateAsync);
        registry.Map("DeleteCapacityProvider", DeleteAsync);
        registry.Map("PutClusterCapacityProviders", PutClusterCapacityProvidersAsync);
    }

    private async Task<JsonObject> CreateAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request.String("name")!;
        if (!NamePattern().IsMatch(name)) throw new InvalidParameterException(InvalidName);
        if (name.StartsWith("aws", StringComparison.OrdinalIgnoreCase) || name.StartsWith("ecs", StringComparison.OrdinalIgnoreCase)
            || name.StartsWith("fargate", StringComparison.OrdinalIgnoreCase))
            throw new InvalidParameterException(ReservedPrefix);
        if (request["managedInstancesProvider"] is not null)
            throw new InvalidParameterException("Managed instances capacity providers are not supported; use an autoScalingGroupProvider (a worker pool).");
        var given = request["autoScalingGroupProvider"] as JsonObject
            ?? throw new InvalidParameterException("The autoScalingGroupProvider parameter is required.");
        var provider = new CapacityProviderRecord
        {
            Name = name,
            AutoScalingGroupProvider = WithDefaults(given, null),
            Tags = Tag.FromRequest(request),
        };
        if (!await providers.TryAddAsync(provider, cancellationToken)) throw new ClientException(AlreadyExists);
        return new JsonObject { ["capacityProvider"] = ToJson(provider, includeTags: true) };
    }

    private async Task<JsonObject> UpdateAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = NameOf(request.String("name")!);
        if (CapacityProviderNames.IsFargate(name)) throw new InvalidParameterException("The FARGATE and FARGATE_SPOT capacity providers cannot be updated.");
        var update = request["autoScalingGroupProvider"] as JsonObject ?? new JsonObject();
        var updated = await providers.UpdateAsync(name, p => p.Status != CapacityProviderRecord.Active ? null : p with
        {
            AutoScalingGroupProvider = WithDefaults(update, p.AutoScalingGroupProvider),
            UpdateStatus = "UPDATE_COMPLETE",
        }, cancellationToken);
        if (updated is not { Status: CapacityProviderRecord.Active }) throw new InvalidParameterException(DoesNotExist);
        return new JsonObject { ["capacityProvider"] = ToJson(updated, includeTags: false) };
    }

    private async Task<JsonObject> DeleteAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = NameOf(request.String("capacityProvider")!);
        if (CapacityProviderNames.IsFargate(name)) throw new InvalidParameterException("The FARGATE and FARGATE_SPOT capacity providers cannot be deleted.");
        var deleted = await providers.UpdateAsync(name, p =>
        {
            if (p.Status != CapacityProviderRecord.Active) return null;
            // Still associated: a cluster's strategy may name it and its pool may run tasks.
            if (p.Cluster is not null) throw new ClientException(InUse.Replace("removed", "deleted", StringComparison.Ordinal));
            return p with { Status = CapacityProviderRecord.Inactive, UpdateStatus = "DELETE_COMPLETE" };
        }, cancellationToken);
        if (deleted is not { Status: CapacityProviderRecord.Inactive }) throw new InvalidParameterException(DoesNotExist);
        return new JsonObject { ["capacityProvider"] = ToJson(deleted, includeTags: false) };
    }

    private async Task<JsonObject> DescribeAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var includeTags = request.Strings("include").Contains("TAGS");
        var active = await providers.ListActiveAsync(cancellationToken);
        var all = BuiltIn().Concat(active.Select(p => ToJson(p, includeTags))).ToList();
        var asked = request.Strings("capacityProviders").ToList();
        if (asked.Count == 0)
        {
            var take = Paging.MaxResults(request);
            var after = Paging.AfterKey(request);
            var page = all.Where(p => after is null || string.CompareOrdinal(p["name"]!.GetValue<string>(), after) > 0).Take(take + 1).ToList();
            var response = new JsonObject { ["capacityProviders"] = page.Take(take).Select(p => (JsonNode?)p).ToJsonArray(), ["failures"] = new JsonArray() };
            Paging.AddNextToken(response, page.Count > take, page.Take(take).LastOrDefault()?["name"]!.GetValue<string>());
            return response;
        }
        var described = new JsonArray();
        var failures = new JsonArray();
        foreach (var item in asked)
        {
            var name = arns.ResourcePart(item, "capacity-provider") ?? item;
            if (all.FirstOrDefault(p => p["name"]!.GetValue<string>() == name) is { } found) described.Add(found.DeepClone());
            else failures.Add(new JsonObject { ["arn"] = item.StartsWith("arn:", StringComparison.Ordinal) ? item : arns.CapacityProvider(item), ["reason"] = "MISSING" });
        }
        return new JsonObject { ["capacityProviders"] = described, ["failures"] = failures };
    }

    /// <summary>
    /// Sets the cluster's capacity providers and default strategy. A pool provider belongs to one
    /// cluster: it is claimed first (conditionally), then the cluster row is written, then the
    /// providers no longer listed are released; a failure part-way is repaired by the same call
    /// again. A provider whose pool still runs tasks in the cluster cannot be removed.
    /// </summary>
    private async Task<JsonObject> PutClusterCapacityProvidersAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = await clusters.GetActiveAsync(arns.ClusterName(request.String("cluster")), cancellationToken);
        var wanted = request.Strings("capacityProviders").Select(NameOf).Distinct(StringComparer.Ordinal).ToList();
        var strategy = LaunchTargets.Parse(request["defaultCapacityProviderStrategy"] as JsonArray);
        if (strategy.Any(s => !wanted.Contains(s.CapacityProvider))) throw new InvalidParameterException(DefaultNotAssociated);
        if (strategy.Count > 0) LaunchTargets.Check(strategy, wanted);

        var pools = wanted.Where(n => !CapacityProviderNames.IsFargate(n)).ToList();
        foreach (var name in pools)
        {
            var claimed = await providers.UpdateAsync(name, p =>
            {
                if (p.Status != CapacityProviderRecord.Active) throw new InvalidParameterException(DoesNotExist);
                if (p.Cluster is not null && p.Cluster != cluster.Name) throw new InvalidParameterException(OtherCluster);
                return p.Cluster == cluster.Name ? null : p with { Cluster = cluster.Name };
            }, cancellationToken);
            if (claimed is null) throw new InvalidParameterException(DoesNotExist);
        }

        var removed = LaunchTargets.Associated(cluster).Except(wanted).ToList();
        if (removed.Count > 0)
        {
            var hosts = await instances.ListAsync(cluster.Name, cancellationToken);
            if (hosts.Any(h => h.Reservations.Count > 0 && h.CapacityProviderName is { } provider
                               && (removed.Contains(provider) || (h.IsFargateHost && removed.Any(CapacityProviderNames.IsFargate)))))
                throw new ResourceInUseException(InUse);
        }

        var updated = await clusters.UpdateAsync(cluster.Name, c => c with
        {
            CapacityProviders = wanted.ToJsonArray().ToJsonString(),
            DefaultCapacityProviderStrategy = LaunchTargets.ToJson(strategy).ToJsonString(),
        }, cancellationToken);
        foreach (var name in removed.Where(n => !CapacityProviderNames.IsFargate(n)))
            await providers.UpdateAsync(name, p => p.Cluster == cluster.Name ? p with { Cluster = null } : null, cancellationToken);

        return new JsonObject
        {
            ["cluster"] = new JsonObject
            {
                ["clusterArn"] = arns.Cluster(updated.Name),
                ["clusterName"] = updated.Name,
                ["status"] = updated.Status,
                ["capacityProviders"] = wanted.ToJsonArray(),
                ["defaultCapacityProviderStrategy"] = LaunchTargets.ToJson(strategy),
            },
        };
    }

    /// <summary>
    /// ECS's defaults: managed scaling DISABLED unless given (target 100 %, steps 1 to 10000, 300 s
    /// warm-up), termination protection DISABLED, draining ENABLED; an update changes only what it names.
    /// </summary>
    public static JsonObject WithDefaults(JsonObject given, JsonObject? current)
    {
        var result = current?.DeepClone().AsObject() ?? new JsonObject();
        if (given["autoScalingGroupArn"] is { } arn) result["autoScalingGroupArn"] = arn.DeepClone();
        var scaling = result["managedScaling"]?.DeepClone().AsObject() ?? new JsonObject
        {
            ["status"] = "DISABLED", ["targetCapacity"] = 100, ["minimumScalingStepSize"] = 1, ["maximumScalingStepSize"] = 10000, ["instanceWarmupPeriod"] = 300,
        };
        if (given["managedScaling"] is JsonObject changes)
        {
            foreach (var (key, value) in changes) scaling[key] = value?.DeepClone();
        }
        if (scaling.Int("minimumScalingStepSize") > scaling.Int("maximumScalingStepSize"))
            throw new InvalidParameterException("The minimumScalingStepSize must be less than or equal to the maximumScalingStepSize.");
        result["managedScaling"] = scaling;
        result["managedTerminationProtection"] = given.String("managedTerminationProtection") ?? result.String("managedTerminationProtection") ?? "DISABLED";
        result["managedDraining"] = given.String("managedDraining") ?? result.String("managedDraining") ?? "ENABLED";
        if (result.String("managedTerminationProtection") == "ENABLED" && scaling.String("status") != "ENABLED")
            throw new InvalidParameterException(TerminationProtectionNeedsScaling);
        return result;
    }

    private JsonObject ToJson(CapacityProviderRecord provider, bool includeTags)
    {
        var json = new JsonObject
        {
            ["capacityProviderArn"] = arns.CapacityProvider(provider.Name),
            ["name"] = provider.Name,
            ["status"] = provider.Status,
            ["autoScalingGroupProvider"] = provider.AutoScalingGroupProvider.DeepClone(),
            ["updateStatus"] = provider.UpdateStatus,
            ["type"] = "EC2_AUTOSCALING",
        };
        if (includeTags) json["tags"] = Tag.ToJson(provider.Tags);
        return json;
    }

    /// <summary>FARGATE and FARGATE_SPOT exist in every account; they have no group of their own to show.</summary>
    private IEnumerable<JsonObject> BuiltIn()
        => new[] { CapacityProviderNames.Fargate, CapacityProviderNames.FargateSpot }.Select(name => new JsonObject
        {
            ["capacityProviderArn"] = arns.CapacityProvider(name),
            ["name"] = name,
            ["status"] = CapacityProviderRecord.Active,
            ["tags"] = new JsonArray(),
            ["type"] = name == CapacityProviderNames.Fargate ? "FARGATE" : "FARGATE_SPOT",
        });

    /// <summary>
    /// The provider name in a name or ARN. One no provider could have (wrong characters, too long)
    /// names none, and is never looked up: storage keys cannot hold every string a request can.
    /// </summary>
    private string NameOf(string nameOrArn)
    {
        var name = arns.ResourcePart(nameOrArn, "capacity-provider") ?? nameOrArn;
        return NamePattern().IsMatch(name) ? name : throw new InvalidParameterException(DoesNotExist);
    }
}
