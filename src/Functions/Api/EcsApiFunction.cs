using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Api;

namespace Serverless.Functions.Api;

/// <summary>
/// The ECS (and Application Auto Scaling) endpoint: AWS clients POST signed AWS JSON 1.1 to the
/// root URL (host.json sets an empty route prefix), exactly as they would to ecs.&lt;region&gt;.amazonaws.com.
/// </summary>
public sealed class EcsApiFunction(ApiEndpoint api)
{
    [Function("EcsApi")]
    public Task<IActionResult> Run(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "")] HttpRequest request,
        CancellationToken cancellationToken)
        => api.HandleAsync(request, cancellationToken);
}
