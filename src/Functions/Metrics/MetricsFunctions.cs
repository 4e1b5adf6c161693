using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Api;
using Serverless.Core.Metrics;

namespace Serverless.Functions.Metrics;

/// <summary>
/// CloudWatch at the one endpoint in Smithy RPC v2 CBOR (<c>POST /service/GraniteServiceVersion20100801/operation/&lt;Op&gt;</c>,
/// as botocore 1.43 sends it; AWS JSON 1.0 clients use the root URL), workers' metrics (queue <c>metrics</c>)
/// and their retention.
/// </summary>
public sealed class MetricsFunctions(RpcV2CborEndpoint cbor, MetricsIngest ingest, MetricRetention retention)
{
    [Function("RpcV2Cbor")]
    public Task<IActionResult> Cbor(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "service/{service}/operation/{operation}")] HttpRequest request,
        CancellationToken cancellationToken)
        => cbor.HandleAsync(request, cancellationToken);

    [Function("Metrics")]
    public Task Ingest([QueueTrigger(MetricsReport.Queue)] string message, CancellationToken cancellationToken)
        => ingest.ApplyAsync(message, cancellationToken);

    /// <summary>Every hour: delete datapoints older than the retention (15 days).</summary>
    [Function("MetricRetention")]
    public Task Retain([TimerTrigger("0 17 * * * *")] TimerInfo timer, CancellationToken cancellationToken)
        => retention.SweepAsync(cancellationToken);
}
