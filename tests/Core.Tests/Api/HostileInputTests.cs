using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Api;

/// <summary>
/// Hostile values in every member of every ECS action, through the whole endpoint over real storage:
/// whatever a client sends, the answer is a 4xx in the AWS JSON shape, never a 500.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class HostileInputTests(AzuriteFixture azurite) : IDisposable
{
    private readonly ApiHarness _api = new(azurite, TestNames.Unique<HostileInputTests>());
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(10)).Token;

    public void Dispose() => _api.Dispose();

    /// <summary>Raw JSON texts put in place of one member.</summary>
    private static readonly string[] HostileValues =
    [
        "null", "1e400", "-1e400", "1.5", "-1", "0", "2147483648", "9223372036854775808", "\"NaN\"", "\"Infinity\"",
        "true", "\"\"", "[]", "{}", "[null]", "[{}]", "{\"a\":null}",
        Quote(new string('x', 300_000)),
        "\"\\ud800\"", "{\"\\udc00\":1}", "\"\\u0000\"", "\"𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ☃ \\u202e\"",
        "[" + string.Join(',', Enumerable.Repeat("\"a\"", 20_000)) + "]",
        "[" + string.Join(',', Enumerable.Repeat("{}", 5_000)) + "]",
        new string('[', 60) + new string(']', 60),
        new string('[', 2000) + new string(']', 2000),
    ];

    public static TheoryData<string> Operations()
    {
        var data = new TheoryData<string>();
        foreach (var operation in ServiceModel.Ecs.Operations.Order(StringComparer.Ordinal)) data.Add(operation);
        return data;
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public async Task No_hostile_value_in_any_member_makes_the_endpoint_answer_500(string operation)
    {
        var input = ServiceModel.Ecs.InputOf(operation);
        var failures = new Dictionary<string, string>();
        foreach (var body in HostileBodies(input))
        {
            _api.Errors.Clear();
            var answer = await _api.EcsAsync(operation, body, _token);
            if (answer.Status >= 500 || (answer.Status >= 400 && answer.Type is null))
                failures.TryAdd(Where(_api.Errors.Last), $"{answer.Status} {answer.Raw[..Math.Min(200, answer.Raw.Length)]} <= {body[..Math.Min(300, body.Length)]}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures.Select(f => $"{f.Key}\n    {f.Value}")));
    }

    /// <summary>
    /// A plausible request (every member present with an ordinary value), then the same with each member
    /// path, down to the members of the first item of each list, replaced by each hostile value.
    /// </summary>
    private static IEnumerable<string> HostileBodies(Shape? input)
    {
        if (input is null)
        {
            yield return "{}";
            foreach (var value in HostileValues) yield return $"{{\"x\":{value}}}";
            yield break;
        }
        var plausible = (JsonObject)Plausible(input, 0)!;
        yield return plausible.ToJsonString();
        foreach (var path in Paths(plausible, []))
        {
            foreach (var value in HostileValues) yield return Replace(plausible, path, value);
        }
    }

    private static JsonNode? Plausible(Shape shape, int depth)
    {
        var model = ServiceModel.Ecs;
        switch (shape.Type)
        {
            case "structure" when depth < 4:
                var obj = new JsonObject();
                foreach (var (name, member) in shape.Members) obj[name] = Plausible(model.Shape(member), depth + 1);
                return obj;
            case "structure":
                return new JsonObject();
            case "list":
                return new JsonArray(Plausible(model.Shape(shape.Member!), depth + 1));
            case "map":
                return new JsonObject { ["k"] = Plausible(model.Shape(shape.Value!), depth + 1) };
            case "string":
                return shape.Enum is { } values ? values.Order(StringComparer.Ordinal).First() : "default";
            case "boolean":
                return false;
            case "integer" or "long":
                return 1;
            case "double" or "float":
                return 1.0;
            case "timestamp":
                return 1_700_000_000;
            default:
                return null;
        }
    }

    private static IEnumerable<List<object>> Paths(JsonNode node, List<object> at)
    {
        if (at.Count >= 3) yield break;
        if (node is JsonObject obj)
        {
            foreach (var (name, child) in obj)
            {
                List<object> path = [.. at, name];
                yield return path;
                if (child is not null) foreach (var deeper in Paths(child, path)) yield return deeper;
            }
        }
        else if (node is JsonArray { Count: > 0 } array && array[0] is { } first)
        {
            foreach (var deeper in Paths(first, [.. at, 0])) yield return deeper;
        }
    }

    private static string Replace(JsonObject plausible, List<object> path, string rawValue)
    {
        const string Marker = "\"__hostile__\"";
        var copy = plausible.DeepClone();
        JsonNode parent = copy;
        for (var i = 0; i < path.Count - 1; i++) parent = path[i] is string name ? parent[name]! : parent[(int)path[i]]!;
        if (path[^1] is string last) parent[last] = "__hostile__";
        else parent[(int)path[^1]] = "__hostile__";
        return copy.ToJsonString().Replace(Marker, rawValue);
    }

    private static string Where(Exception? e)
        => e is null ? "" : $"{e.GetType().Name}: {e.Message[..Math.Min(160, e.Message.Length)]} {e.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("Serverless"))?.Trim()}";

    private static string Quote(string text) => "\"" + text + "\"";
}
