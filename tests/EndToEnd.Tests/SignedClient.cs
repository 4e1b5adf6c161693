using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests;

/// <summary>
/// An AWS JSON 1.1 client in the test process, signed with SigV4 as the SDKs sign: for polling and
/// for bursts, where starting an <c>aws</c> process per call would cost more than the call itself.
/// The CLI stays the client wherever the CLI is what a test is about. Written from the SigV4
/// specification, not from the server's verifier, so a bug in one is not hidden by the other.
/// </summary>
public sealed class SignedClient(string endpoint, string accessKeyId, string secretAccessKey, string region) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>Calls an ECS action; a non-2xx answer is returned, not thrown.</summary>
    public Task<SignedResponse> EcsAsync(string action, JsonObject request, CancellationToken cancellationToken = default)
        => CallAsync("ecs", $"AmazonEC2ContainerServiceV20141113.{action}", request, cancellationToken);

    /// <summary>Calls an ECS action and returns its answer, throwing with the error when it failed.</summary>
    public async Task<JsonNode> EcsOkAsync(string action, JsonObject request, CancellationToken cancellationToken = default)
    {
        var response = await EcsAsync(action, request, cancellationToken);
        return response.Status == HttpStatusCode.OK
            ? response.Body
            : throw new InvalidOperationException($"{action} answered {(int)response.Status}: {response.Body.ToJsonString()}");
    }

    public async Task<SignedResponse> CallAsync(string service, string target, JsonObject request, CancellationToken cancellationToken = default)
    {
        var body = Encoding.UTF8.GetBytes(request.ToJsonString());
        var uri = new Uri(endpoint.TrimEnd('/') + "/");
        var now = DateTime.UtcNow;
        var amzDate = now.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var day = amzDate[..8];
        var host = uri.IsDefaultPort ? uri.Host : $"{uri.Host}:{uri.Port}";
        const string contentType = "application/x-amz-json-1.1";
        var payloadHash = Hex(SHA256.HashData(body));

        // Headers in the canonical request are lower-case and sorted by name.
        var headers = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["content-type"] = contentType,
            ["host"] = host,
            ["x-amz-date"] = amzDate,
            ["x-amz-target"] = target,
        };
        var signedHeaders = string.Join(';', headers.Keys);
        var canonicalRequest = $"POST\n/\n\n{string.Concat(headers.Select(h => $"{h.Key}:{h.Value}\n"))}\n{signedHeaders}\n{payloadHash}";
        var scope = $"{day}/{region}/{service}/aws4_request";
        var stringToSign = $"AWS4-HMAC-SHA256\n{amzDate}\n{scope}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}";
        var key = Encoding.UTF8.GetBytes("AWS4" + secretAccessKey);
        foreach (var part in new[] { day, region, service, "aws4_request" }) key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(part));
        var signature = Hex(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));

        using var message = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new ByteArrayContent(body) };
        message.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        message.Headers.TryAddWithoutValidation("X-Amz-Date", amzDate);
        message.Headers.TryAddWithoutValidation("X-Amz-Target", target);
        message.Headers.TryAddWithoutValidation("Authorization",
            $"AWS4-HMAC-SHA256 Credential={accessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}");
        using var response = await _http.SendAsync(message, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return new SignedResponse(response.StatusCode, text.Length == 0 ? new JsonObject() : JsonNode.Parse(text)!);
    }

    public void Dispose() => _http.Dispose();

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);
}

public sealed record SignedResponse(HttpStatusCode Status, JsonNode Body)
{
    /// <summary>The AWS error type (<c>__type</c>) of a failed call, without a namespace prefix.</summary>
    public string? ErrorType => Status == HttpStatusCode.OK ? null : Body["__type"]?.GetValue<string>().Split('#')[^1];
}
