using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Deploy;
using Serverless.Core.Tests.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Deploy;

/// <summary>
/// A control plane in-process (<see cref="ApiHarness"/>) with webhook secrets, and deliveries sent to
/// its <see cref="DeployWebhook"/> as the HTTP trigger hands them over. Several harnesses on one
/// prefix are several control planes on one storage account.
/// </summary>
public sealed class DeployHarness : IDisposable
{
    public const string OldSecret = "old-webhook-secret";
    public const string NewSecret = "new-webhook-secret";

    public DeployHarness(AzuriteFixture azurite, string prefix)
    {
        Api = new ApiHarness(azurite, prefix, services => services.AddSingleton(new DeployOptions { WebhookSecrets = $"{OldSecret};{NewSecret}" }));
    }

    public ApiHarness Api { get; }

    public sealed record Reply(int Status, JsonObject Body)
    {
        public string? Message => Body["message"]?.GetValue<string>();
        public string Member(string name) => Body[name]!.GetValue<string>();
    }

    public Task<Reply> DeliverAsync(string body, string? deliveryId, CancellationToken cancellationToken, string? secret = NewSecret, string? gitHubEvent = null, string? query = null)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var headers = new List<(string, string)>();
        if (secret is not null) headers.Add((WebhookSignature.Header, WebhookSignature.Sign(bytes, secret)));
        if (deliveryId is not null) headers.Add((DeployWebhook.DeliveryHeader, deliveryId));
        if (gitHubEvent is not null) headers.Add((DeployWebhook.EventHeader, gitHubEvent));
        return SendAsync(bytes, headers, cancellationToken, query: query);
    }

    public async Task<Reply> SendAsync(byte[] body, IEnumerable<(string Name, string Value)> headers, CancellationToken cancellationToken, long? contentLength = null, string? query = null, Stream? stream = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.Scheme = "http";
        context.Request.Host = new HostString("deploy.harness.test");
        context.Request.Path = "/deploy";
        if (query is not null) context.Request.QueryString = new QueryString(query);
        foreach (var (name, value) in headers) context.Request.Headers.Append(name, value);
        context.Request.Body = stream ?? new MemoryStream(body);
        context.Request.ContentLength = contentLength is < 0 ? null : contentLength ?? body.Length;
        var answer = (DeployAnswer)await Api.Get<DeployWebhook>().HandleAsync(context.Request, cancellationToken);
        return new Reply(answer.StatusCode, JsonNode.Parse(answer.Body.ToJsonString())!.AsObject());
    }

    /// <summary>GET of a status URL handed out by a delivery.</summary>
    public async Task<Reply> StatusAsync(string statusUrl, CancellationToken cancellationToken)
    {
        var uri = new Uri(statusUrl);
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = uri.AbsolutePath;
        var answer = (DeployAnswer)await Api.Get<DeploymentStatusReader>().HandleAsync(context.Request, cancellationToken);
        return new Reply(answer.StatusCode, answer.Body);
    }

    public void Dispose() => Api.Dispose();
}
