using System.Text.Json.Nodes;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Tasks;

/// <summary>One entry of a task's <c>overrides.containerOverrides</c>, as RunTask took it.</summary>
public sealed record ContainerOverride(
    string Name,
    IReadOnlyList<string>? Command,
    IReadOnlyList<KeyValuePair<string, string>> Environment,
    int? Cpu,
    int? Memory,
    int? MemoryReservation);

/// <summary>
/// Reads ECS's <c>TaskOverride</c> JSON, the one place its members are named; unknown members are
/// ignored. The JSON itself is stored and passed on untouched.
/// </summary>
public static class TaskOverrides
{
    /// <summary>The container overrides by container name (the last one wins when a name repeats; RunTask refuses repeats).</summary>
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

    /// <summary>The container names the overrides give, in order, repeats included (what RunTask checks).</summary>
    public static IEnumerable<string> ContainerNames(JsonObject? overrides)
        => (overrides?["containerOverrides"] as JsonArray ?? []).Select(o => o?["name"]?.GetValue<string>()).OfType<string>();

    /// <summary>The task-level cpu override, as the wire carries it (a string); null when not overridden.</summary>
    public static string? Cpu(JsonObject? overrides) => TaskDefinitionView.Text(overrides?["cpu"]);

    /// <summary>The task-level memory override, as the wire carries it (a string); null when not overridden.</summary>
    public static string? Memory(JsonObject? overrides) => TaskDefinitionView.Text(overrides?["memory"]);

    /// <summary>An ECS <c>environment</c> list (<c>[{name, value}]</c>) as name/value pairs, in order.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Environment(JsonArray? environment)
        => ContainerDefinitionView.NameValues(environment);

    private static int? Int(JsonNode? node) => node is JsonValue value ? value.GetValue<int>() : null;
}
