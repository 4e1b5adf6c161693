using System.Text.Json.Nodes;
using Serverless.Core.Scheduling;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Tasks;

/// <summary>
/// What a task of a definition (with RunTask overrides) reserves on its host, as ECS accounts it:
/// task-level cpu/memory when set, else the containers' sums (memory: the hard limit, or the soft
/// reservation where no hard limit is set); fixed host ports (bridge: hostPort &gt; 0; host mode:
/// every container port; awsvpc: none). Dynamic ports (hostPort 0) are Docker's to pick and are not reserved.
/// </summary>
public static class TaskSizing
{
    public static TaskNeed Need(TaskDefinitionRecord definition, JsonObject? overrides)
    {
        var containers = Containers(definition, overrides);
        var taskCpu = ParseInt(overrides?["cpu"]) ?? ParseInt(definition.View.Cpu);
        var taskMemory = ParseInt(overrides?["memory"]) ?? ParseInt(definition.View.Memory);
        var cpu = taskCpu ?? containers.Sum(c => c.Cpu);
        var memory = taskMemory ?? containers.Sum(c => c.Memory ?? c.MemoryReservation ?? 0);

        var networkMode = definition.NetworkMode;
        var hostMode = networkMode == TaskDefinitionDefaults.Host;
        // awsvpc: the task has its own address, so its ports take nothing from the host's.
        if (networkMode == TaskDefinitionDefaults.AwsVpc) return new TaskNeed(cpu, memory, [], []);
        var tcp = new List<int>();
        var udp = new List<int>();
        foreach (var mapping in definition.Containers.SelectMany(c => c.PortMappings))
        {
            var containerPort = mapping.ContainerPort ?? 0;
            var hostPort = hostMode ? containerPort : mapping.HostPort ?? 0;
            if (hostPort <= 0) continue;
            (mapping.Protocol == "udp" ? udp : tcp).Add(hostPort);
        }
        return new TaskNeed(cpu, memory, tcp, udp);
    }

    /// <summary>The task's containers with their sizes after overrides, in definition order.</summary>
    public static IReadOnlyList<TaskContainer> Containers(TaskDefinitionRecord definition, JsonObject? overrides)
    {
        var byName = (overrides?["containerOverrides"] as JsonArray ?? [])
            .OfType<JsonObject>()
            .Where(o => o["name"] is not null)
            .ToDictionary(o => o["name"]!.GetValue<string>(), StringComparer.Ordinal);
        return definition.Containers.Select(c =>
        {
            var name = c.Name;
            byName.TryGetValue(name, out var o);
            return new TaskContainer
            {
                Name = name,
                Id = Guid.NewGuid().ToString(),
                Image = c.Image,
                Cpu = o?["cpu"]?.GetValue<int>() ?? c.Cpu,
                Memory = o?["memory"]?.GetValue<int>() ?? c.Memory,
                MemoryReservation = o?["memoryReservation"]?.GetValue<int>() ?? c.MemoryReservation,
            };
        }).ToList();
    }

    /// <summary>Names in <c>containerOverrides</c> that the definition does not have.</summary>
    public static IEnumerable<string> UnknownOverrideNames(TaskDefinitionRecord definition, JsonObject? overrides)
    {
        var names = definition.Containers.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        return (overrides?["containerOverrides"] as JsonArray ?? [])
            .Select(o => o?["name"]?.GetValue<string>())
            .Where(n => n is not null && !names.Contains(n))
            .Select(n => n!);
    }

    private static int? ParseInt(JsonNode? node) => ParseInt(node?.GetValue<string>());

    private static int? ParseInt(string? text) => int.TryParse(text, out var value) ? value : null;
}
