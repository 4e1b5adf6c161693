using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Serverless.Core.Api;

/// <summary>
/// Checks a request body against the operation's input shape the way the AWS JSON protocol
/// front end does, before any action code runs:
/// a member of the wrong JSON type is a <see cref="SerializationException"/>;
/// a missing required member, a value outside the model's enum, length, range or pattern is an
/// <see cref="InvalidParameterException"/> in Coral's "validation error detected" wording (or the
/// service's own <see cref="ServiceModel.ValidationErrorType"/>).
/// Members the model does not know are dropped and JSON nulls count as absent, so actions
/// (and storage) only ever see modelled data.
/// </summary>
public static class RequestValidator
{
    public static JsonObject Validate(ServiceModel model, Shape input, JsonObject body)
    {
        var errors = new List<string>();
        var clean = (JsonObject)ValidateStructure(model, input, body, "", errors)!;
        if (errors.Count > 0)
        {
            var count = errors.Count == 1 ? "1 validation error detected: " : $"{errors.Count} validation errors detected: ";
            var message = count + string.Join("; ", errors);
            throw model.ValidationErrorType == "InvalidParameterException"
                ? new InvalidParameterException(message)
                : new ModelValidationException(model.ValidationErrorType, message);
        }
        return clean;
    }

    private static JsonNode? ValidateValue(ServiceModel model, Shape shape, JsonNode node, string path, List<string> errors)
    {
        switch (shape.Type)
        {
            case "structure":
                if (shape.IsDocument) return node.DeepClone();
                if (node is not JsonObject obj) throw WrongType(node, "structure", path);
                return ValidateStructure(model, shape, obj, path, errors);

            case "list":
                if (node is not JsonArray array) throw WrongType(node, "list", path);
                CheckRange(shape, array.Count, path, errors, "length");
                var member = model.Shape(shape.Member!);
                var items = new JsonArray();
                for (var i = 0; i < array.Count; i++)
                {
                    // A null inside a list is kept out, as Coral drops it when unmarshalling.
                    if (array[i] is null) continue;
                    items.Add(ValidateValue(model, member, array[i]!, $"{path}.{i + 1}.member", errors));
                }
                return items;

            case "map":
                if (node is not JsonObject map) throw WrongType(node, "map", path);
                CheckRange(shape, map.Count, path, errors, "length");
                var valueShape = model.Shape(shape.Value!);
                var keyShape = model.Shape(shape.Key!);
                var entries = new JsonObject();
                foreach (var (key, value) in map)
                {
                    CheckString(keyShape, key, $"{path}.key", errors);
                    if (value is null) continue;
                    entries[key] = ValidateValue(model, valueShape, value, $"{path}.{key}", errors);
                }
                return entries;

            case "string":
                if (node is not JsonValue text || text.GetValueKind() != JsonValueKind.String) throw WrongType(node, "String", path);
                CheckString(shape, text.GetValue<string>(), path, errors);
                return JsonValue.Create(text.GetValue<string>());

            case "boolean":
                if (node is not JsonValue flag || flag.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
                    throw WrongType(node, "Boolean", path);
                return JsonValue.Create(flag.GetValue<bool>());

            case "integer" or "long":
                if (node is not JsonValue integer || integer.GetValueKind() != JsonValueKind.Number)
                    throw WrongType(node, shape.Type == "integer" ? "Integer" : "Long", path);
                var element = integer.GetValue<JsonElement>();
                if (!element.TryGetInt64(out var whole) || (shape.Type == "integer" && whole is < int.MinValue or > int.MaxValue))
                    throw new SerializationException($"NUMBER_VALUE can not be converted to {(shape.Type == "integer" ? "an Integer" : "a Long")}");
                CheckRange(shape, whole, path, errors, "value");
                return shape.Type == "integer" ? JsonValue.Create((int)whole) : JsonValue.Create(whole);

            case "double" or "float":
                if (node is not JsonValue real || real.GetValueKind() != JsonValueKind.Number) throw WrongType(node, "Double", path);
                // 1e400 is valid JSON but no double: Jackson fails to read it as Coral's NUMBER_VALUE.
                if (!real.GetValue<JsonElement>().TryGetDouble(out var number) || !double.IsFinite(number))
                    throw new SerializationException("NUMBER_VALUE can not be converted to a Double");
                CheckRange(shape, number, path, errors, "value");
                return JsonValue.Create(number);

            case "timestamp":
                // The JSON protocol sends epoch seconds; ISO-8601 strings are accepted as Coral does.
                if (node is JsonValue stamp && stamp.GetValueKind() == JsonValueKind.Number)
                {
                    if (!stamp.GetValue<JsonElement>().TryGetDouble(out var seconds) || Math.Abs(seconds) > MaxEpochSeconds)
                        throw new SerializationException("NUMBER_VALUE can not be converted to a Date");
                    return JsonValue.Create(seconds);
                }
                if (node is JsonValue iso && iso.GetValueKind() == JsonValueKind.String
                    && DateTimeOffset.TryParse(iso.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
                    return JsonValue.Create(parsed.ToUnixTimeMilliseconds() / 1000.0);
                throw WrongType(node, "Date", path);

            default:
                return node.DeepClone();
        }
    }

    private static JsonObject ValidateStructure(ServiceModel model, Shape shape, JsonObject obj, string path, List<string> errors)
    {
        var clean = new JsonObject();
        foreach (var (name, value) in obj)
        {
            if (value is null || !shape.Members.TryGetValue(name, out var memberShape)) continue;
            clean[name] = ValidateValue(model, model.Shape(memberShape), value, Join(path, name), errors);
        }
        foreach (var required in shape.Required)
        {
            if (!clean.ContainsKey(required))
                errors.Add($"Value null at '{Join(path, required)}' failed to satisfy constraint: Member must not be null");
        }
        return clean;
    }

    private static void CheckString(Shape shape, string value, string path, List<string> errors)
    {
        if (shape.Enum is { } values && !values.Contains(value))
        {
            // ECS checks the launch type itself, before Coral's generic validation, in its own words.
            if (shape.Name == "LaunchType")
                throw new InvalidParameterException($"launch type should be one of [{string.Join(',', shape.EnumInOrder!)}]");
            errors.Add($"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{string.Join(", ", values)}]");
            return;
        }
        CheckRange(shape, value.Length, path, errors, "length");
        if (shape.Pattern is { } pattern && !pattern.IsMatch(value))
            errors.Add($"Value '{value}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {TrimAnchors(pattern.ToString())}");
    }

    private static void CheckRange(Shape shape, double value, string path, List<string> errors, string what)
    {
        if (shape.Min is { } min && value < min)
            errors.Add($"Value at '{path}' failed to satisfy constraint: Member must have {what} greater than or equal to {min.ToString(CultureInfo.InvariantCulture)}");
        if (shape.Max is { } max && value > max)
            errors.Add($"Value at '{path}' failed to satisfy constraint: Member must have {what} less than or equal to {max.ToString(CultureInfo.InvariantCulture)}");
    }

    private static SerializationException WrongType(JsonNode node, string expected, string path)
    {
        var found = node.GetValueKind() switch
        {
            JsonValueKind.Object => "Start of structure or map",
            JsonValueKind.Array => "Start of list",
            JsonValueKind.String => "STRING_VALUE",
            JsonValueKind.Number => "NUMBER_VALUE",
            JsonValueKind.True or JsonValueKind.False => "BOOLEAN_VALUE",
            _ => "VALUE",
        };
        var message = node is JsonObject or JsonArray
            ? $"{found} found where not expected (at '{path}')"
            : $"{found} can not be converted to {Article(expected)} {expected} (at '{path}')";
        return new SerializationException(message);
    }

    // DateTimeOffset's range: a timestamp outside it cannot be a date.
    private const double MaxEpochSeconds = 253_402_300_799;

    private static string Article(string word) => "AEIOU".Contains(word[0]) ? "an" : "a";

    private static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    private static string TrimAnchors(string pattern) => pattern[4..^2];
}

/// <summary>A request that breaks the model's constraints, for a service whose answer to that is not <c>InvalidParameterException</c>.</summary>
public sealed class ModelValidationException(string errorType, string message) : EcsException(message)
{
    public override string ErrorType { get; } = errorType;
}
