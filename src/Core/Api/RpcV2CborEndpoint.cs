using System.Diagnostics;
using System.Formats.Cbor;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api.Auth;

namespace Serverless.Core.Api;

/// <summary>
/// Smithy RPC v2 CBOR, as botocore speaks it to CloudWatch: <c>POST /service/&lt;Service&gt;/operation/&lt;Op&gt;</c>
/// with <c>smithy-protocol: rpc-v2-cbor</c> and a CBOR body; the answer is CBOR too, errors a map with
/// <c>__type</c>. The service is found by its Smithy shape name, which is the JSON target prefix of the
/// same model, so the actions, the model validation and SigV4 are those of <see cref="ApiEndpoint"/>.
/// </summary>
public sealed class RpcV2CborEndpoint(ActionRegistry actions, IEnumerable<ServiceModel> models, SigV4Verifier verifier, EcsOptions options, ILogger<RpcV2CborEndpoint> logger)
{
    private readonly ServiceModel[] _models = [.. models];

    /// <summary>Serves one request to <c>/service/&lt;Service&gt;/operation/&lt;Op&gt;</c> (the path's last four segments name them).</summary>
    public async Task<IActionResult> HandleAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var requestId = Guid.NewGuid().ToString();
        var segments = request.Path.Value?.Split('/', StringSplitOptions.RemoveEmptyEntries) ?? [];
        var (service, operation) = segments.Length >= 4 && segments[^4] == "service" && segments[^2] == "operation"
            ? (segments[^3], segments[^1])
            : ("", "");
        int status;
        byte[] body;
        string? queryError = null;
        try
        {
            var raw = await ApiEndpoint.ReadBodyAsync(request, options.MaxRequestBodyBytes, cancellationToken);
            var caller = verifier.Verify(ApiEndpoint.ToSignedRequest(request, raw));
            var model = Array.Find(_models, m => m.TargetPrefix == service);
            if (model is null || !model.HasOperation(operation) || !actions.TryGet($"{service}.{operation}", out var handler))
                throw new UnknownOperationException(operation.Length == 0 ? "The path does not name a service and operation." : $"Unknown operation {service}.{operation}.");
            var inflated = ApiEndpoint.Gunzipped(request, raw, options.MaxRequestBodyBytes);
            var input = inflated.Length == 0 ? [] : Decode(inflated);
            if (model.InputOf(operation) is { } inputShape) input = RequestValidator.Validate(model, inputShape, input);
            var output = await handler(input, new RequestContext(caller), cancellationToken);
            (status, body) = (200, Encode(model, model.OutputOf(operation), output));
        }
        catch (EcsException e)
        {
            // botocore reads the code from __type, and for awsQueryCompatible services from x-amzn-query-error.
            var (type, code) = e switch
            {
                Metrics.CloudWatchException cw => (cw.ErrorType, cw.QueryCode),
                InvalidParameterException or SerializationException => ("InvalidParameterValueException", "InvalidParameterValue"),
                _ => (e.ErrorType, e.ErrorType),
            };
            queryError = $"{code};Sender";
            (status, body) = (e.HttpStatus, Error(type, e.Message));
        }
        catch (Azure.RequestFailedException e) when (e.Status is 400 or 413 && e.ErrorCode is { } code && ApiEndpoint.StorageSizeErrors.Contains(code))
        {
            queryError = "InvalidParameterValue;Sender";
            (status, body) = (400, Error("InvalidParameterValueException", "The request contains a value that is too large."));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            logger.LogError(e, "{Service}.{Operation} failed {RequestId}", service, operation, requestId);
            queryError = "InternalServiceError;Receiver";
            (status, body) = (500, Error("InternalServiceFault", "Internal server error."));
        }

        logger.LogInformation("{Operation} {Status} {ElapsedMs:0.0} ms {RequestId}", operation.Length > 0 ? operation : "(none)", status, Stopwatch.GetElapsedTime(started).TotalMilliseconds, requestId);
        return new CborResult(status, body, requestId, queryError);
    }

    /// <summary>A serialized RPC v2 CBOR answer.</summary>
    private sealed class CborResult(int status, byte[] body, string requestId, string? queryError) : IActionResult
    {
        public Task ExecuteResultAsync(ActionContext context)
        {
            var response = context.HttpContext.Response;
            response.StatusCode = status;
            response.ContentType = "application/cbor";
            response.ContentLength = body.Length;
            response.Headers["smithy-protocol"] = "rpc-v2-cbor";
            response.Headers["x-amzn-RequestId"] = requestId;
            if (queryError is not null) response.Headers["x-amzn-query-error"] = queryError;
            return response.Body.WriteAsync(body).AsTask();
        }
    }

    private static byte[] Error(string type, string message)
    {
        var writer = new CborWriter();
        writer.WriteStartMap(2);
        writer.WriteTextString("__type");
        writer.WriteTextString(type);
        writer.WriteTextString("message");
        writer.WriteTextString(message);
        writer.WriteEndMap();
        return writer.Encode();
    }

    /// <summary>
    /// A request body as the JSON the model validator and the actions read: maps become objects, a
    /// timestamp (tag 1) epoch seconds, a byte string base64, as the JSON protocol carries them.
    /// </summary>
    public static JsonObject Decode(ReadOnlyMemory<byte> body)
    {
        try
        {
            var reader = new CborReader(body, CborConformanceMode.Lax);
            var node = Read(reader, depth: 0);
            if (reader.BytesRemaining > 0) throw new SerializationException("Trailing bytes after the CBOR request body.");
            return node as JsonObject ?? throw new SerializationException("The request body must be a CBOR map.");
        }
        catch (Exception e) when (e is CborContentException or InvalidOperationException or FormatException)
        {
            throw new SerializationException($"Malformed CBOR request body: {e.Message}");
        }
    }

    private const int MaxDepth = 64;

    private static JsonNode? Read(CborReader reader, int depth)
    {
        if (depth > MaxDepth) throw new SerializationException("The CBOR request body is nested too deeply.");
        switch (reader.PeekState())
        {
            case CborReaderState.StartMap:
                reader.ReadStartMap();
                var map = new JsonObject();
                while (reader.PeekState() != CborReaderState.EndMap)
                {
                    var key = reader.ReadTextString();
                    var value = Read(reader, depth + 1);
                    if (value is not null && !map.TryAdd(key, value)) throw new SerializationException($"Duplicate key {key} in the CBOR request body.");
                }
                reader.ReadEndMap();
                return map;
            case CborReaderState.StartArray:
                reader.ReadStartArray();
                var array = new JsonArray();
                while (reader.PeekState() != CborReaderState.EndArray) array.Add(Read(reader, depth + 1));
                reader.ReadEndArray();
                return array;
            case CborReaderState.TextString:
                return reader.ReadTextString();
            case CborReaderState.ByteString:
                return Convert.ToBase64String(reader.ReadByteString());
            case CborReaderState.UnsignedInteger or CborReaderState.NegativeInteger:
                return reader.ReadInt64();
            case CborReaderState.HalfPrecisionFloat or CborReaderState.SinglePrecisionFloat or CborReaderState.DoublePrecisionFloat:
                return reader.ReadDouble();
            case CborReaderState.Boolean:
                return reader.ReadBoolean();
            case CborReaderState.Null or CborReaderState.SimpleValue:
                reader.SkipValue();
                return null;
            case CborReaderState.Tag:
                var tag = reader.ReadTag();
                if (tag != CborTag.UnixTimeSeconds) throw new SerializationException($"Unsupported CBOR tag {(ulong)tag}.");
                return Read(reader, depth + 1);
            default:
                throw new SerializationException($"Unsupported CBOR item {reader.PeekState()}.");
        }
    }

    /// <summary>A response as CBOR, typed by the model's output shape: timestamps as tag 1, doubles as floats.</summary>
    public static byte[] Encode(ServiceModel model, Shape? shape, JsonObject output)
    {
        var writer = new CborWriter(CborConformanceMode.Lax);
        Write(writer, model, shape, output);
        return writer.Encode();
    }

    private static void Write(CborWriter writer, ServiceModel model, Shape? shape, JsonNode? node)
    {
        switch (shape?.Type)
        {
            case "structure" or null when node is JsonObject structure:
                var members = structure.Where(m => m.Value is not null).ToList();
                writer.WriteStartMap(members.Count);
                foreach (var (name, value) in members)
                {
                    writer.WriteTextString(name);
                    Write(writer, model, shape is not null && shape.Members.TryGetValue(name, out var member) ? model.Shape(member) : null, value);
                }
                writer.WriteEndMap();
                return;
            case "map" when node is JsonObject entries:
                writer.WriteStartMap(entries.Count);
                foreach (var (key, value) in entries)
                {
                    writer.WriteTextString(key);
                    Write(writer, model, model.Shape(shape.Value!), value);
                }
                writer.WriteEndMap();
                return;
            case "list" when node is JsonArray list:
                writer.WriteStartArray(list.Count);
                foreach (var item in list) Write(writer, model, model.Shape(shape.Member!), item);
                writer.WriteEndArray();
                return;
            case "timestamp":
                writer.WriteTag(CborTag.UnixTimeSeconds);
                writer.WriteDouble(node!.GetValue<double>());
                return;
            case "double" or "float":
                writer.WriteDouble(node!.GetValue<double>());
                return;
            case "integer" or "long":
                writer.WriteInt64(node!.GetValue<long>());
                return;
            case "blob":
                writer.WriteByteString(Convert.FromBase64String(node!.GetValue<string>()));
                return;
        }
        switch (node)
        {
            case null:
                writer.WriteNull();
                return;
            case JsonValue value when value.TryGetValue<bool>(out var flag):
                writer.WriteBoolean(flag);
                return;
            case JsonValue value when value.TryGetValue<string>(out var text):
                writer.WriteTextString(text);
                return;
            case JsonValue value when value.TryGetValue<long>(out var whole):
                writer.WriteInt64(whole);
                return;
            case JsonValue value:
                writer.WriteDouble(value.GetValue<double>());
                return;
            default:
                Write(writer, model, null, node);
                return;
        }
    }
}
