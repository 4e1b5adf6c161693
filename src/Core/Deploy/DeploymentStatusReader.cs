using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Serverless.Core.Services;

namespace Serverless.Core.Deploy;

/// <summary>
/// <c>GET /deploy/status/{token}</c>: the state of the deployment a delivery started, for a CI job to
/// wait on without AWS credentials. The token is 256 random bits handed out only in the delivery's
/// answer, so the URL itself is the credential. Read fresh from the service on every call.
/// </summary>
public sealed class DeploymentStatusReader(DeliveryStore deliveries, ServiceStore services, Arns arns)
{
    private const string RouteStart = "/deploy/status/";

    public async Task<IActionResult> HandleAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var path = request.Path.Value ?? "";
        var token = path.StartsWith(RouteStart, StringComparison.Ordinal) ? path[RouteStart.Length..] : "";
        var link = token.Length == 43 && token.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? await deliveries.FindStatusLinkAsync(token, cancellationToken)
            : null;
        if (link is null) return new DeployAnswer(404, DeployRunner.Error("No deployment has this status URL."));
        var service = await services.FindAsync(link.Cluster, link.Service, cancellationToken);
        return new DeployAnswer(200, Describe(link, service, arns.Service(link.Cluster, link.Service)));
    }

    /// <summary>
    /// The deployment's rollout state: from the service's deployments while it is listed there; after
    /// it left the list (replaced, or rolled back by the circuit breaker, which drops a failed
    /// deployment as soon as its tasks are gone) from the service events the reconciler wrote about it.
    /// </summary>
    public static JsonObject Describe(DeploymentStatusLink link, ServiceRecord? service, string serviceArn)
    {
        var answer = new JsonObject
        {
            ["deploymentId"] = link.DeploymentId,
            ["serviceArn"] = serviceArn,
            ["taskDefinitionArn"] = link.TaskDefinitionArn,
        };
        var deployment = service?.Deployments.FirstOrDefault(d => d.Id == link.DeploymentId);
        if (deployment is not null)
        {
            answer["rolloutState"] = deployment.RolloutState;
            answer["rolloutStateReason"] = deployment.RolloutStateReason;
            answer["runningCount"] = deployment.RunningCount;
            answer["pendingCount"] = deployment.PendingCount;
            answer["desiredCount"] = deployment.DesiredCount;
            answer["failedTasks"] = deployment.FailedTasks;
            return answer;
        }

        var events = service?.Events ?? [];
        var mentions = $"(deployment {link.DeploymentId}) ";
        var failed = events.FirstOrDefault(e => e.Message.Contains(mentions + "deployment failed", StringComparison.Ordinal));
        var completed = events.FirstOrDefault(e => e.Message.Contains(mentions + "deployment completed", StringComparison.Ordinal));
        var (state, reason) = (service, failed, completed) switch
        {
            (null, _, _) or ({ Status: not ServiceRecord.Active }, null, null) => (DeploymentRolloutState.Failed, "The service was deleted."),
            (_, not null, _) => (DeploymentRolloutState.Failed, RolledBack(events, failed) ?? failed.Message),
            (_, null, not null) => (DeploymentRolloutState.Completed, completed.Message),
            _ => (DeploymentStatus.Inactive, "A newer deployment of the service replaced this one before it completed."),
        };
        answer["rolloutState"] = state;
        answer["rolloutStateReason"] = reason;
        answer["runningCount"] = 0;
        answer["pendingCount"] = 0;
        answer["desiredCount"] = service?.DesiredCount ?? 0;
        return answer;
    }

    /// <summary>The failure and the rollback the circuit breaker wrote at the same time, as one reason.</summary>
    private static string? RolledBack(IReadOnlyList<ServiceEvent> events, ServiceEvent failed)
        => events.FirstOrDefault(e => e.CreatedAt == failed.CreatedAt && e.Message.Contains(") rolling back to deployment ", StringComparison.Ordinal)) is { } rollback
            ? $"{failed.Message} {rollback.Message}"
            : null;
}
