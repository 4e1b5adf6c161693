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
        var taskCpu = ParseInt(TaskOverrides.Cpu(overrides)) ?? ParseInt(definition.View.Cpu);
        var taskMemory = ParseInt(TaskOverrides.Memory(overrides)) ?? ParseInt(definition.View.Memory);
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
        var byName = TaskOverrides.ContainerOverrides(overrides);
        return definition.Containers.Select(c =>
        {
            var name = c.Name;
            byName.TryGetValue(name, out var o);
            return new TaskContainer
            {
                Name = name,
                Id = Guid.NewGuid().ToString(),
                Image = c.Image,
                Cpu = o?.Cpu ?? c.Cpu,
                Memory = o?.Memory ?? c.Memory,
                MemoryReservation = o?.MemoryReservation ?? c.MemoryReservation,
            };
        }).ToList();
    }

    /// <summary>Names in <c>containerOverrides</c> that the definition does not have.</summary>
    public static IEnumerable<string> UnknownOverrideNames(TaskDefinitionRecord definition, JsonObject? overrides)
    {
        var names = definition.Containers.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        return TaskOverrides.ContainerNames(overrides).Where(n => !names.Contains(n));
    }

    private static int? ParseInt(string? text) => int.TryParse(text, out var value) ? value : null;
}
