using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Deploy;

namespace Serverless.Functions.Deploy;

/// <summary>The deploy webhook, the status URLs it hands out, and the sweep that finishes interrupted deliveries.</summary>
public sealed class DeployFunctions(DeployWebhook webhook, DeploymentStatusReader status, DeploySweep sweep)
{
    [Function("Deploy")]
    public Task<IActionResult> Deploy(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "deploy")] HttpRequest request,
        CancellationToken cancellationToken)
        => webhook.HandleAsync(request, cancellationToken);

    [Function("DeployStatus")]
    public Task<IActionResult> Status(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "deploy/status/{token}")] HttpRequest request,
        CancellationToken cancellationToken)
        => status.HandleAsync(request, cancellationToken);

    /// <summary>Every 2 minutes: finish deliveries whose attempt stopped; forget those older than seven days.</summary>
    [Function("DeploySweep")]
    public Task Sweep([TimerTrigger("30 */2 * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => sweep.SweepAsync(cancellationToken);
}
