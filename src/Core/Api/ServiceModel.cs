using System.Collections.Frozen;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Serverless.Core.Api;

/// <summary>One shape of an AWS service model (botocore's <c>service-2.json</c>), as far as validation needs it.</summary>
public sealed class Shape
{
    public required string Name { get; init; }
    public required string Type { get; init; }
    public IReadOnlyDictionary<string, string> Members { get; init; } = FrozenDictionary<string, string>.Empty;
    public IReadOnlySet<string> Required { get; init; } = FrozenSet<string>.Empty;
    public string? Member { get; init; }
    public string? Key { get; init; }
    public string? Value { get; init; }
    public IReadOnlySet<string>? Enum { get; init; }
    /// <summary><see cref="Enum"/> in the model's order, for messages that list the values.</summary>
    public IReadOnlyList<string>? EnumInOrder { get; init; }
    public double? Min { get; init; }
    public double? Max { get; init; }
    /// <summary>
    /// The model's patterns are Java regular expressions matched against the whole value
    /// (Coral uses <c>Matcher.matches</c>). Java spells "any supplementary character" as a
    /// surrogate-pair range, which .NET reads per UTF-16 unit, so it becomes the surrogate block;
    /// Java's POSIX class <c>\p{Print}</c> is printable ASCII.
    /// Compiled on first use: most of the hundreds of patterns are never needed.
    /// </summary>
    public string? PatternText
    {
        get => _patternText;
        init
        {
            _patternText = value;
            _pattern = value is null ? null : new Lazy<Regex>(() => new Regex(
                $"^(?:{value.Replace(@"\uD800\uDC00-\uDBFF\uDFFF", @"\uD800-\uDFFF").Replace(@"\p{Print}", @"[\x20-\x7E]")})$",
                RegexOptions.CultureInvariant));
        }
    }

    public Regex? Pattern => _pattern?.Value;

    private readonly string? _patternText;
    private readonly Lazy<Regex>? _pattern;

    public bool IsDocument { get; init; }
}

/// <summary>
/// An AWS service model embedded from botocore (see <c>tools/strip-model.py</c>): the operations
/// and their input shapes. It is the single reference for what a request may contain.
/// </summary>
public sealed class ServiceModel
{
    private readonly FrozenDictionary<string, Shape> _shapes;
    private readonly FrozenDictionary<string, string?> _inputs;
    private readonly FrozenDictionary<string, string?> _outputs;

    public string TargetPrefix { get; }

    /// <summary>
    /// The largest request body this service takes, when its own limits need more than
    /// <see cref="EcsOptions.MaxRequestBodyBytes"/> (a PutLogEvents batch of 1 MiB of messages is more JSON).
    /// </summary>
    public int? MaxRequestBodyBytes { get; private init; }

    public ServiceModel WithMaxRequestBodyBytes(int bytes)
        => new(TargetPrefix, _shapes, _inputs, _outputs) { MaxRequestBodyBytes = bytes, ValidationErrorType = ValidationErrorType };

    /// <summary>
    /// The <c>__type</c> this service answers a request that breaks its model's constraints with
    /// (Coral's "validation error detected"): ECS's <c>InvalidParameterException</c> unless the service
    /// uses another, as Secrets Manager and Systems Manager answer <c>ValidationException</c>.
    /// </summary>
    public string ValidationErrorType { get; private init; } = "InvalidParameterException";

    public ServiceModel WithValidationErrorType(string errorType)
        => new(TargetPrefix, _shapes, _inputs, _outputs) { MaxRequestBodyBytes = MaxRequestBodyBytes, ValidationErrorType = errorType };

    private ServiceModel(string targetPrefix, FrozenDictionary<string, Shape> shapes, FrozenDictionary<string, string?> inputs, FrozenDictionary<string, string?> outputs)
    {
        _outputs = outputs;
        TargetPrefix = targetPrefix;
        _shapes = shapes;
        _inputs = inputs;
    }

    public static ServiceModel Ecs { get; } = Load("ecs");

    public static ServiceModel AutoScaling { get; } = Load("application-autoscaling");

    public IEnumerable<string> Operations => _inputs.Keys;

    public IEnumerable<Shape> Shapes => _shapes.Values;

    public Shape Shape(string name) => _shapes[name];

    /// <summary>The input shape of <paramref name="operation"/>, or null when it takes none.</summary>
    public Shape? InputOf(string operation)
        => _inputs.TryGetValue(operation, out var input) && input is not null ? _shapes[input] : null;

    /// <summary>The output shape of <paramref name="operation"/>, or null when it returns none (protocols that type their encoding need it).</summary>
    public Shape? OutputOf(string operation)
        => _outputs.TryGetValue(operation, out var output) && output is not null ? _shapes[output] : null;

    public bool HasOperation(string operation) => _inputs.ContainsKey(operation);

    /// <summary>
    /// The model embedded as <c>Api/Model/&lt;service&gt;.json</c> (botocore's service name). A capability that
    /// serves another AWS service registers its model as a singleton; <see cref="ApiEndpoint"/> dispatches
    /// to every registered model by its target prefix.
    /// </summary>
    public static ServiceModel Load(string service)
    {
        using var stream = typeof(ServiceModel).Assembly.GetManifestResourceStream($"Model.{service}.json")
            ?? throw new InvalidOperationException($"Embedded model {service} is missing");
        using var document = JsonDocument.Parse(stream);
        var root = document.RootElement;

        var shapes = new Dictionary<string, Shape>(StringComparer.Ordinal);
        foreach (var shape in root.GetProperty("shapes").EnumerateObject())
            shapes[shape.Name] = ReadShape(shape.Name, shape.Value);

        var inputs = new Dictionary<string, string?>(StringComparer.Ordinal);
        var outputs = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var operation in root.GetProperty("operations").EnumerateObject())
        {
            inputs[operation.Name] = operation.Value.TryGetProperty("input", out var input)
                ? input.GetProperty("shape").GetString()
                : null;
            outputs[operation.Name] = operation.Value.TryGetProperty("output", out var output)
                ? output.GetProperty("shape").GetString()
                : null;
        }

        // Query-protocol services (ELBv2) have no target prefix: they dispatch on the form's Action.
        var prefix = root.GetProperty("metadata").TryGetProperty("targetPrefix", out var target) ? target.GetString()! : "";
        return new ServiceModel(prefix, shapes.ToFrozenDictionary(StringComparer.Ordinal), inputs.ToFrozenDictionary(StringComparer.Ordinal), outputs.ToFrozenDictionary(StringComparer.Ordinal));
    }

    private static Shape ReadShape(string name, JsonElement json)
    {
        string? Ref(string property) => json.TryGetProperty(property, out var p) ? p.GetProperty("shape").GetString() : null;
        double? Number(string property) => json.TryGetProperty(property, out var p) ? p.GetDouble() : null;

        return new Shape
        {
            Name = name,
            Type = json.GetProperty("type").GetString()!,
            Members = json.TryGetProperty("members", out var members)
                ? members.EnumerateObject().ToFrozenDictionary(m => m.Name, m => m.Value.GetProperty("shape").GetString()!, StringComparer.Ordinal)
                : FrozenDictionary<string, string>.Empty,
            Required = json.TryGetProperty("required", out var required)
                ? required.EnumerateArray().Select(r => r.GetString()!).ToFrozenSet(StringComparer.Ordinal)
                : FrozenSet<string>.Empty,
            Member = Ref("member"),
            Key = Ref("key"),
            Value = Ref("value"),
            Enum = json.TryGetProperty("enum", out var values)
                ? values.EnumerateArray().Select(v => v.GetString()!).ToFrozenSet(StringComparer.Ordinal)
                : null,
            EnumInOrder = json.TryGetProperty("enum", out var ordered)
                ? [.. ordered.EnumerateArray().Select(v => v.GetString()!)]
                : null,
            Min = Number("min"),
            Max = Number("max"),
            PatternText = json.TryGetProperty("pattern", out var pattern) ? pattern.GetString() : null,
            IsDocument = json.TryGetProperty("document", out var document) && document.GetBoolean(),
        };
    }
}
