using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Services;

namespace Serverless.Core.AutoScaling;

/// <summary>
/// Application Auto Scaling (target prefix <c>AnyScaleFrontendService</c>) for namespace <c>ecs</c> and
/// dimension <c>ecs:service:DesiredCount</c>: scalable targets, target tracking policies on the ECS
/// service's average CPU or memory, step scaling policies invoked by metric alarms, and scaling activities.
/// </summary>
public sealed class AutoScalingActions(
    AutoScalingStore store, ScheduledActionStore scheduled, ServiceStore services, Alarms.MetricAlarmStore alarms, EcsOptions options, TimeProvider time) : IActionSource
{
    public const string Namespace = "ecs";
    public const string Dimension = "ecs:service:DesiredCount";
    public const string TargetTracking = "TargetTrackingScaling";
    public const string StepScalingType = "StepScaling";

    private static readonly Dictionary<string, string> PredefinedMetrics = new(StringComparer.Ordinal)
    {
        ["ECSServiceAverageCPUUtilization"] = Metrics.EcsUtilization.CpuUtilization,
        ["ECSServiceAverageMemoryUtilization"] = Metrics.EcsUtilization.MemoryUtilization,
    };

    /// <summary>The role Application Auto Scaling uses for ECS when none is given (its service-linked role).</summary>
    private string ServiceLinkedRole
        => $"arn:aws:iam::{options.AccountId}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService";

    public static string MetricOf(ScalingPolicyRecord policy) => PredefinedMetrics[policy.MetricType];

    public void MapActions(ActionRegistry registry)
    {
        const string prefix = ActionRegistry.AutoScalingTargetPrefix;
        registry.Map("RegisterScalableTarget", RegisterScalableTargetAsync, prefix);
        registry.Map("DescribeScalableTargets", DescribeScalableTargetsAsync, prefix);
        registry.Map("DeregisterScalableTarget", DeregisterScalableTargetAsync, prefix);
        registry.Map("PutScalingPolicy", PutScalingPolicyAsync, prefix);
        registry.Map("DescribeScalingPolicies", DescribeScalingPoliciesAsync, prefix);
        registry.Map("DeleteScalingPolicy", DeleteScalingPolicyAsync, prefix);
        registry.Map("DescribeScalingActivities", DescribeScalingActivitiesAsync, prefix);
        registry.Map("GetPredictiveScalingForecast", GetPredictiveScalingForecastAsync, prefix);
    }

    private async Task<JsonObject> RegisterScalableTargetAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (cluster, service) = Resource(request);
        var min = request.Int("MinCapacity");
        var max = request.Int("MaxCapacity");
        if (await services.FindAsync(cluster, service, cancellationToken) is not { Status: ServiceRecord.Active })
            throw AutoScalingException.Validation($"ECS service doesn't exist: service/{cluster}/{service}");
        var suspended = request["SuspendedState"] as JsonObject;
        for (var attempt = 1; ; attempt++)
        {
            var (current, _) = await store.FindAsync(cluster, service, cancellationToken);
            if (current is null && (min is null || max is null))
                throw AutoScalingException.Validation("MinCapacity and MaxCapacity are required for registering a new scalable target.");
            var target = (current ?? new ScalableTargetRecord
            {
                Cluster = cluster,
                Service = service,
                Arn = $"arn:aws:application-autoscaling:{options.Region}:{options.AccountId}:scalable-target/0ec{Guid.NewGuid():N}",
                RoleArn = ServiceLinkedRole,
                CreatedAt = time.GetUtcNow(),
                Tags = ScalableTargetTags.Checked(null, request["Tags"] as JsonObject, $"service/{cluster}/{service}"),
            }) with
            {
                MinCapacity = min ?? current!.MinCapacity,
                MaxCapacity = max ?? current!.MaxCapacity,
                RoleArn = request.String("RoleARN") ?? current?.RoleArn ?? ServiceLinkedRole,
                DynamicScalingInSuspended = suspended?["DynamicScalingInSuspended"]?.GetValue<bool>() ?? current?.DynamicScalingInSuspended ?? false,
                DynamicScalingOutSuspended = suspended?["DynamicScalingOutSuspended"]?.GetValue<bool>() ?? current?.DynamicScalingOutSuspended ?? false,
                ScheduledScalingSuspended = suspended?["ScheduledScalingSuspended"]?.GetValue<bool>() ?? current?.ScheduledScalingSuspended ?? false,
            };
            if (target.MinCapacity > target.MaxCapacity)
                throw AutoScalingException.Validation($"Minimum capacity cannot be greater than maximum capacity. Minimum capacity: {target.MinCapacity}, maximum capacity: {target.MaxCapacity}");
            try
            {
                await store.SaveTargetAsync(target, cancellationToken);
                return new JsonObject { ["ScalableTargetARN"] = target.Arn };
            }
            catch (ConcurrentUpdateException) when (attempt < 3)
            {
            }
            catch (ConcurrentUpdateException)
            {
                throw AutoScalingException.ConcurrentUpdate($"The scalable target service/{cluster}/{service} was updated concurrently. Retry the request.");
            }
        }
    }

    private async Task<JsonObject> DescribeScalableTargetsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        CheckNamespace(request);
        var ids = request.Strings("ResourceIds").ToHashSet(StringComparer.Ordinal);
        var targets = (await store.ListAsync(cancellationToken)).Select(t => t.Target)
            .Where(t => ids.Count == 0 || ids.Contains(t.ResourceId))
            .OrderBy(t => t.ResourceId, StringComparer.Ordinal);
        var (page, next) = Paging(targets, t => t.ResourceId, request);
        var result = new JsonObject { ["ScalableTargets"] = page.Select(t => (JsonNode)new JsonObject
        {
            ["ServiceNamespace"] = Namespace,
            ["ResourceId"] = t.ResourceId,
            ["ScalableDimension"] = Dimension,
            ["MinCapacity"] = t.MinCapacity,
            ["MaxCapacity"] = t.MaxCapacity,
            ["RoleARN"] = t.RoleArn,
            ["CreationTime"] = AwsJson.Timestamp(t.CreatedAt),
            ["SuspendedState"] = new JsonObject
            {
                ["DynamicScalingInSuspended"] = t.DynamicScalingInSuspended,
                ["DynamicScalingOutSuspended"] = t.DynamicScalingOutSuspended,
                ["ScheduledScalingSuspended"] = t.ScheduledScalingSuspended,
            },
            ["ScalableTargetARN"] = t.Arn,
        }).ToJsonArray() };
        if (next is not null) result["NextToken"] = next;
        return result;
    }

    private async Task<JsonObject> DeregisterScalableTargetAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (cluster, service) = Resource(request);
        var (target, policies) = await store.FindAsync(cluster, service, cancellationToken);
        if (target is null) throw NoTarget(cluster, service);
        try
        {
            await store.DeleteAsync(target, policies, cancellationToken);
        }
        catch (ConcurrentUpdateException)
        {
            throw AutoScalingException.ConcurrentUpdate($"The scalable target service/{cluster}/{service} was updated concurrently. Retry the request.");
        }
        // Deregistering deletes the target's scheduled actions too; one left behind by a failure here is deleted when it next falls due.
        foreach (var action in await scheduled.ListAsync(cluster, service, cancellationToken))
            await scheduled.DeleteAsync(cluster, service, action.Name, cancellationToken);
        return [];
    }

    private async Task<JsonObject> PutScalingPolicyAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (cluster, service) = Resource(request);
        var name = request.String("PolicyName")!;
        var type = request.String("PolicyType") ?? StepScalingType;
        if (type == StepScalingType) return await PutStepScalingPolicyAsync(request, cluster, service, name, cancellationToken);
        if (type != TargetTracking)
            throw AutoScalingException.Validation($"Policy type {type} is not supported by this endpoint; only {TargetTracking} and {StepScalingType} are.");
        if (request["TargetTrackingScalingPolicyConfiguration"] is not JsonObject configuration)
            throw AutoScalingException.Validation("TargetTrackingScalingPolicyConfiguration is required for a policy of type TargetTrackingScaling.");
        if (request["StepScalingPolicyConfiguration"] is not null)
            throw AutoScalingException.Validation("StepScalingPolicyConfiguration is not allowed for a policy of type TargetTrackingScaling.");
        if (configuration["CustomizedMetricSpecification"] is not null)
            throw AutoScalingException.Validation("CustomizedMetricSpecification is not supported by this endpoint; use a PredefinedMetricSpecification.");
        var metricType = configuration["PredefinedMetricSpecification"]?["PredefinedMetricType"]?.GetValue<string>()
            ?? throw AutoScalingException.Validation("Either PredefinedMetricSpecification or CustomizedMetricSpecification must be specified.");
        if (!PredefinedMetrics.ContainsKey(metricType))
            throw AutoScalingException.Validation($"Unsupported predefined metric type {metricType} for service namespace ecs.");
        var targetValue = configuration["TargetValue"]!.GetValue<double>();
        if (targetValue is < 8.515920e-109 or > 1.174271e+108)
            throw AutoScalingException.Validation("The target value must be between 8.515920e-109 and 1.174271e+108.");

        var (target, policies) = await store.FindAsync(cluster, service, cancellationToken);
        if (target is null) throw NoTarget(cluster, service);
        var existing = policies.FirstOrDefault(p => p.Name == name);
        if (existing is { IsTargetTracking: false })
            throw AutoScalingException.Validation($"The scaling policy {name} is a {StepScalingType} policy; its type cannot be changed to {TargetTracking}.");
        if (existing is null && policies.Count >= 50)
            throw new AutoScalingException("LimitExceededException", $"A scalable target may have at most 50 scaling policies.");
        var id = Guid.NewGuid().ToString();
        var policy = new ScalingPolicyRecord
        {
            Name = name,
            Arn = existing?.Arn ?? $"arn:aws:autoscaling:{options.Region}:{options.AccountId}:scalingPolicy:{id}:resource/ecs/{target.ResourceId}:policyName/{name}",
            TargetValue = targetValue,
            MetricType = metricType,
            ScaleOutCooldown = configuration.Int("ScaleOutCooldown"),
            ScaleInCooldown = configuration.Int("ScaleInCooldown"),
            DisableScaleIn = configuration.Bool("DisableScaleIn") ?? false,
            HighAlarmName = existing?.HighAlarmName ?? $"TargetTracking-{target.ResourceId}-AlarmHigh-{Guid.NewGuid()}",
            LowAlarmName = existing?.LowAlarmName ?? $"TargetTracking-{target.ResourceId}-AlarmLow-{Guid.NewGuid()}",
            CreatedAt = existing?.CreatedAt ?? time.GetUtcNow(),
        };
        // The alarms are part of the policy row: a policy never exists without them, nor they without it.
        await store.SavePolicyAsync(target, policy, cancellationToken);
        return new JsonObject { ["PolicyARN"] = policy.Arn, ["Alarms"] = Alarms(policy) };
    }

    /// <summary>
    /// A step scaling policy: it owns no alarm; an alarm created with PutMetricAlarm names the policy's ARN in its
    /// AlarmActions and invokes it while in ALARM (<see cref="ScalingEvaluator.InvokeStepPolicyAsync"/>).
    /// </summary>
    private async Task<JsonObject> PutStepScalingPolicyAsync(JsonObject request, string cluster, string service, string name, CancellationToken cancellationToken)
    {
        if (request["StepScalingPolicyConfiguration"] is not JsonObject configuration)
            throw AutoScalingException.Validation("StepScalingPolicyConfiguration is required for a policy of type StepScaling.");
        if (request["TargetTrackingScalingPolicyConfiguration"] is not null)
            throw AutoScalingException.Validation("TargetTrackingScalingPolicyConfiguration is not allowed for a policy of type StepScaling.");
        var adjustmentType = configuration.String("AdjustmentType")
            ?? throw AutoScalingException.Validation("AdjustmentType is required for a StepScaling policy.");
        var step = new StepScalingConfiguration(
            adjustmentType,
            [.. (configuration["StepAdjustments"] as JsonArray ?? []).OfType<JsonObject>().Select(a => new StepAdjustment(
                a["MetricIntervalLowerBound"]?.GetValue<double>(), a["MetricIntervalUpperBound"]?.GetValue<double>(), a.Int("ScalingAdjustment")!.Value))],
            configuration.Int("MinAdjustmentMagnitude"), configuration.Int("Cooldown"), configuration.String("MetricAggregationType") ?? "Average");
        if (StepScaling.Problem(step) is { } problem) throw AutoScalingException.Validation(problem);

        var (target, policies) = await store.FindAsync(cluster, service, cancellationToken);
        if (target is null) throw NoTarget(cluster, service);
        var existing = policies.FirstOrDefault(p => p.Name == name);
        if (existing is { IsTargetTracking: true })
            throw AutoScalingException.Validation($"The scaling policy {name} is a {TargetTracking} policy; its type cannot be changed to {StepScalingType}.");
        if (existing is null && policies.Count >= 50)
            throw new AutoScalingException("LimitExceededException", "A scalable target may have at most 50 scaling policies.");
        var policy = new ScalingPolicyRecord
        {
            Name = name,
            Arn = existing?.Arn ?? $"arn:aws:autoscaling:{options.Region}:{options.AccountId}:scalingPolicy:{Guid.NewGuid()}:resource/ecs/{target.ResourceId}:policyName/{name}",
            Step = step,
            CreatedAt = existing?.CreatedAt ?? time.GetUtcNow(),
        };
        await store.SavePolicyAsync(target, policy, cancellationToken);
        return new JsonObject { ["PolicyARN"] = policy.Arn };
    }

    private async Task<JsonObject> DescribeScalingPoliciesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        CheckNamespace(request);
        var names = request.Strings("PolicyNames").ToHashSet(StringComparer.Ordinal);
        IEnumerable<(ScalableTargetRecord Target, IReadOnlyList<ScalingPolicyRecord> Policies)> targets;
        if (request.String("ResourceId") is not null)
        {
            var (cluster, service) = Resource(request);
            var (target, policies) = await store.FindAsync(cluster, service, cancellationToken);
            targets = target is null ? [] : [(target, policies)];
        }
        else targets = await store.ListAsync(cancellationToken);
        var all = targets.SelectMany(t => t.Policies.Select(p => (t.Target, Policy: p)))
            .Where(x => names.Count == 0 || names.Contains(x.Policy.Name))
            .OrderBy(x => x.Policy.Arn, StringComparer.Ordinal);
        var (page, next) = Paging(all, x => x.Policy.Arn, request);
        // A step policy's alarms are the metric alarms whose actions name it: read only when the page has one.
        var invokers = page.Any(x => !x.Policy.IsTargetTracking) ? await alarms.ListAsync(cancellationToken) : [];
        var result = new JsonObject { ["ScalingPolicies"] = page.Select(x => (JsonNode)Describe(x.Target, x.Policy, invokers)).ToJsonArray() };
        if (next is not null) result["NextToken"] = next;
        return result;
    }

    private async Task<JsonObject> DeleteScalingPolicyAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (cluster, service) = Resource(request);
        var name = request.String("PolicyName")!;
        var (target, policies) = await store.FindAsync(cluster, service, cancellationToken);
        if (target is null || policies.All(p => p.Name != name))
            throw AutoScalingException.ObjectNotFound(
                $"No scaling policy found for service namespace: ecs, resource ID: service/{cluster}/{service}, scalable dimension: {Dimension}, policy name: {name}");
        // The policy's alarms live in its row and go with it.
        await store.DeletePolicyAsync(target, name, cancellationToken);
        return [];
    }

    /// <summary>
    /// A forecast exists only for a predictive scaling policy, and this endpoint has none (PutScalingPolicy takes
    /// target tracking and step scaling only), so the answer is the model's one client error, ValidationException, saying which is missing.
    /// </summary>
    private async Task<JsonObject> GetPredictiveScalingForecastAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (cluster, service) = Resource(request);
        var name = request.String("PolicyName")!;
        var (target, policies) = await store.FindAsync(cluster, service, cancellationToken);
        if (target is null) throw AutoScalingException.Validation(NoTarget(cluster, service).Message);
        if (policies.FirstOrDefault(p => p.Name == name) is not { } policy)
            throw AutoScalingException.Validation(
                $"No scaling policy found for service namespace: ecs, resource ID: service/{cluster}/{service}, scalable dimension: {Dimension}, policy name: {name}");
        throw AutoScalingException.Validation($"The scaling policy {name} is a {(policy.IsTargetTracking ? TargetTracking : StepScalingType)} policy: forecasts exist only for PredictiveScaling policies.");
    }

    private async Task<JsonObject> DescribeScalingActivitiesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        CheckNamespace(request);
        var take = request.Int("MaxResults") ?? 50;
        if (take is < 1 or > 50) throw AutoScalingException.Validation("MaxResults must be between 1 and 50.");
        var activities = new List<ScalingActivityRecord>();
        string? next = null;
        if (request.String("ResourceId") is not null)
        {
            var (cluster, service) = Resource(request);
            (var page, next) = await store.ActivitiesAsync(cluster, service, take, request.String("NextToken"), cancellationToken);
            activities.AddRange(page);
        }
        else
        {
            foreach (var (target, _) in await store.ListAsync(cancellationToken))
                activities.AddRange((await store.ActivitiesAsync(target.Cluster, target.Service, take, null, cancellationToken)).Activities);
            activities = [.. activities.OrderByDescending(a => a.StartTime).Take(take)];
        }
        var result = new JsonObject { ["ScalingActivities"] = activities.Select(a =>
        {
            var json = new JsonObject
            {
                ["ActivityId"] = a.ActivityId,
                ["ServiceNamespace"] = Namespace,
                ["ResourceId"] = a.ResourceId,
                ["ScalableDimension"] = Dimension,
                ["Description"] = a.Description,
                ["Cause"] = a.Cause,
                ["StartTime"] = AwsJson.Timestamp(a.StartTime),
                ["StatusCode"] = a.StatusCode,
            };
            if (a.EndTime is { } end) json["EndTime"] = AwsJson.Timestamp(end);
            if (a.StatusMessage is not null) json["StatusMessage"] = a.StatusMessage;
            return (JsonNode)json;
        }).ToJsonArray() };
        if (next is not null) result["NextToken"] = next;
        return result;
    }

    private JsonObject Describe(ScalableTargetRecord target, ScalingPolicyRecord policy, IReadOnlyList<Alarms.MetricAlarmRecord> invokers)
    {
        if (policy.Step is { } step)
        {
            var stepConfiguration = new JsonObject
            {
                ["AdjustmentType"] = step.AdjustmentType,
                ["StepAdjustments"] = step.Steps.Select(a =>
                {
                    var json = new JsonObject();
                    if (a.Lower is { } lower) json["MetricIntervalLowerBound"] = lower;
                    if (a.Upper is { } upper) json["MetricIntervalUpperBound"] = upper;
                    json["ScalingAdjustment"] = a.Adjustment;
                    return (JsonNode)json;
                }).ToJsonArray(),
                ["MetricAggregationType"] = step.MetricAggregationType,
            };
            if (step.MinAdjustmentMagnitude is { } magnitude) stepConfiguration["MinAdjustmentMagnitude"] = magnitude;
            if (step.Cooldown is { } cooldown) stepConfiguration["Cooldown"] = cooldown;
            return new JsonObject
            {
                ["PolicyARN"] = policy.Arn,
                ["PolicyName"] = policy.Name,
                ["ServiceNamespace"] = Namespace,
                ["ResourceId"] = target.ResourceId,
                ["ScalableDimension"] = Dimension,
                ["PolicyType"] = StepScalingType,
                ["StepScalingPolicyConfiguration"] = stepConfiguration,
                ["Alarms"] = invokers.Where(a => a.AlarmActions.Contains(policy.Arn))
                    .Select(a => (JsonNode)new JsonObject { ["AlarmName"] = a.Name, ["AlarmARN"] = a.Arn }).ToJsonArray(),
                ["CreationTime"] = AwsJson.Timestamp(policy.CreatedAt),
            };
        }
        var configuration = new JsonObject
        {
            ["TargetValue"] = policy.TargetValue,
            ["PredefinedMetricSpecification"] = new JsonObject { ["PredefinedMetricType"] = policy.MetricType },
            ["DisableScaleIn"] = policy.DisableScaleIn,
        };
        if (policy.ScaleOutCooldown is { } outCooldown) configuration["ScaleOutCooldown"] = outCooldown;
        if (policy.ScaleInCooldown is { } inCooldown) configuration["ScaleInCooldown"] = inCooldown;
        return new JsonObject
        {
            ["PolicyARN"] = policy.Arn,
            ["PolicyName"] = policy.Name,
            ["ServiceNamespace"] = Namespace,
            ["ResourceId"] = target.ResourceId,
            ["ScalableDimension"] = Dimension,
            ["PolicyType"] = TargetTracking,
            ["TargetTrackingScalingPolicyConfiguration"] = configuration,
            ["Alarms"] = Alarms(policy),
            ["CreationTime"] = AwsJson.Timestamp(policy.CreatedAt),
        };
    }

    private JsonArray Alarms(ScalingPolicyRecord policy) => new(
        new JsonObject { ["AlarmName"] = policy.HighAlarmName, ["AlarmARN"] = AlarmArn(policy.HighAlarmName) },
        new JsonObject { ["AlarmName"] = policy.LowAlarmName, ["AlarmARN"] = AlarmArn(policy.LowAlarmName) });

    private string AlarmArn(string name) => $"arn:aws:cloudwatch:{options.Region}:{options.AccountId}:alarm:{name}";

    internal static void CheckNamespace(JsonObject request)
    {
        if (request.String("ServiceNamespace") != Namespace)
            throw AutoScalingException.Validation($"Unsupported service namespace {request.String("ServiceNamespace")}: this endpoint scales ECS services (namespace ecs).");
        if (request.String("ScalableDimension") is { } dimension && dimension != Dimension)
            throw AutoScalingException.Validation($"Unsupported scalable dimension {dimension} for service namespace ecs.");
    }

    /// <summary>The cluster and service of a <c>service/&lt;cluster&gt;/&lt;service&gt;</c> resource id, after the namespace and dimension checks.</summary>
    internal static (string Cluster, string Service) Resource(JsonObject request)
    {
        CheckNamespace(request);
        var id = request.String("ResourceId") ?? "";
        var parts = id.Split('/');
        if (parts is not ["service", { Length: > 0 } cluster, { Length: > 0 } service]
            || !parts.Skip(1).All(p => p.Length <= 255 && p.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
            throw AutoScalingException.Validation($"Unsupported resource ID {id}: an ECS service is service/<cluster-name>/<service-name>.");
        return (cluster, service);
    }

    internal static AutoScalingException NoTarget(string cluster, string service)
        => AutoScalingException.ObjectNotFound(
            $"No scalable target registered for service namespace: ecs, resource ID: service/{cluster}/{service}, scalable dimension: {Dimension}");

    internal static (List<T> Page, string? Next) Paging<T>(IEnumerable<T> ordered, Func<T, string> key, JsonObject request)
    {
        var take = request.Int("MaxResults") ?? 50;
        if (take is < 1 or > 50) throw AutoScalingException.Validation("MaxResults must be between 1 and 50.");
        var after = request.String("NextToken");
        var rest = ordered.Where(x => after is null || string.CompareOrdinal(key(x), after) > 0).Take(take + 1).ToList();
        return rest.Count > take ? (rest[..take], key(rest[take - 1])) : (rest, null);
    }
}
