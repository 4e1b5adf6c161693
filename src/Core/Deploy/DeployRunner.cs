using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Services;
using Serverless.Core.Tags;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Deploy;

/// <summary>
/// Works a claimed delivery through to its answer: for each service, a new revision of its current
/// task definition with only the image changed (RegisterTaskDefinition), then UpdateService to it,
/// so the service's own deployment configuration and circuit breaker apply exactly as for a CLI
/// deploy. Each step is recorded in the delivery row before the next, so an attempt that dies is
/// finished by the next one (a retried delivery, or <see cref="DeploySweep"/>), never repeated.
/// </summary>
public sealed class DeployRunner(
    ActionRegistry actions,
    ServiceStore services,
    TaskDefinitionStore definitions,
    DeliveryStore deliveries,
    Arns arns,
    TimeProvider time,
    ILogger<DeployRunner> logger)
{
    /// <summary>A claim not refreshed for this long belongs to an attempt that died; another may take it over.</summary>
    public static readonly TimeSpan ClaimTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a service's deploy lock lasts (a holder takes well under a second; this bounds a crashed one).</summary>
    private static readonly TimeSpan LockDuration = TimeSpan.FromSeconds(30);

    /// <summary>How long a delivery waits for the deliveries ahead of it on the same service.</summary>
    private static readonly TimeSpan LockWait = TimeSpan.FromSeconds(60);

    /// <summary>The caller recorded as <c>registeredBy</c> of the revisions the webhook registers.</summary>
    public const string Caller = "deploy-webhook";

    /// <summary>
    /// Runs the unfinished parts of <paramref name="delivery"/> (which this caller claimed: its ETag is
    /// current) and records the answer. A <see cref="ConcurrentUpdateException"/> means another attempt
    /// took the delivery over, or a service stayed locked: the delivery stays unanswered for the next attempt.
    /// </summary>
    public async Task<Delivery> RunAsync(Delivery delivery, CancellationToken cancellationToken)
    {
        for (var i = 0; i < delivery.Targets.Count; i++)
        {
            if (delivery.Targets[i].IsFinished) continue;
            var index = i;
            delivery = await WithServiceLockAsync(delivery.Targets[i], delivery.Id,
                () => DeployAsync(delivery, index, cancellationToken), cancellationToken);
        }
        var (status, answer) = Answer(delivery);
        delivery = await deliveries.SaveAsync(delivery with { AnswerStatus = status, Answer = answer.ToJsonString(), ClaimedAt = Now() }, cancellationToken);
        logger.LogInformation("Deploy delivery {DeliveryId} answered {Status}", delivery.Id, status);
        return delivery;
    }

    /// <summary>The recorded answer's status and body, for an answered delivery.</summary>
    public static (int Status, JsonObject Body) Recorded(Delivery delivery)
        => (delivery.AnswerStatus!.Value, JsonNode.Parse(delivery.Answer!)!.AsObject());

    private async Task<Delivery> DeployAsync(Delivery delivery, int index, CancellationToken cancellationToken)
    {
        var target = delivery.Targets[index];
        async Task<Delivery> RecordAsync(PlannedDeployment next)
        {
            target = next;
            delivery = await deliveries.SaveAsync(delivery with { Targets = [.. delivery.Targets.Select((t, i) => i == index ? next : t)], ClaimedAt = Now() }, cancellationToken);
            return delivery;
        }

        try
        {
            var service = await services.FindAsync(target.Cluster, target.Service, cancellationToken);
            if (service is not { Status: ServiceRecord.Active })
                return await RecordAsync(target with { ErrorStatus = 404, ErrorMessage = $"Service {target.Service} not found in cluster {target.Cluster}." });

            var registeredHere = false;
            if (target.TaskDefinitionArn is null)
            {
                // The current revision and its family's latest ACTIVE one (the registration's intent below) in one
                // round trip instead of two: the service's definition is an ARN, so the family is known before reading.
                var family = arns.ResourcePart(service.TaskDefinitionArn, "task-definition") is { } name ? TaskDefinitionKey.TryParse(name)?.Family : null;
                var currentRead = definitions.FindByReferenceAsync(service.TaskDefinitionArn, cancellationToken);
                var latestRead = family is null ? Task.FromResult<TaskDefinitionRecord?>(null) : definitions.FindLatestActiveAsync(family, cancellationToken);
                await Task.WhenAll(currentRead, latestRead);
                var current = currentRead.Result;
                if (current is null)
                    return await RecordAsync(target with { ErrorStatus = 409, ErrorMessage = $"The service's task definition {service.TaskDefinitionArn} no longer exists." });
                var containers = ImageReference.Replace((JsonArray)current.TaskDefinition["containerDefinitions"]!, target.Image, target.Container, out var changed, out var problem);
                if (containers is null) return await RecordAsync(target with { ErrorStatus = 400, ErrorMessage = problem });
                if (!changed && !target.Force && service.Primary is { } primary)
                {
                    await LinkAsync(delivery, target, primary.Id, service.TaskDefinitionArn, cancellationToken);
                    return await RecordAsync(target with { Unchanged = true, TaskDefinitionArn = service.TaskDefinitionArn, DeploymentId = primary.Id });
                }

                var arn = target.RegisteringAfter is { } after ? await EarlierRegistrationAsync(current.Family, after, containers, cancellationToken) : null;
                if (arn is not null)
                {
                    logger.LogInformation("Deploy delivery {DeliveryId} adopts {TaskDefinitionArn}, registered by an attempt that stopped", delivery.Id, arn);
                }
                else
                {
                    // The intent first, so an attempt that dies right after registering is not followed by a second registration.
                    var latest = family == current.Family ? latestRead.Result : await definitions.FindLatestActiveAsync(current.Family, cancellationToken);
                    await RecordAsync(target with { RegisteringAfter = latest?.Revision ?? 0 });

                    // Only the image changes: every other member, and the revision's tags, are registered as they were.
                    var register = new JsonObject();
                    foreach (var member in TaskDefinitionDefaults.RequestMembers)
                    {
                        if (current.TaskDefinition[member] is { } value) register[member] = value.DeepClone();
                    }
                    register["containerDefinitions"] = containers;
                    if (current.Tags.Count > 0) register["tags"] = Tag.ToJson(current.Tags);
                    var registered = await InvokeAsync("RegisterTaskDefinition", register, cancellationToken);
                    arn = registered["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
                    logger.LogInformation("Deploy delivery {DeliveryId} registered {TaskDefinitionArn} with image {Image}", delivery.Id, arn, target.Image);
                    registeredHere = true;
                }
                await RecordAsync(target with { TaskDefinitionArn = arn });
            }

            // Resumed after UpdateService already ran: the service has a deployment of the revision; do not make another.
            // A revision this attempt has just registered can have none (its ARN was not known before), so that read is skipped.
            var fresh = registeredHere ? null : await services.FindAsync(target.Cluster, target.Service, cancellationToken);
            var deploymentId = fresh?.Deployments.FirstOrDefault(d => d.TaskDefinitionArn == target.TaskDefinitionArn && d.Status == DeploymentStatus.Primary)?.Id;
            if (deploymentId is null)
            {
                var updated = await InvokeAsync("UpdateService", new JsonObject
                {
                    ["cluster"] = target.Cluster,
                    ["service"] = target.Service,
                    ["taskDefinition"] = target.TaskDefinitionArn,
                }, cancellationToken);
                deploymentId = updated["service"]!["deployments"]!.AsArray()
                    .First(d => d!["status"]!.GetValue<string>() == DeploymentStatus.Primary)!["id"]!.GetValue<string>();
            }
            await LinkAsync(delivery, target, deploymentId, target.TaskDefinitionArn!, cancellationToken);
            logger.LogInformation("Deploy delivery {DeliveryId} started deployment {DeploymentId} of {ServiceArn} on {TaskDefinitionArn}",
                delivery.Id, deploymentId, arns.Service(target.Cluster, target.Service), target.TaskDefinitionArn);
            return await RecordAsync(target with { DeploymentId = deploymentId });
        }
        catch (EcsException e)
        {
            // The action refused (the service was deleted meanwhile, its definition is invalid, ...): that is this part's answer.
            var status = e is ClusterNotFoundException or ServiceNotFoundException or ServiceNotActiveException ? 404 : e.HttpStatus;
            logger.LogWarning("Deploy delivery {DeliveryId} for {ServiceArn} refused: {ErrorType} {Message}",
                delivery.Id, arns.Service(target.Cluster, target.Service), e.ErrorType, e.Message);
            return await RecordAsync(target with { ErrorStatus = status, ErrorMessage = e.Message });
        }
    }

    /// <summary>
    /// The revision an attempt that stopped registered for this delivery: the family's latest ACTIVE
    /// revision, when it is newer than the one recorded before registering, was registered by this
    /// webhook and has exactly the containers this delivery registers. Otherwise null (nothing was
    /// registered, or someone registered since and the revision cannot be told apart): register then.
    /// </summary>
    private async Task<string?> EarlierRegistrationAsync(string family, int after, JsonArray containers, CancellationToken cancellationToken)
    {
        var latest = await definitions.FindLatestActiveAsync(family, cancellationToken);
        return latest is not null && latest.Revision > after
            && latest.TaskDefinition["registeredBy"]?.GetValue<string>() == arns.Caller(Caller)
            && JsonNode.DeepEquals(latest.TaskDefinition["containerDefinitions"], containers)
            ? latest.Arn
            : null;
    }

    private Task LinkAsync(Delivery delivery, PlannedDeployment target, string deploymentId, string taskDefinitionArn, CancellationToken cancellationToken)
        => deliveries.SaveStatusLinkAsync(target.StatusToken, new DeploymentStatusLink(target.Cluster, target.Service, deploymentId, taskDefinitionArn), delivery.ReceivedAt, cancellationToken);

    private async Task<JsonObject> InvokeAsync(string action, JsonObject request, CancellationToken cancellationToken)
    {
        if (!actions.TryGet($"{ActionRegistry.EcsTargetPrefix}.{action}", out var handler))
            throw new InvalidOperationException($"{action} is not registered.");
        return await handler(request, new RequestContext(Caller), cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="work"/> holding the service's deploy lock, so deliveries for one service are
    /// applied one after another: each bases its revision on the one the previous left, none is lost.
    /// </summary>
    private async Task<Delivery> WithServiceLockAsync(PlannedDeployment target, string holder, Func<Task<Delivery>> work, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + LockWait;
        while (true)
        {
            var now = time.GetUtcNow();
            if (await deliveries.TryLockAsync(target.Cluster, target.Service, holder, now, now + LockDuration, cancellationToken) is { } etag)
            {
                try
                {
                    return await work();
                }
                finally
                {
                    await deliveries.UnlockAsync(target.Cluster, target.Service, etag, CancellationToken.None);
                }
            }
            if (now > deadline) throw new ConcurrentUpdateException(arns.Service(target.Cluster, target.Service));
            await Task.Delay(TimeSpan.FromMilliseconds(50 + Random.Shared.Next(100)), time, cancellationToken);
        }
    }

    private (int Status, JsonObject Body) Answer(Delivery delivery)
    {
        if (delivery.Single)
        {
            var target = delivery.Targets[0];
            return target.ErrorStatus is { } status ? (status, Error(target.ErrorMessage!)) : (target.Unchanged ? 200 : 202, Started(delivery, target));
        }
        var list = new JsonArray();
        foreach (var target in delivery.Targets)
        {
            list.Add(target.ErrorStatus is { } status
                ? new JsonObject { ["serviceArn"] = arns.Service(target.Cluster, target.Service), ["status"] = status, ["message"] = target.ErrorMessage }
                : Started(delivery, target));
        }
        return (delivery.Targets.Any(t => t.ErrorStatus is null && !t.Unchanged) ? 202 : 200, new JsonObject { ["deployments"] = list });
    }

    private JsonObject Started(Delivery delivery, PlannedDeployment target)
    {
        var answer = new JsonObject
        {
            ["deploymentId"] = target.DeploymentId,
            ["serviceArn"] = arns.Service(target.Cluster, target.Service),
            ["taskDefinitionArn"] = target.TaskDefinitionArn,
            ["statusUrl"] = $"{delivery.StatusBase}/deploy/status/{target.StatusToken}",
        };
        if (target.Unchanged) answer["message"] = "The service already runs this image; nothing was deployed (send \"force\": true to deploy it again).";
        return answer;
    }

    public static JsonObject Error(string message) => new() { ["message"] = message };

    private DateTimeOffset Now() => time.GetUtcNow();
}
