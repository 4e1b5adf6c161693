using System.Globalization;
using Docker.DotNet.Models;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Docker;

/// <summary>How a task's status and health follow from its containers, as the ECS agent derives them. Pure.</summary>
public static class TaskStatusRules
{
    /// <summary>
    /// A task is RUNNING once every container has started or is done (a non-essential container
    /// that exited, or that will never start, does not hold the task back) and no essential
    /// container has stopped.
    /// </summary>
    public static bool IsRunning(IReadOnlyCollection<ContainerSnapshot> containers)
        => containers.Count > 0
           && containers.All(c => c.Status is ContainerKnownStatus.Running or ContainerKnownStatus.Stopped)
           && !containers.Any(c => c.Essential && c.Status == ContainerKnownStatus.Stopped);

    /// <summary>
    /// The task's health from its essential containers that have health checks: UNHEALTHY if any is,
    /// HEALTHY when all are, UNKNOWN otherwise (also when none has a health check).
    /// </summary>
    public static string TaskHealth(IEnumerable<ContainerSnapshot> containers)
    {
        var checkedEssentials = containers.Where(c => c.Essential && c.HasHealthCheck).ToList();
        if (checkedEssentials.Count == 0) return HealthStatus.Unknown;
        if (checkedEssentials.Any(c => c.Health == HealthStatus.Unhealthy)) return HealthStatus.Unhealthy;
        return checkedEssentials.All(c => c.Health == HealthStatus.Healthy) ? HealthStatus.Healthy : HealthStatus.Unknown;
    }

    /// <summary>
    /// Whether a report should go out after <paramref name="lastStatus"/>/<paramref name="lastFingerprint"/>
    /// was sent: never after STOPPED, never backwards, and not again when nothing changed.
    /// </summary>
    public static bool ShouldReport(string? lastStatus, string? lastFingerprint, string status, string fingerprint)
    {
        if (lastStatus is null) return true;
        if (lastStatus == EcsTaskStatus.Stopped) return false;
        var (last, next) = (EcsTaskStatus.Rank(lastStatus), EcsTaskStatus.Rank(status));
        if (next != last) return next > last;
        return fingerprint != lastFingerprint;
    }

    /// <summary>
    /// Containers in an order that creates every <see cref="ContainerPlan.CreateAfter"/> source first
    /// (definition order otherwise). Sources that form a cycle or do not exist are ignored.
    /// </summary>
    public static IReadOnlyList<ContainerPlan> CreateOrder(IReadOnlyList<ContainerPlan> containers)
    {
        var byName = containers.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var ordered = new List<ContainerPlan>();
        var visiting = new HashSet<string>(StringComparer.Ordinal);
        var done = new HashSet<string>(StringComparer.Ordinal);
        void Visit(ContainerPlan container)
        {
            if (done.Contains(container.Name) || !visiting.Add(container.Name)) return;
            foreach (var source in container.CreateAfter)
            {
                if (byName.TryGetValue(source, out var dependency)) Visit(dependency);
            }
            visiting.Remove(container.Name);
            if (done.Add(container.Name)) ordered.Add(container);
        }
        foreach (var container in containers) Visit(container);
        return ordered;
    }

    /// <summary>The containers that depend on each container (dependsOn, links, volumesFrom): they stop before it does.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Dependents(IReadOnlyList<ContainerPlan> containers)
    {
        var result = containers.ToDictionary(c => c.Name, _ => new List<string>(), StringComparer.Ordinal);
        foreach (var container in containers)
        {
            foreach (var dependency in container.DependsOn.Select(d => d.ContainerName).Concat(container.CreateAfter).Distinct())
            {
                if (result.TryGetValue(dependency, out var dependents) && dependency != container.Name) dependents.Add(container.Name);
            }
        }
        return result.ToDictionary(p => p.Key, p => (IReadOnlyList<string>)p.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// ECS network bindings from a container's inspected ports. Bridge mode: where Docker really
    /// published each mapping (the port it picked for host port 0), the IPv4 binding when there is
    /// one. Host mode: the container's ports are the host's. No bindings in none mode.
    /// </summary>
    public static IReadOnlyList<NetworkBinding> NetworkBindings(
        IDictionary<string, IList<PortBinding>>? inspectedPorts, string networkMode, IReadOnlyList<PortMappingPlan> mappings)
    {
        if (networkMode == "host")
            return mappings.Select(m => new NetworkBinding("0.0.0.0", m.ContainerPort, m.HostPort, m.Protocol)).ToList();
        if (networkMode != "bridge" || inspectedPorts is null) return [];
        var result = new List<NetworkBinding>();
        foreach (var mapping in mappings)
        {
            if (!inspectedPorts.TryGetValue(TaskTranslation.PortKey(mapping.ContainerPort, mapping.Protocol), out var bindings) || bindings is null) continue;
            var binding = bindings.FirstOrDefault(b => b.HostIP is "0.0.0.0" or "" or null) ?? bindings.FirstOrDefault();
            if (binding is null || !int.TryParse(binding.HostPort, NumberStyles.None, CultureInfo.InvariantCulture, out var hostPort)) continue;
            result.Add(new NetworkBinding("0.0.0.0", mapping.ContainerPort, hostPort, mapping.Protocol));
        }
        return result;
    }
}
