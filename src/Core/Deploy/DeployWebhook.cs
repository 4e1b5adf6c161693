using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.Services;

namespace Serverless.Core.Deploy;

/// <summary>
/// <c>POST /deploy</c>: a CI delivery signed with GitHub's <c>X-Hub-Signature-256</c>, de-duplicated by
/// <c>X-GitHub-Delivery</c>. The order of checks is the contract: size (413, before reading it all),
/// signature (401, the same answer whatever was wrong), payload (400), cluster and service (404), then
/// the delivery is claimed with an insert, so a repeat (sequential, concurrent, or at another control
/// plane) answers as the first did and registers nothing.
/// </summary>
public sealed class DeployWebhook(
    DeployOptions options,
    DeliveryStore deliveries,
    DeployRunner runner,
    ClusterStore clusters,
    ServiceStore services,
    TimeProvider time,
    ILogger<DeployWebhook> logger)
{
    public const string DeliveryHeader = "X-GitHub-Delivery";
    public const string EventHeader = "X-GitHub-Event";

    /// <summary>The tag a service opts in with: its value is the image repository whose published packages it deploys.</summary>
    public const string RepositoryTag = "deploy:repository";

    /// <summary>The largest body taken (GitHub's own payloads are capped at 25 MB, its package events are a few KiB).</summary>
    public const int MaxBodyBytes = 1024 * 1024;

    /// <summary>A package event deploys to at most this many services, so one delivery row stays small.</summary>
    public const int MaxServicesPerDelivery = 100;

    private const int MaxDeliveryIdLength = 200;

    /// <summary>How long a repeat waits for the first attempt, still working, to answer.</summary>
    private static readonly TimeSpan RepeatWait = TimeSpan.FromSeconds(30);

    public async Task<IActionResult> HandleAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            var (status, body) = await DeliverAsync(request, cancellationToken);
            return new DeployAnswer(status, body);
        }
        catch (ConcurrentUpdateException e)
        {
            logger.LogWarning("Deploy delivery could not finish now: {Message}", e.Message);
            return new DeployAnswer(503, DeployRunner.Error("The delivery could not be completed now; send it again (the same X-GitHub-Delivery) to finish it."));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            // Storage down, ...: what was recorded stays recorded, and a repeat of the delivery (or the sweep) finishes it.
            logger.LogError(e, "Deploy delivery failed");
            return new DeployAnswer(500, DeployRunner.Error("Internal error; send the delivery again (the same X-GitHub-Delivery) to finish it."));
        }
    }

    private async Task<(int, JsonObject)> DeliverAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> body;
        try
        {
            body = await ApiEndpoint.ReadBodyAsync(request, MaxBodyBytes, cancellationToken);
        }
        catch (RequestEntityTooLargeException)
        {
            return (413, DeployRunner.Error($"The body is larger than {MaxBodyBytes} bytes."));
        }

        var secrets = options.Secrets;
        if (secrets.Count == 0) logger.LogWarning("A deploy delivery was refused: no webhook secret is configured (Deploy__WebhookSecrets)");
        if (!WebhookSignature.IsValid(body.Span, request.Headers[WebhookSignature.Header].ToString(), secrets))
            return (401, DeployRunner.Error("The request signature is missing or invalid."));

        DeployRequest parsed;
        try
        {
            parsed = DeployPayload.Parse(request.Headers[EventHeader].ToString(), body.Span, request.Query["cluster"].FirstOrDefault());
        }
        catch (DeployPayloadException e)
        {
            return (400, DeployRunner.Error(e.Message));
        }
        switch (parsed)
        {
            case DeployRequest.Ping:
                return (200, new JsonObject { ["message"] = "pong" });
            case DeployRequest.Ignored ignored:
                return (200, new JsonObject { ["message"] = ignored.Reason });
        }

        var deliveryId = request.Headers[DeliveryHeader].ToString();
        if (deliveryId.Length is 0 or > MaxDeliveryIdLength || deliveryId.Any(c => c is < '!' or > '~'))
            return (400, DeployRunner.Error($"The {DeliveryHeader} header must be a unique id of 1 to {MaxDeliveryIdLength} printable ASCII characters."));
        var fingerprint = DeliveryStore.Fingerprint(body.Span);

        // A delivery seen before answers as it did, whatever has changed since (the service deleted, ...). A
        // single service's plan (two row reads) is read alongside, so a first delivery waits one round trip, not
        // two; a repeat wastes those reads. A package's plan lists services: it waits for the delivery's row.
        var seenRead = deliveries.FindAsync(deliveryId, cancellationToken);
        var planRead = parsed is DeployRequest.Service ? PlanAsync(parsed, cancellationToken) : null;
        if (planRead is null) await seenRead;
        else await Task.WhenAll(seenRead, planRead);
        if (seenRead.Result is { } seen)
            return await RepeatAsync(seen, fingerprint, cancellationToken);

        var (targets, refusal) = planRead is null ? await PlanAsync(parsed, cancellationToken) : planRead.Result;
        if (refusal is not null) return refusal.Value;

        var now = time.GetUtcNow();
        var delivery = new Delivery
        {
            Id = deliveryId,
            Fingerprint = fingerprint,
            Single = parsed is DeployRequest.Service,
            StatusBase = StatusBase(request),
            ReceivedAt = now,
            ClaimedAt = now,
            Targets = targets,
        };
        if (await deliveries.TryInsertAsync(delivery, cancellationToken) is not { } claimed)
        {
            // Another attempt (here or at another control plane) claimed it between our read and insert.
            var first = await deliveries.FindAsync(deliveryId, cancellationToken) ?? throw new ConcurrentUpdateException($"delivery {deliveryId}");
            return await RepeatAsync(first, fingerprint, cancellationToken);
        }
        logger.LogInformation("Deploy delivery {DeliveryId} claimed for {Count} service(s)", deliveryId, targets.Count);
        return DeployRunner.Recorded(await runner.RunAsync(claimed, cancellationToken));
    }

    /// <summary>
    /// A delivery id seen before: its recorded answer; while the first attempt is still working, the
    /// answer once it has one; when that attempt died (its claim went stale), this one finishes it.
    /// </summary>
    private async Task<(int, JsonObject)> RepeatAsync(Delivery seen, string fingerprint, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + RepeatWait;
        while (true)
        {
            if (seen.Fingerprint != fingerprint)
                return (409, DeployRunner.Error($"{DeliveryHeader} {seen.Id} was already used for a different payload."));
            if (seen.IsAnswered) return DeployRunner.Recorded(seen);

            var now = time.GetUtcNow();
            if (now - seen.ClaimedAt > DeployRunner.ClaimTimeout)
            {
                try
                {
                    var taken = await deliveries.SaveAsync(seen with { ClaimedAt = now }, cancellationToken);
                    logger.LogInformation("Deploy delivery {DeliveryId} taken over from an attempt that stopped", seen.Id);
                    return DeployRunner.Recorded(await runner.RunAsync(taken, cancellationToken));
                }
                catch (ConcurrentUpdateException)
                {
                    // Someone else took it over (or answered it) first: read it again.
                }
            }
            else if (now > deadline)
            {
                throw new ConcurrentUpdateException($"delivery {seen.Id} is still in progress");
            }
            else
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
            }
            seen = await deliveries.FindAsync(seen.Id, cancellationToken) ?? throw new ConcurrentUpdateException($"delivery {seen.Id}");
        }
    }

    /// <summary>The services a delivery deploys to, or the refusal when it names none that exist.</summary>
    private async Task<(List<PlannedDeployment>, (int, JsonObject)?)> PlanAsync(DeployRequest parsed, CancellationToken cancellationToken)
    {
        switch (parsed)
        {
            case DeployRequest.Service { Target: var target }:
                // Both rows in one round trip; the cluster's refusal still comes first.
                var clusterRead = clusters.FindAsync(target.Cluster, cancellationToken);
                var serviceRead = services.FindAsync(target.Cluster, target.Service, cancellationToken);
                await Task.WhenAll(clusterRead, serviceRead);
                if (clusterRead.Result is not { Status: ClusterRecord.Active })
                    return ([], (404, DeployRunner.Error($"Cluster {target.Cluster} not found.")));
                if (serviceRead.Result is not { Status: ServiceRecord.Active })
                    return ([], (404, DeployRunner.Error($"Service {target.Service} not found in cluster {target.Cluster}.")));
                return ([Plan(target.Cluster, target.Service, target.Image, target.Container, target.Force)], null);

            case DeployRequest.Package package:
                if (await clusters.FindAsync(package.Cluster, cancellationToken) is not { Status: ClusterRecord.Active })
                    return ([], (404, DeployRunner.Error($"Cluster {package.Cluster} not found.")));
                var planned = new List<PlannedDeployment>();
                await foreach (var name in OptedInAsync(package.Cluster, package.Reference.CanonicalRepository, cancellationToken))
                {
                    if (planned.Count == MaxServicesPerDelivery)
                        return ([], (400, DeployRunner.Error($"More than {MaxServicesPerDelivery} services of cluster {package.Cluster} opted in to {package.Reference.Repository}.")));
                    planned.Add(Plan(package.Cluster, name, package.Image, null, false));
                }
                return (planned, null);

            default:
                throw new ArgumentOutOfRangeException(nameof(parsed));
        }
    }

    /// <summary>The cluster's ACTIVE services tagged <see cref="RepositoryTag"/> with the package's repository (any spelling of it).</summary>
    private async IAsyncEnumerable<string> OptedInAsync(string cluster, string repository, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? after = null;
        while (true)
        {
            var (page, more) = await services.ListActiveAsync(cluster, after, 100, null, null, cancellationToken);
            foreach (var listed in page)
            {
                // The listing carries names only; the tags are on the full row.
                var service = await services.FindAsync(cluster, listed.Name, cancellationToken);
                var tag = service?.Tags.FirstOrDefault(t => t.Key == RepositoryTag)?.Value;
                if (tag is not null && ImageReference.TryParse(tag, out _)?.CanonicalRepository == repository) yield return listed.Name;
            }
            if (!more || page.Count == 0) yield break;
            after = page[^1].Name;
        }
    }

    private static PlannedDeployment Plan(string cluster, string service, string image, string? container, bool force) => new()
    {
        Cluster = cluster,
        Service = service,
        Image = image,
        Container = container,
        Force = force,
        StatusToken = Base64UrlToken(),
    };

    private static string Base64UrlToken()
        => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private string StatusBase(HttpRequest request)
        => options.PublicUrl.Length > 0 ? options.PublicUrl.TrimEnd('/') : $"{request.Scheme}://{request.Host}{request.PathBase}";
}

/// <summary>A JSON answer of the webhook and its status URLs (every answer, refusals included, is JSON).</summary>
public sealed class DeployAnswer(int statusCode, JsonObject body) : IActionResult
{
    public int StatusCode { get; } = statusCode;

    public JsonObject Body { get; } = body;

    public Task ExecuteResultAsync(ActionContext context)
    {
        var response = context.HttpContext.Response;
        var bytes = JsonSerializer.SerializeToUtf8Bytes(Body, AwsJson.Options);
        response.StatusCode = StatusCode;
        response.ContentType = "application/json";
        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes).AsTask();
    }
}
