using System.Text.Json.Nodes;

namespace Serverless.Worker.Docker;

/// <summary>One entry of a task's <c>overrides.containerOverrides</c>, as RunTask took it.</summary>
public sealed record ContainerOverride(
    string Name,
    IReadOnlyList<string>? Command,
    IReadOnlyList<KeyValuePair<string, string>> Environment,
    int? Cpu,
    int? Memory,
    int? MemoryReservation);

/// <summary>Reads ECS's <c>TaskOverride</c> JSON; unknown members are ignored.</summary>
public static class TaskOverrides
{
    /// <summary>The container overrides by container name (the last one wins when a name repeats).</summary>
    public static IReadOnlyDictionary<string, ContainerOverride> ContainerOverrides(JsonObject? overrides)
    {
        var result = new Dictionary<string, ContainerOverride>(StringComparer.Ordinal);
        foreach (var node in overrides?["containerOverrides"] as JsonArray ?? [])
        {
            if (node is not JsonObject item || item["name"]?.GetValue<string>() is not { } name) continue;
            result[name] = new ContainerOverride(
                name,
                item["command"] is JsonArray command ? [.. command.Select(c => c!.GetValue<string>())] : null,
                Environment(item["environment"] as JsonArray),
                Int(item["cpu"]),
                Int(item["memory"]),
                Int(item["memoryReservation"]));
        }
        return result;
    }

    /// <summary>An ECS <c>environment</c> list (<c>[{name, value}]</c>) as name/value pairs, in order.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Environment(JsonArray? environment)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var node in environment ?? [])
        {
            if (node is not JsonObject pair || pair["name"]?.GetValue<string>() is not { } name) continue;
            result.Add(new(name, pair["value"]?.GetValue<string>() ?? ""));
        }
        return result;
    }

    private static int? Int(JsonNode? node) => node is JsonValue value ? value.GetValue<int>() : null;
}
