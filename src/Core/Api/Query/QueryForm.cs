using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Serverless.Core.Api.Query;

/// <summary>
/// Reads an AWS query-protocol body (<c>application/x-www-form-urlencoded</c>) into the JSON the
/// operation's input shape describes, so the query services' actions take the same <see cref="JsonObject"/>
/// as the JSON ones and the same <see cref="RequestValidator"/> checks them. Lists are
/// <c>Name.member.N</c> (N from 1, in index order), maps <c>Name.entry.N.key</c>/<c>.value</c>, nested
/// structures <c>Outer.Inner</c>; an empty list is sent as <c>Name=</c>. Values are typed by the shape
/// (integers, booleans); a value that is not of its type is a <see cref="SerializationException"/>.
/// Parameters the shape does not know are dropped, as AWS ignores them.
/// </summary>
public static class QueryForm
{
    /// <summary>Every parameter of a form body, decoded; a name sent twice keeps its last value.</summary>
    public static Dictionary<string, string> Decode(ReadOnlySpan<byte> body)
    {
        var text = Encoding.UTF8.GetString(body);
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in text.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=');
            var name = Unescape(equals < 0 ? pair : pair[..equals]);
            pairs[name] = equals < 0 ? "" : Unescape(pair[(equals + 1)..]);
        }
        return pairs;
    }

    private static string Unescape(string value)
    {
        try
        {
            return Uri.UnescapeDataString(value.Replace('+', ' '));
        }
        catch (UriFormatException)
        {
            throw new SerializationException("The request body is not a valid form encoding.");
        }
    }

    /// <summary>The input of <paramref name="shape"/> from the decoded <paramref name="parameters"/>.</summary>
    public static JsonObject ToJson(ServiceModel model, Shape shape, IReadOnlyDictionary<string, string> parameters)
    {
        var root = new Node();
        foreach (var (name, value) in parameters)
        {
            var node = root;
            foreach (var part in name.Split('.')) node = node.Child(part);
            node.Value = value;
        }
        return (JsonObject)Convert(model, shape, root, shape.Name)!;
    }

    private static JsonNode? Convert(ServiceModel model, Shape shape, Node node, string path)
    {
        switch (shape.Type)
        {
            case "structure":
                if (node.Children is null) return node.Value is null ? null : throw WrongType(path, "structure");
                var obj = new JsonObject();
                foreach (var (member, memberShape) in shape.Members)
                {
                    if (node.Children.TryGetValue(member, out var child)
                        && Convert(model, model.Shape(memberShape), child, $"{path}.{member}") is { } value)
                        obj[member] = value;
                }
                return obj;

            case "list":
                var items = new JsonArray();
                if (node.Children?.GetValueOrDefault("member") is { Children: { } members })
                {
                    var itemShape = model.Shape(shape.Member!);
                    foreach (var (_, item) in Indexed(members, path))
                    {
                        if (Convert(model, itemShape, item, $"{path}.member") is { } value) items.Add(value);
                    }
                }
                return items;

            case "map":
                var map = new JsonObject();
                if (node.Children?.GetValueOrDefault("entry") is { Children: { } entries })
                {
                    var valueShape = model.Shape(shape.Value!);
                    foreach (var (_, entry) in Indexed(entries, path))
                    {
                        var key = entry.Children?.GetValueOrDefault("key")?.Value;
                        var value = entry.Children?.GetValueOrDefault("value");
                        if (key is null || value is null) continue;
                        map[key] = Convert(model, valueShape, value, $"{path}.{key}");
                    }
                }
                return map;
        }

        if (node.Value is null) return null;
        var text = node.Value;
        return shape.Type switch
        {
            "string" or "timestamp" or "blob" => JsonValue.Create(text),
            "integer" => int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)
                ? Number(i.ToString(CultureInfo.InvariantCulture)) : throw WrongType(path, "an Integer"),
            "long" => long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                ? Number(l.ToString(CultureInfo.InvariantCulture)) : throw WrongType(path, "a Long"),
            "double" or "float" => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)
                ? Number(d.ToString("R", CultureInfo.InvariantCulture)) : throw WrongType(path, "a Double"),
            "boolean" => text.Equals("true", StringComparison.OrdinalIgnoreCase) ? JsonValue.Create(true)
                : text.Equals("false", StringComparison.OrdinalIgnoreCase) ? JsonValue.Create(false)
                : throw WrongType(path, "a Boolean"),
            _ => JsonValue.Create(text),
        };
    }

    // Numbers as parsed JSON numbers, exactly what the JSON protocols hand the validator.
    private static JsonNode Number(string text) => JsonNode.Parse(text)!;

    // List and map entries are numbered from 1; what is not a positive number is no entry.
    private static IEnumerable<(int Index, Node Node)> Indexed(Dictionary<string, Node> children, string path)
    {
        var indexed = new List<(int, Node)>(children.Count);
        foreach (var (key, child) in children)
        {
            if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var index) || index < 1)
                throw new SerializationException($"Invalid list index '{key}' in {path}.");
            indexed.Add((index, child));
        }
        indexed.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return indexed;
    }

    private static SerializationException WrongType(string path, string type)
        => new($"The value of {path} could not be read as {type}.");

    private sealed class Node
    {
        public string? Value { get; set; }
        public Dictionary<string, Node>? Children { get; private set; }

        public Node Child(string name)
        {
            Children ??= new Dictionary<string, Node>(StringComparer.Ordinal);
            if (!Children.TryGetValue(name, out var child)) Children[name] = child = new Node();
            return child;
        }
    }
}
