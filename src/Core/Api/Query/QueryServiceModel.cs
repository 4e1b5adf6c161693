using System.Collections.Frozen;
using System.Text.Json;

namespace Serverless.Core.Api.Query;

/// <summary>
/// A service spoken in the AWS query protocol (ELBv2): its <see cref="ServiceModel"/> for input shapes and
/// validation, plus what the protocol needs on top — the API version a request names, the XML namespace and
/// each operation's output shape and result wrapper. Loaded from the same embedded botocore model.
/// </summary>
public sealed class QueryServiceModel
{
    private readonly FrozenDictionary<string, (string? Shape, string? Wrapper)> _outputs;

    private QueryServiceModel(ServiceModel model, string apiVersion, string xmlNamespace, string signingName,
        FrozenDictionary<string, (string?, string?)> outputs)
    {
        Model = model;
        ApiVersion = apiVersion;
        XmlNamespace = xmlNamespace;
        SigningName = signingName;
        _outputs = outputs;
    }

    public ServiceModel Model { get; }

    /// <summary>The form's <c>Version</c> a request must carry, e.g. <c>2015-12-01</c>.</summary>
    public string ApiVersion { get; }

    public string XmlNamespace { get; }

    /// <summary>The credential scope's service, e.g. <c>elasticloadbalancing</c>; also the action registry's prefix.</summary>
    public string SigningName { get; }

    /// <summary>The output shape and its result wrapper element (<c>CreateLoadBalancerResult</c>), when the operation has one.</summary>
    public (Shape? Shape, string? Wrapper) OutputOf(string operation)
        => _outputs.TryGetValue(operation, out var output) && output.Shape is not null
            ? (Model.Shape(output.Shape), output.Wrapper)
            : (null, null);

    public static QueryServiceModel Load(string service)
    {
        var model = ServiceModel.Load(service);
        using var stream = typeof(ServiceModel).Assembly.GetManifestResourceStream($"Model.{service}.json")
            ?? throw new InvalidOperationException($"Embedded model {service} is missing");
        using var document = JsonDocument.Parse(stream);
        var root = document.RootElement;
        var metadata = root.GetProperty("metadata");
        var outputs = new Dictionary<string, (string?, string?)>(StringComparer.Ordinal);
        foreach (var operation in root.GetProperty("operations").EnumerateObject())
        {
            outputs[operation.Name] = operation.Value.TryGetProperty("output", out var output)
                ? (output.GetProperty("shape").GetString(), output.TryGetProperty("resultWrapper", out var w) ? w.GetString() : null)
                : (null, null);
        }
        var signingName = metadata.TryGetProperty("signingName", out var signing) ? signing.GetString()! : metadata.GetProperty("endpointPrefix").GetString()!;
        return new QueryServiceModel(model, metadata.GetProperty("apiVersion").GetString()!,
            metadata.GetProperty("xmlNamespace").GetString()!, signingName, outputs.ToFrozenDictionary(StringComparer.Ordinal));
    }
}
