using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.Reconciliation;

namespace Serverless.Core.Services;

public sealed class ServiceDeploymentNotFoundException(string message) : EcsException(message)
{
    public override string ErrorType => "ServiceDeploymentNotFoundException";
}

public sealed class ConflictException(string message) : EcsException(message)
{
    public override string ErrorType => "ConflictException";
}

/// <summary>
/// The service deployment API: ListServiceDeployments, DescribeServiceDeployments, DescribeServiceRevisions,
/// StopServiceDeployment and ContinueServiceDeployment. A service deployment is one of the service's
/// deployments (<c>ecs-svc/…</c>); its ARN is <c>service-deployment/cluster/service/&lt;digits&gt;</c> and the revision
/// it deploys is <c>service-revision/cluster/service/&lt;digits&gt;</c>. What is listed is what the service row holds:
/// its current deployments and the last <see cref="BlueGreen.MaxHistory"/> that left. Stopping and continuing
/// record the request on the deployment and wake the reconciler, which acts on it.
/// </summary>
public sealed class ServiceDeploymentActions(
    ClusterStore clusters, ServiceStore services, ReconcileQueue reconcile, Arns arns, ILogger<ServiceDeploymentActions> logger) : IActionSource
{
    private const string IdPrefix = "ecs-svc/";

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("ListServiceDeployments", ListAsync);
        registry.Map("DescribeServiceDeployments", DescribeAsync);
        registry.Map("DescribeServiceRevisions", DescribeRevisionsAsync);
        registry.Map("StopServiceDeployment", StopAsync);
        registry.Map("ContinueServiceDeployment", ContinueAsync);
    }

    private string DeploymentArn(ServiceRecord service, Deployment d) => Arn(service, "service-deployment", d);

    private string RevisionArn(ServiceRecord service, Deployment d) => Arn(service, "service-revision", d);

    private string Arn(ServiceRecord service, string type, Deployment d)
        => arns.Service(service.Cluster, service.Name).Replace(":service/", $":{type}/", StringComparison.Ordinal) + "/" + d.Id[(d.Id.StartsWith(IdPrefix, StringComparison.Ordinal) ? IdPrefix.Length : 0)..];

    private async Task<JsonObject> ListAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        var reference = request.String("service")!;
        var name = arns.ResourcePath(reference, "service") is { Length: > 0 } path ? path[^1] : reference;
        var take = Paging.MaxResults(request, @default: 20, max: 100);
        var after = Paging.AfterKey(request);
        var service = await clusters.ReadInActiveAsync(cluster, services.FindAsync(cluster, name, cancellationToken), cancellationToken)
            ?? throw new ServiceNotFoundException();
        var statuses = request.Strings("status").ToHashSet(StringComparer.Ordinal);
        DateTimeOffset? before = request["createdAt"]?["before"] is JsonValue b ? AwsJson.FromTimestamp(b.GetValue<double>()) : null;
        DateTimeOffset? since = request["createdAt"]?["after"] is JsonValue a ? AwsJson.FromTimestamp(a.GetValue<double>()) : null;

        var all = All(service)
            .Where(d => statuses.Count == 0 || statuses.Contains(Status(service, d)))
            .Where(d => (before is null || d.CreatedAt <= before) && (since is null || d.CreatedAt >= since))
            .OrderByDescending(d => d.CreatedAt).ThenBy(d => d.Id, StringComparer.Ordinal)
            .ToList();
        var start = after is null ? 0 : all.FindIndex(d => d.Id == after) + 1;
        var page = all.Skip(start).Take(take).ToList();
        var response = new JsonObject
        {
            ["serviceDeployments"] = page.Select(d =>
            {
                var brief = new JsonObject
                {
                    ["serviceDeploymentArn"] = DeploymentArn(service, d),
                    ["serviceArn"] = arns.Service(service.Cluster, service.Name),
                    ["clusterArn"] = arns.Cluster(service.Cluster),
                    ["startedAt"] = AwsJson.Timestamp(d.Lifecycle?.StartedAt ?? d.CreatedAt),
                    ["createdAt"] = AwsJson.Timestamp(d.CreatedAt),
                };
                if (FinishedAt(service, d) is { } finished) brief["finishedAt"] = AwsJson.Timestamp(finished);
                brief["targetServiceRevisionArn"] = RevisionArn(service, d);
                brief["status"] = Status(service, d);
                if (StatusReason(d) is { } reason) brief["statusReason"] = reason;
                return (JsonNode?)brief;
            }).ToJsonArray(),
        };
        Paging.AddNextToken(response, start + page.Count < all.Count, page.LastOrDefault()?.Id);
        return response;
    }

    private async Task<JsonObject> DescribeAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var given = request.Strings("serviceDeploymentArns").ToList();
        if (given.Count is < 1 or > 20) throw new InvalidParameterException("serviceDeploymentArns must contain between 1 and 20 ARNs.");
        var found = new JsonArray();
        var failures = new JsonArray();
        foreach (var arn in given.Distinct(StringComparer.Ordinal))
        {
            if (await FindAsync(arn, "service-deployment", cancellationToken) is var (service, deployment))
                found.Add(Describe(service, deployment));
            else
                failures.Add(new JsonObject { ["arn"] = arn, ["reason"] = "MISSING" });
        }
        return new JsonObject { ["serviceDeployments"] = found, ["failures"] = failures };
    }

    private async Task<JsonObject> DescribeRevisionsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var given = request.Strings("serviceRevisionArns").ToList();
        if (given.Count is < 1 or > 20) throw new InvalidParameterException("serviceRevisionArns must contain between 1 and 20 ARNs.");
        var found = new JsonArray();
        var failures = new JsonArray();
        foreach (var arn in given.Distinct(StringComparer.Ordinal))
        {
            if (await FindAsync(arn, "service-revision", cancellationToken) is not var (service, deployment))
            {
                failures.Add(new JsonObject { ["arn"] = arn, ["reason"] = "MISSING" });
                continue;
            }
            var revision = new JsonObject
            {
                ["serviceRevisionArn"] = RevisionArn(service, deployment),
                ["serviceArn"] = arns.Service(service.Cluster, service.Name),
                ["clusterArn"] = arns.Cluster(service.Cluster),
                ["taskDefinition"] = deployment.TaskDefinitionArn,
            };
            if (service.Passthrough["capacityProviderStrategy"] is JsonArray strategy) revision["capacityProviderStrategy"] = strategy.DeepClone();
            else revision["launchType"] = service.LaunchType;
            foreach (var member in new[] { "platformVersion", "loadBalancers", "serviceRegistries", "networkConfiguration" })
            {
                if (service.Passthrough[member] is { } value) revision[member] = value.DeepClone();
            }
            revision["createdAt"] = AwsJson.Timestamp(deployment.CreatedAt);
            found.Add(revision);
        }
        return new JsonObject { ["serviceRevisions"] = found, ["failures"] = failures };
    }

    private async Task<JsonObject> StopAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var arn = request.String("serviceDeploymentArn")!;
        var stopType = request.String("stopType") ?? HookStatus.Rollback;
        if (stopType != HookStatus.Rollback)
            throw new InvalidParameterException($"The stop type {stopType} is not supported. The valid value is ROLLBACK.");
        var (service, deployment) = await FindAsync(arn, "service-deployment", cancellationToken)
            ?? throw new ServiceDeploymentNotFoundException($"The service deployment {arn} does not exist.");
        var updated = await services.UpdateAsync(service.Cluster, service.Name, current =>
        {
            var target = current.Primary;
            if (target?.Id != deployment.Id || !InProgress(target))
                throw new ConflictException($"The service deployment {arn} is not in progress. Only an in-progress service deployment can be stopped.");
            if (target.Lifecycle?.StopRequested == HookStatus.Rollback) return current;   // asked already: the same answer
            var lifecycle = (target.Lifecycle ?? new DeploymentLifecycle { StartedAt = target.CreatedAt }) with { StopRequested = HookStatus.Rollback };
            return current with { Deployments = current.Deployments.Select(d => d.Id == target.Id ? d with { Lifecycle = lifecycle } : d).ToList() };
        }, cancellationToken);
        logger.LogInformation("Service deployment {ServiceDeploymentArn}: rollback requested", arn);
        await reconcile.EnqueueAsync(new ServiceKey(updated.Cluster, updated.Name), null, cancellationToken);
        return new JsonObject { ["serviceDeploymentArn"] = arn };
    }

    private async Task<JsonObject> ContinueAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var arn = request.String("serviceDeploymentArn")!;
        var hookId = request.String("hookId")!;
        var action = request.String("action") ?? HookStatus.Continue;
        var (service, deployment) = await FindAsync(arn, "service-deployment", cancellationToken)
            ?? throw new ServiceDeploymentNotFoundException($"The service deployment {arn} does not exist.");
        var updated = await services.UpdateAsync(service.Cluster, service.Name, current =>
        {
            var target = current.Deployments.FirstOrDefault(d => d.Id == deployment.Id);
            var hook = target?.Lifecycle?.Hooks.FirstOrDefault(h => h.HookId == hookId)
                ?? throw new InvalidParameterException($"The lifecycle hook {hookId} does not exist in service deployment {arn}.");
            if (hook.Status != HookStatus.AwaitingAction)
                throw new InvalidParameterException($"The lifecycle hook {hookId} is {hook.Status}, not AWAITING_ACTION.");
            var answered = hook with { Status = action == HookStatus.Rollback ? HookStatus.Failed : HookStatus.Succeeded };
            var lifecycle = target!.Lifecycle! with { Hooks = target.Lifecycle.Hooks.Select(h => h.HookId == hookId ? answered : h).ToList() };
            return current with { Deployments = current.Deployments.Select(d => d.Id == target.Id ? d with { Lifecycle = lifecycle } : d).ToList() };
        }, cancellationToken);
        logger.LogInformation("Service deployment {ServiceDeploymentArn}: hook {HookId} answered {Action}", arn, hookId, action);
        await reconcile.EnqueueAsync(new ServiceKey(updated.Cluster, updated.Name), null, cancellationToken);
        return new JsonObject { ["serviceDeploymentArn"] = arn };
    }

    /// <summary>The service and deployment an ARN of <paramref name="type"/> names, or null.</summary>
    private async Task<(ServiceRecord, Deployment)?> FindAsync(string arn, string type, CancellationToken cancellationToken)
    {
        if (arns.ParseOwn(arn, type)?.Path is not [var cluster, var name, var id] || !Arns.IsClusterName(cluster)) return null;
        var service = await services.FindAsync(cluster, name, cancellationToken);
        var deployment = service is null ? null : All(service).FirstOrDefault(d => d.Id == IdPrefix + id);
        return deployment is null ? null : (service!, deployment);
    }

    private static IEnumerable<Deployment> All(ServiceRecord service)
        => service.Deployments.Concat(service.DeploymentHistory.Where(h => service.Deployments.All(d => d.Id != h.Id)));

    private static bool InProgress(Deployment d)
        => d.Lifecycle is { Stage: not null } lc ? lc.InProgress : d.RolloutState == DeploymentRolloutState.InProgress;

    /// <summary>ECS's ServiceDeploymentStatus of a deployment.</summary>
    public static string Status(ServiceRecord service, Deployment d)
    {
        if (d.Lifecycle is { Stage: not null, Status: { } status } lc)
            return status == ServiceDeploymentStatus.InProgress && lc.StopRequested == HookStatus.Rollback ? ServiceDeploymentStatus.RollbackRequested : status;
        if (d.RolloutState == DeploymentRolloutState.InProgress)
        {
            if (d.Status == DeploymentStatus.Primary)
                return d.Lifecycle?.StopRequested == HookStatus.Rollback ? ServiceDeploymentStatus.RollbackRequested : ServiceDeploymentStatus.InProgress;
            return ServiceDeploymentStatus.Stopped;   // replaced by a newer deployment before it finished
        }
        if (d.RolloutState == DeploymentRolloutState.Completed) return ServiceDeploymentStatus.Successful;
        // FAILED: rolled back when the circuit breaker (or a stop) brought an earlier revision back.
        var rollback = service.Primary is { } p && p.CreatedAt >= d.CreatedAt && p.Id != d.Id ? p : null;
        if (rollback is null) return ServiceDeploymentStatus.Stopped;
        return rollback.RolloutState == DeploymentRolloutState.Completed ? ServiceDeploymentStatus.RollbackSuccessful : ServiceDeploymentStatus.RollbackInProgress;
    }

    private static string? StatusReason(Deployment d) => d.Lifecycle?.StatusReason ?? d.RolloutStateReason;

    private static DateTimeOffset? FinishedAt(ServiceRecord service, Deployment d)
        => d.Lifecycle?.FinishedAt ?? (Status(service, d) is ServiceDeploymentStatus.InProgress or ServiceDeploymentStatus.RollbackRequested or ServiceDeploymentStatus.RollbackInProgress ? null : d.UpdatedAt);

    private JsonObject Revision(ServiceRecord service, Deployment d, int? permille, bool? test)
    {
        var json = new JsonObject
        {
            ["arn"] = RevisionArn(service, d),
            ["requestedTaskCount"] = d.DesiredCount,
            ["runningTaskCount"] = d.RunningCount,
            ["pendingTaskCount"] = d.PendingCount,
        };
        if (test is { } t) json["requestedTestTrafficWeight"] = t ? 100.0 : 0.0;
        if (permille is { } p) json["requestedProductionTrafficWeight"] = p / 10.0;
        return json;
    }

    private JsonObject Describe(ServiceRecord service, Deployment d)
    {
        var lc = d.Lifecycle;
        var shifting = lc is { Stage: not null };
        var status = Status(service, d);
        var json = new JsonObject
        {
            ["serviceDeploymentArn"] = DeploymentArn(service, d),
            ["serviceArn"] = arns.Service(service.Cluster, service.Name),
            ["clusterArn"] = arns.Cluster(service.Cluster),
            ["createdAt"] = AwsJson.Timestamp(d.CreatedAt),
            ["startedAt"] = AwsJson.Timestamp(lc?.StartedAt ?? d.CreatedAt),
        };
        if (FinishedAt(service, d) is { } finished) json["finishedAt"] = AwsJson.Timestamp(finished);
        json["updatedAt"] = AwsJson.Timestamp(d.UpdatedAt);

        var sources = shifting
            ? All(service).Where(s => s.Id == lc!.SourceDeploymentId)
            : service.Deployments.Where(s => s.Id != d.Id && s.CreatedAt < d.CreatedAt && s.Status != DeploymentStatus.Inactive);
        json["sourceServiceRevisions"] = sources.Select(s => (JsonNode?)Revision(service, s,
            shifting ? TrafficState.All - lc!.ProductionPermille : null, shifting ? !lc!.TestOnGreen : null)).ToJsonArray();
        json["targetServiceRevision"] = Revision(service, d, shifting ? lc!.ProductionPermille : null, shifting ? lc!.TestOnGreen : null);
        json["status"] = status;
        if (StatusReason(d) is { } reason) json["statusReason"] = reason;
        json["lifecycleStage"] = shifting ? LifecycleStages.Shown(lc!.Stage!)
            : status == ServiceDeploymentStatus.InProgress ? LifecycleStages.ScaleUp : LifecycleStages.CleanUp;
        if (lc is { Hooks.Count: > 0 })
        {
            json["lifecycleHookDetails"] = lc.Hooks.Select(h =>
            {
                var detail = new JsonObject { ["hookId"] = h.HookId, ["targetType"] = HookStatus.Pause, ["status"] = h.Status };
                if (h.ExpiresAt is { } expires) detail["expiresAt"] = AwsJson.Timestamp(expires);
                if (h.TimeoutAction is { } action) detail["timeoutAction"] = action;
                return (JsonNode?)detail;
            }).ToJsonArray();
        }
        var configuration = new JsonObject
        {
            ["deploymentCircuitBreaker"] = new JsonObject
            {
                ["enable"] = service.DeploymentConfiguration.CircuitBreakerEnable,
                ["rollback"] = service.DeploymentConfiguration.CircuitBreakerRollback,
            },
            ["maximumPercent"] = service.DeploymentConfiguration.MaximumPercent,
            ["minimumHealthyPercent"] = service.DeploymentConfiguration.MinimumHealthyPercent,
        };
        if (service.Passthrough["deploymentConfiguration"] is JsonObject extra)
        {
            foreach (var (member, value) in extra) configuration[member] = value?.DeepClone();
        }
        json["deploymentConfiguration"] = configuration;
        if (lc?.RollbackStartedAt is { } rollbackAt)
        {
            var rollback = new JsonObject { ["reason"] = lc.RollbackReason, ["startedAt"] = AwsJson.Timestamp(rollbackAt) };
            if (All(service).FirstOrDefault(s => s.Id == lc.SourceDeploymentId) is { } source) rollback["serviceRevisionArn"] = RevisionArn(service, source);
            json["rollback"] = rollback;
        }
        json["deploymentCircuitBreaker"] = new JsonObject
        {
            ["status"] = !service.DeploymentConfiguration.CircuitBreakerEnable ? "DISABLED"
                : lc?.RollbackReason == BlueGreen.ReasonCircuitBreaker || d.RolloutState == DeploymentRolloutState.Failed ? "TRIGGERED"
                : status is ServiceDeploymentStatus.InProgress ? "MONITORING" : "MONITORING_COMPLETE",
            ["failureCount"] = d.FailedTasks,
            ["threshold"] = Rollout.FailureThreshold(service.DesiredCount),
        };
        return json;
    }
}
