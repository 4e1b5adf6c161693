using System.Buffers;
using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api.Auth;
using Serverless.Core.Api.Query;

namespace Serverless.Core.Api;

/// <summary>
/// The AWS JSON 1.1 endpoint (ECS, Application Auto Scaling and every other JSON service whose
/// <see cref="ServiceModel"/> is registered, at one URL): size limit, SigV4,
/// <c>X-Amz-Target</c> dispatch, model validation, and the one place where exceptions become
/// AWS errors. Trigger-agnostic: the Functions HTTP trigger and the standalone host both hand it
/// an ASP.NET Core <see cref="HttpRequest"/>.
/// </summary>
public sealed class ApiEndpoint(ActionRegistry actions, IEnumerable<ServiceModel> models, SigV4Verifier verifier, EcsOptions options, ILogger<ApiEndpoint> logger, QueryEndpoint? query = null)
{
    private readonly ServiceModel[] _models = [.. models];

    public async Task<IActionResult> HandleAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        // The query protocol (ELBv2) answers in XML, errors included; it shares the body limit and SigV4.
        if (query is not null && QueryEndpoint.Accepts(request)) return await query.HandleAsync(request, ReadSignedAsync, cancellationToken);

        var started = Stopwatch.GetTimestamp();
        var requestId = Guid.NewGuid().ToString();
        var target = request.Headers["X-Amz-Target"].ToString();
        var action = target.Contains('.') ? target[(target.IndexOf('.') + 1)..] : target;
        using var activity = Telemetry.Telemetry.Source.StartActivity(action.Length > 0 ? action : "(none)", ActivityKind.Server);
        activity?.SetTag("rpc.system", "aws-api").SetTag("rpc.service", ModelOf(target)?.TargetPrefix).SetTag("rpc.method", action).SetTag("aws.request_id", requestId);
        AwsJsonResult result;
        try
        {
            var (body, context) = await ReadSignedAsync(request, ModelOf(target)?.MaxRequestBodyBytes ?? options.MaxRequestBodyBytes, cancellationToken);
            result = await DispatchAsync(target, body, context, requestId, cancellationToken);
        }
        catch (EcsException e)
        {
            result = AwsJsonResult.Error(e.HttpStatus, e.ErrorType, e.Message, requestId);
        }
        catch (Azure.RequestFailedException e) when (e.Status is 400 or 413 && e.ErrorCode is { } code && StorageSizeErrors.Contains(code))
        {
            // What the request asked to store is more than Azure stores (a value over 64 KiB, a key over
            // 1 KiB, ...): the client's input, refused as input. Actions bound what they know ECS bounds;
            // this catches the rest, so no input can turn into a 500.
            logger.LogWarning("{Action} asked to store more than storage takes: {Code} {RequestId}", action, e.ErrorCode, requestId);
            result = AwsJsonResult.Error(400, "InvalidParameterException", "The request contains a value that is too large.", requestId);
        }
        catch (ConcurrentUpdateException e)
        {
            // Retries inside the action were exhausted; a 500 makes SDKs retry the whole call.
            logger.LogWarning("{Action} lost a concurrent update race: {Message} {RequestId}", action, e.Message, requestId);
            result = AwsJsonResult.Error(500, "ServerException", "The request could not be completed because of a concurrent update. Retry the request.", requestId);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            logger.LogError(e, "{Action} failed {RequestId}", action, requestId);
            result = AwsJsonResult.Error(500, "ServerException", "Internal server error.", requestId);
        }

        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        logger.LogInformation("{Action} {Status} {ElapsedMs:0.0} ms {RequestId}",
            action.Length > 0 ? action : "(none)", result.StatusCode, elapsed, requestId);
        activity?.SetTag("http.response.status_code", result.StatusCode);
        if (result.StatusCode >= 500) activity?.SetStatus(ActivityStatusCode.Error);
        var tags = new TagList { { "rpc.service", ModelOf(target)?.TargetPrefix ?? "" }, { "rpc.method", action }, { "http.response.status_code", result.StatusCode } };
        Telemetry.Telemetry.Requests.Add(1, tags);
        Telemetry.Telemetry.RequestDuration.Record(elapsed, tags);
        return result;
    }

    private Task<(ReadOnlyMemory<byte> Body, RequestContext Context)> ReadSignedAsync(HttpRequest request, CancellationToken cancellationToken)
        => ReadSignedAsync(request, options.MaxRequestBodyBytes, cancellationToken);

    private async Task<(ReadOnlyMemory<byte> Body, RequestContext Context)> ReadSignedAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        var body = await ReadBodyAsync(request, limit, cancellationToken);
        var context = new RequestContext(verifier.Verify(ToSignedRequest(request, body)));
        return (Gunzipped(request, body, limit), context);
    }

    /// <summary>
    /// The body botocore compressed (<c>requestcompression</c> in the model: PutMetricData bodies of
    /// 10 KiB or more travel gzipped, signed as sent), inflated to at most <paramref name="limit"/> bytes.
    /// </summary>
    internal static ReadOnlyMemory<byte> Gunzipped(HttpRequest request, ReadOnlyMemory<byte> raw, int limit)
    {
        if (!string.Equals(request.Headers.ContentEncoding, "gzip", StringComparison.OrdinalIgnoreCase)) return raw;
        try
        {
            using var gzip = new GZipStream(new MemoryStream(raw.ToArray()), CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[81920];
            int read;
            while ((read = gzip.Read(buffer)) > 0)
            {
                output.Write(buffer, 0, read);
                if (output.Length > limit) throw new RequestEntityTooLargeException($"Request body exceeds the limit of {limit} bytes.");
            }
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new SerializationException($"Malformed gzip request body: {e.Message}");
        }
    }

    private async Task<AwsJsonResult> DispatchAsync(string target, ReadOnlyMemory<byte> body, RequestContext context, string requestId, CancellationToken cancellationToken)
    {
        var dot = target.IndexOf('.');
        var model = ModelOf(target);
        var operation = dot > 0 ? target[(dot + 1)..] : "";
        if (model is null || !model.HasOperation(operation) || !actions.TryGet(target, out var handler))
            throw new UnknownOperationException(target.Length == 0 ? "Missing X-Amz-Target header." : $"Unknown operation {target}.");

        var request = ParseBody(body);
        var input = model.InputOf(operation);
        if (input is not null) request = RequestValidator.Validate(model, input, request);

        var response = await handler(request, context, cancellationToken);
        return AwsJsonResult.Ok(response, requestId);
    }

    private ServiceModel? ModelOf(string target)
    {
        var dot = target.IndexOf('.');
        return dot > 0 ? Array.Find(_models, m => target.AsSpan(0, dot).SequenceEqual(m.TargetPrefix)) : null;
    }

    private static JsonObject ParseBody(ReadOnlyMemory<byte> body)
    {
        // botocore sends "{}" for an empty input; an empty body is read the same way.
        if (body.Length == 0) return [];
        JsonNode? node;
        try
        {
            CheckText(body.Span);
            node = JsonNode.Parse(body.Span, documentOptions: new JsonDocumentOptions { MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            throw new SerializationException($"Malformed JSON request body: {e.Message.Split(" Path:")[0]}");
        }
        return node as JsonObject ?? throw new SerializationException("The request body must be a JSON object.");
    }

    private const int MaxDepth = 64;

    // Table and Queue service error codes for "too large" (Azure answers a key over 1 KiB with
    // OutOfRangeInput), not for any fault of ours.
    internal static readonly HashSet<string> StorageSizeErrors = new(StringComparer.Ordinal)
    {
        "PropertyValueTooLarge", "EntityTooLarge", "KeyValueTooLarge", "OutOfRangeInput", "TooManyProperties", "RequestBodyTooLarge", "MessageTooLarge",
    };

    // JSON may escape half of a surrogate pair ("\ud800"), which is no text at all: it cannot be read
    // as a string, stored or echoed. Every name and string is decoded once here, so a handler (or the
    // storage client) never meets one.
    private static void CheckText(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = MaxDepth });
        while (reader.Read())
        {
            if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName) || !reader.ValueIsEscaped) continue;
            try
            {
                reader.GetString();
            }
            catch (InvalidOperationException)
            {
                throw new SerializationException($"Invalid UTF-16 escape sequence in a JSON string (at position {reader.TokenStartIndex}).");
            }
        }
    }

    /// <summary>The body, refused as <see cref="RequestEntityTooLargeException"/> past <paramref name="limit"/> bytes without reading further.</summary>
    public static async Task<ReadOnlyMemory<byte>> ReadBodyAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit) throw TooLarge(limit);
        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(request.ContentLength ?? 4096, limit) + 1);
        while (true)
        {
            var read = await request.Body.ReadAsync(buffer.GetMemory(4096), cancellationToken);
            if (read == 0) return buffer.WrittenMemory;
            buffer.Advance(read);
            if (buffer.WrittenCount > limit) throw TooLarge(limit);
        }
    }

    private static RequestEntityTooLargeException TooLarge(int limit)
        => new($"Request body exceeds the limit of {limit} bytes.");

    internal static SignedRequest ToSignedRequest(HttpRequest request, ReadOnlyMemory<byte> body)
    {
        var headers = new List<KeyValuePair<string, string>>(request.Headers.Count);
        foreach (var (name, values) in request.Headers)
        {
            foreach (var value in values) headers.Add(new(name, value ?? ""));
        }
        // The raw target is what the client signed; Path is already decoded.
        var raw = request.HttpContext.Features.Get<IHttpRequestFeature>()?.RawTarget;
        var path = string.IsNullOrEmpty(raw) ? request.PathBase.Add(request.Path).ToString() : raw.Split('?')[0];
        var query = request.QueryString.HasValue ? request.QueryString.Value![1..] : "";
        return new SignedRequest(request.Method, path.Length == 0 ? "/" : path, query, headers, body);
    }
}

/// <summary>A serialized AWS JSON 1.1 response.</summary>
public sealed class AwsJsonResult : IActionResult
{
    private readonly byte[] _body;
    private readonly string _requestId;

    private AwsJsonResult(int statusCode, byte[] body, string requestId)
    {
        StatusCode = statusCode;
        _body = body;
        _requestId = requestId;
    }

    public int StatusCode { get; }

    public static AwsJsonResult Ok(JsonObject response, string requestId)
        => new(200, JsonSerializer.SerializeToUtf8Bytes(response, AwsJson.Options), requestId);

    public static AwsJsonResult Error(int statusCode, string type, string message, string requestId)
        => new(statusCode, JsonSerializer.SerializeToUtf8Bytes(new JsonObject { ["__type"] = type, ["message"] = message }, AwsJson.Options), requestId);

    public Task ExecuteResultAsync(ActionContext context) => WriteAsync(context.HttpContext.Response);

    public Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = StatusCode;
        response.ContentType = "application/x-amz-json-1.1";
        response.ContentLength = _body.Length;
        response.Headers["x-amzn-RequestId"] = _requestId;
        return response.Body.WriteAsync(_body).AsTask();
    }
}
