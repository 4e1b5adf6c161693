using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serverless.Core.AccountSettings;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.Clusters;

/// <summary>CreateCluster, DescribeClusters, ListClusters, UpdateCluster, UpdateClusterSettings, DeleteCluster.</summary>
/// <remarks>
/// A new cluster's <c>containerInsights</c> is the caller's account setting unless the request sets it
/// (without <paramref name="accountSettings"/>, ECS's default, disabled).
/// </remarks>
public sealed partial class ClusterActions(
    ClusterStore clusters, IEnumerable<IClusterUsage> usage, Arns arns, TimeProvider time, AccountSettingsActions? accountSettings = null) : IActionSource
{
    private const string ContainerInsights = "containerInsights";

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("CreateCluster", CreateClusterAsync);
        registry.Map("DescribeClusters", DescribeClustersAsync);
        registry.Map("ListClusters", ListClustersAsync);
        registry.Map("UpdateCluster", UpdateClusterAsync);
        registry.Map("UpdateClusterSettings", UpdateClusterSettingsAsync);
        registry.Map("DeleteCluster", DeleteClusterAsync);
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,255}$")]
    private static partial Regex ClusterName();

    private async Task<JsonObject> CreateClusterAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request.String("clusterName") ?? "default";
        if (!ClusterName().IsMatch(name))
            throw new InvalidParameterException("Clusters can only have up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens.");

        var wanted = new ClusterRecord
        {
            Name = name,
            Tags = Tag.FromRequest(request),
            Settings = MergeSettings(await DefaultSettingsAsync(context, cancellationToken), request["settings"] as JsonArray).ToJsonString(),
            Configuration = request["configuration"]?.ToJsonString(),
            ServiceConnectDefaults = request["serviceConnectDefaults"]?.ToJsonString(),
            CapacityProviders = request["capacityProviders"]?.ToJsonString(),
            DefaultCapacityProviderStrategy = request["defaultCapacityProviderStrategy"]?.ToJsonString(),
            CreatedAt = time.GetUtcNow(),
        };

        // ECS answers CreateCluster for an existing ACTIVE name with that cluster, unchanged;
        // a deleted (INACTIVE) name is created afresh. Losing a race to another creator is the same
        // as finding the cluster already there.
        var cluster = await OptimisticUpdate.RetryAsync(async _ =>
        {
            if (await clusters.TryAddAsync(wanted, cancellationToken)) return wanted;
            var existing = await clusters.FindAsync(name, cancellationToken)
                ?? throw new ConcurrentUpdateException(arns.Cluster(name));   // gone again: look again
            return existing.Status == ClusterRecord.Active ? existing : await clusters.SaveAsync(wanted with { ETag = existing.ETag }, cancellationToken);
        }, cancellationToken, maxAttempts: 5);
        return new JsonObject { ["cluster"] = await ToJsonAsync(cluster, Include.All, cancellationToken) };
    }

    private async Task<JsonObject> DescribeClustersAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var include = Include.Parse(request);
        var names = request.Strings("clusters").ToList().AtMost(ListLimits.DescribeClusters, "clusters");
        if (names.Count == 0) names.Add("default");
        // A name no cluster can have is simply missing, as any other unknown name.
        var found = await Task.WhenAll(names.Select(n => arns.TryClusterName(n) is { } name
            ? clusters.FindAsync(name, cancellationToken)
            : Task.FromResult<ClusterRecord?>(null)));

        var described = new JsonArray();
        var failures = new JsonArray();
        for (var i = 0; i < names.Count; i++)
        {
            if (found[i] is { } cluster)
                described.Add(await ToJsonAsync(cluster, include, cancellationToken));
            else
                failures.Add(new JsonObject { ["arn"] = names[i].StartsWith("arn:", StringComparison.Ordinal) ? names[i] : arns.Cluster(names[i]), ["reason"] = "MISSING" });
        }
        return new JsonObject { ["clusters"] = described, ["failures"] = failures };
    }

    private async Task<JsonObject> ListClustersAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (page, more) = await clusters.ListActiveAsync(Paging.AfterKey(request), Paging.MaxResults(request), cancellationToken);
        var response = new JsonObject { ["clusterArns"] = page.Select(c => arns.Cluster(c.Name)).ToJsonArray() };
        Paging.AddNextToken(response, more, page.LastOrDefault()?.Name);
        return response;
    }

    private async Task<JsonObject> UpdateClusterAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var updated = await clusters.UpdateAsync(arns.ClusterName(request.String("cluster")), c => c with
        {
            Settings = request["settings"] is JsonArray settings ? MergeSettings(Parse(c.Settings), settings).ToJsonString() : c.Settings,
            Configuration = request["configuration"]?.ToJsonString() ?? c.Configuration,
            ServiceConnectDefaults = request["serviceConnectDefaults"]?.ToJsonString() ?? c.ServiceConnectDefaults,
        }, cancellationToken);
        return new JsonObject { ["cluster"] = await ToJsonAsync(updated, Include.All, cancellationToken) };
    }

    private async Task<JsonObject> UpdateClusterSettingsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var settings = (JsonArray)request["settings"]!;
        var updated = await clusters.UpdateAsync(arns.ClusterName(request.String("cluster")),
            c => c with { Settings = MergeSettings(Parse(c.Settings), settings).ToJsonString() }, cancellationToken);
        return new JsonObject { ["cluster"] = await ToJsonAsync(updated, Include.All, cancellationToken) };
    }

    private async Task<JsonObject> DeleteClusterAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = arns.ClusterName(request.String("cluster"));
        var deleted = await DeleteIfEmptyAsync(await clusters.GetActiveAsync(name, cancellationToken), cancellationToken);
        return new JsonObject { ["cluster"] = await ToJsonAsync(deleted, Include.All, cancellationToken) };
    }

    private async Task<ClusterRecord> DeleteIfEmptyAsync(ClusterRecord cluster, CancellationToken cancellationToken)
    {
        var counts = await CountAsync(cluster.Name, cancellationToken);
        if (counts.ActiveServices + counts.DrainingServices > 0)
            throw new ClusterContainsServicesException("The Cluster cannot be deleted while Services are active.");
        if (counts.RegisteredContainerInstances > 0)
            throw new ClusterContainsContainerInstancesException("The Cluster cannot be deleted while Container Instances are active or draining.");
        if (counts.RunningTasks + counts.PendingTasks > 0)
            throw new ClusterContainsTasksException("The Cluster cannot be deleted while Tasks are active.");
        // Conditional on the ETag read before counting: a concurrent change to the cluster makes
        // this fail with a retryable error rather than delete a cluster that just changed.
        return await clusters.SaveAsync(cluster with { Status = ClusterRecord.Inactive }, cancellationToken);
    }

    private async Task<ClusterUsage> CountAsync(string cluster, CancellationToken cancellationToken)
    {
        var counts = await Task.WhenAll(usage.Select(u => u.CountAsync(cluster, cancellationToken)));
        return counts.Aggregate(new ClusterUsage(), (a, b) => a + b);
    }

    private async Task<JsonObject> ToJsonAsync(ClusterRecord cluster, Include include, CancellationToken cancellationToken)
    {
        var counts = cluster.Status == ClusterRecord.Active ? await CountAsync(cluster.Name, cancellationToken) : new ClusterUsage();
        var json = new JsonObject
        {
            ["clusterArn"] = arns.Cluster(cluster.Name),
            ["clusterName"] = cluster.Name,
            ["status"] = cluster.Status,
            ["registeredContainerInstancesCount"] = counts.RegisteredContainerInstances,
            ["runningTasksCount"] = counts.RunningTasks,
            ["pendingTasksCount"] = counts.PendingTasks,
            ["activeServicesCount"] = counts.ActiveServices,
            ["statistics"] = include.Statistics ? Statistics(counts) : new JsonArray(),
            ["tags"] = include.Tags ? Tag.ToJson(cluster.Tags) : new JsonArray(),
            ["capacityProviders"] = Parse(cluster.CapacityProviders),
            ["defaultCapacityProviderStrategy"] = Parse(cluster.DefaultCapacityProviderStrategy),
        };
        if (include.Settings) json["settings"] = Parse(cluster.Settings);
        if (include.Configurations && cluster.Configuration is not null) json["configuration"] = JsonNode.Parse(cluster.Configuration);
        if (cluster.ServiceConnectDefaults is not null) json["serviceConnectDefaults"] = JsonNode.Parse(cluster.ServiceConnectDefaults);
        return json;
    }

    private static JsonArray Statistics(ClusterUsage counts)
    {
        JsonObject Stat(string name, int value) => new() { ["name"] = name, ["value"] = value.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        return
        [
            Stat("runningEC2TasksCount", counts.RunningTasks),
            Stat("runningFargateTasksCount", 0),
            Stat("pendingEC2TasksCount", counts.PendingTasks),
            Stat("pendingFargateTasksCount", 0),
            Stat("activeEC2ServiceCount", counts.ActiveServices),
            Stat("activeFargateServiceCount", 0),
            Stat("drainingEC2ServiceCount", counts.DrainingServices),
            Stat("drainingFargateServiceCount", 0),
        ];
    }

    /// <summary>Settings are keyed by name: a new value replaces the old one of the same name.</summary>
    private async Task<JsonArray> DefaultSettingsAsync(RequestContext context, CancellationToken cancellationToken)
    {
        var insights = accountSettings is null ? "disabled" : await accountSettings.EffectiveValueAsync(ContainerInsights, context, cancellationToken);
        return [new JsonObject { ["name"] = ContainerInsights, ["value"] = insights }];
    }

    private static JsonArray MergeSettings(JsonArray current, JsonArray? changes)
    {
        var merged = current.Select(s => s!.DeepClone().AsObject()).ToList();
        foreach (var change in changes ?? [])
        {
            var index = merged.FindIndex(s => s["name"]?.GetValue<string>() == change!["name"]?.GetValue<string>());
            if (index >= 0) merged[index] = change!.DeepClone().AsObject(); else merged.Add(change!.DeepClone().AsObject());
        }
        return new JsonArray([.. merged]);
    }

    private static JsonArray Parse(string? json) => json is null ? [] : JsonNode.Parse(json)!.AsArray();

    private sealed record Include(bool Tags, bool Settings, bool Statistics, bool Configurations)
    {
        public static readonly Include All = new(true, true, false, true);

        public static Include Parse(JsonObject request)
        {
            var values = request.Strings("include").ToHashSet(StringComparer.Ordinal);
            return new(values.Contains("TAGS"), values.Contains("SETTINGS"), values.Contains("STATISTICS"), values.Contains("CONFIGURATIONS"));
        }
    }
}
