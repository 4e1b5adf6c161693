using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Tags;

namespace Serverless.Core.Services;

/// <summary>A service in the shape of the ECS model's <c>Service</c>, members in the model's order.</summary>
public sealed class ServiceJson(Arns arns, EcsOptions options)
{
    /// <summary>
    /// The service as DescribeServices answers it. <c>tags</c> appears only when
    /// <paramref name="includeTags"/> (DescribeServices' <c>include: ["TAGS"]</c>, and CreateService).
    /// Deployments that are INACTIVE (completely replaced) are not shown; the service's running and
    /// pending counts are the sums over those shown.
    /// </summary>
    public JsonObject ToJson(ServiceRecord service, bool includeTags)
    {
        var deployments = service.Deployments.Where(d => d.Status != DeploymentStatus.Inactive).ToList();
        var passthrough = service.Passthrough;
        var json = new JsonObject
        {
            ["serviceArn"] = arns.Service(service.Cluster, service.Name),
            ["serviceName"] = service.Name,
            ["clusterArn"] = arns.Cluster(service.Cluster),
            ["loadBalancers"] = passthrough["loadBalancers"]?.DeepClone() ?? new JsonArray(),
            ["serviceRegistries"] = passthrough["serviceRegistries"]?.DeepClone() ?? new JsonArray(),
            ["status"] = service.Status,
            ["desiredCount"] = service.DesiredCount,
            ["runningCount"] = deployments.Sum(d => d.RunningCount),
            ["pendingCount"] = deployments.Sum(d => d.PendingCount),
        };
        LaunchTypeOrStrategy(json, service);
        Echo(json, passthrough, "platformVersion");
        json["taskDefinition"] = service.TaskDefinitionArn;
        json["deploymentConfiguration"] = DeploymentConfiguration(service);
        json["deployments"] = deployments.Select(d => (JsonNode?)Deployment(service, d)).ToJsonArray();
        if (RoleArn(passthrough.String("role")) is { } roleArn) json["roleArn"] = roleArn;
        json["events"] = service.Events.Select(e => (JsonNode?)new JsonObject
        {
            ["id"] = e.Id,
            ["createdAt"] = AwsJson.Timestamp(e.CreatedAt),
            ["message"] = e.Message,
        }).ToJsonArray();
        json["createdAt"] = AwsJson.Timestamp(service.CreatedAt);
        json["placementConstraints"] = service.PlacementConstraints.DeepClone();
        json["placementStrategy"] = service.PlacementStrategy.Select(s =>
        {
            var strategy = new JsonObject { ["type"] = s.Type };
            if (s.Field is not null) strategy["field"] = s.Field;
            return (JsonNode?)strategy;
        }).ToJsonArray();
        Echo(json, passthrough, "networkConfiguration");
        if (service.HealthCheckGracePeriodSeconds is { } grace) json["healthCheckGracePeriodSeconds"] = grace;
        json["schedulingStrategy"] = service.SchedulingStrategy;
        json["deploymentController"] = new JsonObject { ["type"] = "ECS" };
        if (includeTags) json["tags"] = Tag.ToJson(service.Tags);
        if (service.CreatedBy is not null) json["createdBy"] = service.CreatedBy;
        json["enableECSManagedTags"] = service.EnableEcsManagedTags;
        json["propagateTags"] = service.PropagateTagsFrom;
        json["enableExecuteCommand"] = false;
        Echo(json, passthrough, "availabilityZoneRebalancing");
        return json;
    }

    private static JsonObject DeploymentConfiguration(ServiceRecord service)
    {
        var configuration = service.DeploymentConfiguration;
        var json = new JsonObject
        {
            ["deploymentCircuitBreaker"] = new JsonObject
            {
                ["enable"] = configuration.CircuitBreakerEnable,
                ["rollback"] = configuration.CircuitBreakerRollback,
            },
            ["maximumPercent"] = configuration.MaximumPercent,
            ["minimumHealthyPercent"] = configuration.MinimumHealthyPercent,
        };
        // Members this control plane keeps without acting on them (alarms, strategy ROLLING, ...).
        if (service.Passthrough["deploymentConfiguration"] is JsonObject extra)
        {
            foreach (var (name, value) in extra) json[name] = value?.DeepClone();
        }
        return json;
    }

    private JsonObject Deployment(ServiceRecord service, Deployment deployment)
    {
        var json = new JsonObject
        {
            ["id"] = deployment.Id,
            ["status"] = deployment.Status,
            ["taskDefinition"] = deployment.TaskDefinitionArn,
            ["desiredCount"] = deployment.DesiredCount,
            ["pendingCount"] = deployment.PendingCount,
            ["runningCount"] = deployment.RunningCount,
            ["failedTasks"] = deployment.FailedTasks,
            ["createdAt"] = AwsJson.Timestamp(deployment.CreatedAt),
            ["updatedAt"] = AwsJson.Timestamp(deployment.UpdatedAt),
        };
        LaunchTypeOrStrategy(json, service);
        Echo(json, service.Passthrough, "platformVersion");
        Echo(json, service.Passthrough, "networkConfiguration");
        json["rolloutState"] = deployment.RolloutState;
        if (deployment.RolloutStateReason is not null) json["rolloutStateReason"] = deployment.RolloutStateReason;
        return json;
    }

    /// <summary>
    /// <c>role</c> as ECS reports it: an ARN as given; a name (with its path, if any) as a role ARN
    /// of the configured account.
    /// </summary>
    private string? RoleArn(string? role) => role switch
    {
        null or "" => null,
        _ when role.StartsWith("arn:", StringComparison.Ordinal) => role,
        _ => $"arn:aws:iam::{options.AccountId}:role/{role.TrimStart('/')}",
    };

    /// <summary>ECS shows a service's (and deployment's) launch type, or the capacity provider strategy it runs with instead.</summary>
    private static void LaunchTypeOrStrategy(JsonObject json, ServiceRecord service)
    {
        if (service.Passthrough["capacityProviderStrategy"] is JsonArray strategy) json["capacityProviderStrategy"] = strategy.DeepClone();
        else json["launchType"] = service.LaunchType;
    }

    private static void Echo(JsonObject json, JsonObject passthrough, string member)
    {
        if (passthrough[member] is { } value) json[member] = value.DeepClone();
    }
}
