using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;

namespace Serverless.Core.Api.Query;

/// <summary>Reads a request's body and verifies its SigV4 signature (the one place that does: <see cref="ApiEndpoint"/>).</summary>
public delegate Task<(ReadOnlyMemory<byte> Body, RequestContext Context)> SignedBodyReader(HttpRequest request, CancellationToken cancellationToken);

/// <summary>
/// The AWS query protocol at the shared endpoint (ELBv2): a form-encoded POST naming <c>Action</c> and
/// <c>Version</c>, answered in XML — <c>&lt;{Action}Response&gt;&lt;{Action}Result&gt;…&lt;/&gt;&lt;ResponseMetadata&gt;</c> — and
/// errors as <c>&lt;ErrorResponse&gt;&lt;Error&gt;&lt;Type/&gt;&lt;Code/&gt;&lt;Message/&gt;&lt;/Error&gt;&lt;RequestId/&gt;</c>, which is what
/// botocore's query parser reads. Actions are the same <see cref="ActionHandler"/>s as the JSON services',
/// mapped under the service's signing name, and see JSON typed by the input shape.
/// </summary>
public sealed class QueryEndpoint(ActionRegistry actions, IEnumerable<QueryServiceModel> models, ILogger<QueryEndpoint> logger)
{
    private readonly QueryServiceModel[] _models = [.. models];

    /// <summary>A query-protocol request: form-encoded and without the JSON protocols' <c>X-Amz-Target</c>.</summary>
    public static bool Accepts(HttpRequest request)
        => !request.Headers.ContainsKey("X-Amz-Target")
           && request.ContentType is { } type
           && type.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase);

    public async Task<IActionResult> HandleAsync(HttpRequest request, SignedBodyReader readSigned, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var requestId = Guid.NewGuid().ToString();
        var action = "(none)";
        var xmlNamespace = _models.Length > 0 ? _models[0].XmlNamespace : "";
        QueryXmlResult result;
        try
        {
            var (body, context) = await readSigned(request, cancellationToken);
            var parameters = QueryForm.Decode(body.Span);
            action = parameters.GetValueOrDefault("Action") ?? "(none)";
            var version = parameters.GetValueOrDefault("Version");
            var model = Array.Find(_models, m => m.ApiVersion == version);
            if (model is null)
                throw new QueryError("InvalidAction", $"Could not find operation {action} for version {version ?? "NO_VERSION_SPECIFIED"}");
            xmlNamespace = model.XmlNamespace;
            if (!model.Model.HasOperation(action) || !actions.TryGet($"{model.SigningName}.{action}", out var handler))
                throw new QueryError("InvalidAction", $"Could not find operation {action} for version {version}");

            var input = model.Model.InputOf(action);
            var json = input is null ? [] : RequestValidator.Validate(model.Model, input, QueryForm.ToJson(model.Model, input, parameters));
            var response = await handler(json, context, cancellationToken);
            result = QueryXmlResult.Ok(model, action, response, requestId);
        }
        catch (EcsException e)
        {
            var (code, status) = WireCode(e);
            result = QueryXmlResult.Error(xmlNamespace, status, code, e.Message, requestId);
        }
        catch (ConcurrentUpdateException e)
        {
            logger.LogWarning("{Action} lost a concurrent update race: {Message} {RequestId}", action, e.Message, requestId);
            result = QueryXmlResult.Error(xmlNamespace, 500, "InternalFailure", "The request could not be completed because of a concurrent update. Retry the request.", requestId);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            logger.LogError(e, "{Action} failed {RequestId}", action, requestId);
            result = QueryXmlResult.Error(xmlNamespace, 500, "InternalFailure", "Internal server error.", requestId);
        }

        logger.LogInformation("{Action} {Status} {ElapsedMs:0.0} ms {RequestId}",
            action, result.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds, requestId);
        return result;
    }

    // The shared pieces throw in the JSON services' vocabulary; query services name the same faults
    // as AWS's query front end does (validation, signature), and carry their own codes otherwise.
    private static (string Code, int Status) WireCode(EcsException e) => e switch
    {
        InvalidParameterException or SerializationException => ("ValidationError", 400),
        RequestEntityTooLargeException => ("RequestEntityTooLarge", 413),
        AuthenticationException { ErrorType: "MissingAuthenticationTokenException" } => ("MissingAuthenticationToken", 403),
        AuthenticationException { ErrorType: "UnrecognizedClientException" } => ("InvalidClientTokenId", 403),
        AuthenticationException { ErrorType: "InvalidSignatureException" } => ("SignatureDoesNotMatch", 403),
        AuthenticationException { ErrorType: "IncompleteSignatureException" } => ("IncompleteSignature", 400),
        _ => (e.ErrorType, e.HttpStatus),
    };
}

/// <summary>A query-protocol error carrying its wire code, e.g. <c>InvalidAction</c>.</summary>
public sealed class QueryError(string code, string message, int httpStatus = 400) : EcsException(message)
{
    public override string ErrorType => code;
    public override int HttpStatus => httpStatus;
}

/// <summary>A serialized query-protocol answer: the output shape as XML, or an <c>ErrorResponse</c>.</summary>
public sealed class QueryXmlResult : IActionResult
{
    private readonly byte[] _body;
    private readonly string _requestId;

    private QueryXmlResult(int statusCode, byte[] body, string requestId)
    {
        StatusCode = statusCode;
        _body = body;
        _requestId = requestId;
    }

    public int StatusCode { get; }

    public static QueryXmlResult Ok(QueryServiceModel model, string action, JsonObject response, string requestId)
    {
        var (shape, wrapper) = model.OutputOf(action);
        return new(200, Write(model.XmlNamespace, w =>
        {
            w.WriteStartElement($"{action}Response", model.XmlNamespace);
            if (shape is not null)
            {
                w.WriteStartElement(wrapper ?? $"{action}Result");
                WriteMembers(w, model.Model, shape, response);
                w.WriteEndElement();
            }
            w.WriteStartElement("ResponseMetadata");
            w.WriteElementString("RequestId", requestId);
            w.WriteEndElement();
            w.WriteEndElement();
        }), requestId);
    }

    public static QueryXmlResult Error(string xmlNamespace, int status, string code, string message, string requestId)
        => new(status, Write(xmlNamespace, w =>
        {
            w.WriteStartElement("ErrorResponse", xmlNamespace);
            w.WriteStartElement("Error");
            w.WriteElementString("Type", status >= 500 ? "Receiver" : "Sender");
            w.WriteElementString("Code", code);
            w.WriteElementString("Message", message);
            w.WriteEndElement();
            w.WriteElementString("RequestId", requestId);
            w.WriteEndElement();
        }), requestId);

    private static byte[] Write(string xmlNamespace, Action<XmlWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = XmlWriter.Create(stream, new XmlWriterSettings { Encoding = new UTF8Encoding(false), OmitXmlDeclaration = true }))
        {
            write(writer);
        }
        return stream.ToArray();
    }

    // Members in the model's order; lists as <member>, maps as <entry><key/><value/></entry>.
    private static void WriteMembers(XmlWriter w, ServiceModel model, Shape shape, JsonObject value)
    {
        foreach (var (name, memberShape) in shape.Members)
        {
            if (value[name] is not { } member) continue;
            w.WriteStartElement(name);
            WriteValue(w, model, model.Shape(memberShape), member);
            w.WriteEndElement();
        }
    }

    private static void WriteValue(XmlWriter w, ServiceModel model, Shape shape, JsonNode value)
    {
        switch (shape.Type)
        {
            case "structure":
                WriteMembers(w, model, shape, value.AsObject());
                break;
            case "list":
                var item = model.Shape(shape.Member!);
                foreach (var element in value.AsArray())
                {
                    if (element is null) continue;
                    w.WriteStartElement("member");
                    WriteValue(w, model, item, element);
                    w.WriteEndElement();
                }
                break;
            case "map":
                var mapValue = model.Shape(shape.Value!);
                foreach (var (key, entry) in value.AsObject())
                {
                    if (entry is null) continue;
                    w.WriteStartElement("entry");
                    w.WriteElementString("key", key);
                    w.WriteStartElement("value");
                    WriteValue(w, model, mapValue, entry);
                    w.WriteEndElement();
                    w.WriteEndElement();
                }
                break;
            case "boolean":
                w.WriteString(value.GetValue<bool>() ? "true" : "false");
                break;
            case "timestamp" when value.GetValueKind() == JsonValueKind.Number:
                w.WriteString(DateTimeOffset.FromUnixTimeMilliseconds((long)(value.GetValue<double>() * 1000))
                    .ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
                break;
            default:
                w.WriteString(value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : value.ToJsonString());
                break;
        }
    }

    public Task ExecuteResultAsync(ActionContext context) => WriteAsync(context.HttpContext.Response);

    public Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = StatusCode;
        response.ContentType = "text/xml";
        response.ContentLength = _body.Length;
        response.Headers["x-amzn-RequestId"] = _requestId;
        return response.Body.WriteAsync(_body).AsTask();
    }
}
