using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Scheduling;

/// <summary>What one task needs from a host: cpu units, MiB, and the fixed host ports it binds.</summary>
public sealed record TaskNeed(int Cpu, int Memory, IReadOnlyList<int> TcpPorts, IReadOnlyList<int> UdpPorts)
{
    public Reservation ReservationFor(string taskId, string group) => new(taskId, Cpu, Memory, TcpPorts, UdpPorts) { Group = group };
}

/// <summary>A placement strategy as ECS models it: <c>random</c>, <c>spread</c> (field), <c>binpack</c> (cpu|memory).</summary>
public sealed record PlacementStrategy(string Type, string? Field = null);

/// <summary>
/// Everything a placement decision reads: the candidates, the group's current spread, the
/// binding rules, and the ordered strategy chain. Plain data, so decisions are pure and replayable.
/// </summary>
public sealed record PlacementRequest
{
    public required TaskNeed Need { get; init; }
    public required IReadOnlyList<ContainerInstanceRecord> Instances { get; init; }
    /// <summary>Tasks of the same group (service or task group) per instance id, not stopped.</summary>
    public IReadOnlyDictionary<string, int> GroupTasksPerInstance { get; init; } = new Dictionary<string, int>();

    /// <summary>The group's tasks per instance, read from the instances' reservations.</summary>
    public static Dictionary<string, int> CountGroup(IEnumerable<ContainerInstanceRecord> instances, string group)
        => instances.ToDictionary(i => i.Id, i => i.Reservations.Count(r => r.Group == group));
    public IReadOnlyList<PlacementStrategy> Strategies { get; init; } = [];
    /// <summary>Constraint <c>distinctInstance</c>: no two tasks of the group on one instance.</summary>
    public bool DistinctInstance { get; init; }
    /// <summary>Constraints <c>memberOf</c>, already compiled from the cluster query language.</summary>
    public IReadOnlyList<Func<ContainerInstanceRecord, bool>> MemberOf { get; init; } = [];
    /// <summary>
    /// The task definition's <c>requiresAttributes</c>: an instance must have each by name, and
    /// with the same value when one is given.
    /// </summary>
    public IReadOnlyList<InstanceAttribute> RequiredAttributes { get; init; } = [];
    public required DateTimeOffset Now { get; init; }
    public required TimeSpan AgentTimeout { get; init; }
    /// <summary>Source of randomness for the <c>random</c> strategy and for choosing among equally good instances (injected so tests can replay it).</summary>
    public Func<int, int> Random { get; init; } = System.Random.Shared.Next;
}

/// <summary>The chosen instance, or the ECS failure reason and the instance that came closest.</summary>
public sealed record PlacementDecision(ContainerInstanceRecord? Instance, string? Reason = null, ContainerInstanceRecord? Closest = null)
{
    public bool Placed => Instance is not null;
}

/// <summary>
/// ECS's placement: keep the instances that can take the task (status, agent, constraints,
/// resources, in that order — the first filter an instance fails names the failure reason),
/// then narrow them with each strategy of the chain in turn; ties break on the instance id so a
/// decision replays identically.
/// </summary>
public static class Placement
{
    public const string ReasonAgent = "AGENT";
    public const string ReasonAttribute = "ATTRIBUTE";
    public const string ReasonDistinctInstance = "DistinctInstance placement constraint unsatisfied.";
    public const string ReasonCpu = "RESOURCE:CPU";
    public const string ReasonMemory = "RESOURCE:MEMORY";
    public const string ReasonPorts = "RESOURCE:PORTS";
    public const string ReasonUdpPorts = "RESOURCE:PORTS_UDP";

    /// <summary>The default chain of a service (ECS: spread across availability zones), then instances.</summary>
    public static readonly IReadOnlyList<PlacementStrategy> ServiceDefault =
        [new("spread", "attribute:ecs.availability-zone"), new("spread", "instanceId")];

    /// <summary>Standalone tasks have no default strategy on ECS; any instance that fits will do.</summary>
    public static readonly IReadOnlyList<PlacementStrategy> RunTaskDefault = [new("random")];

    public static PlacementDecision Choose(PlacementRequest request)
    {
        var ordered = request.Instances
            .Where(i => i.Status == ContainerInstanceRecord.Active)
            .OrderBy(i => i.Id, StringComparer.Ordinal)
            .ToList();

        // Each stage keeps the instances passing it; the furthest any instance got is the reason.
        (string Reason, Func<ContainerInstanceRecord, bool> Passes)[] stages =
        [
            (ReasonAgent, i => i.IsAgentConnected(request.Now, request.AgentTimeout)),
            (ReasonAttribute, i => HasAll(i, request.RequiredAttributes) && request.MemberOf.All(m => m(i))),
            (ReasonDistinctInstance, i => !request.DistinctInstance || request.GroupTasksPerInstance.GetValueOrDefault(i.Id) == 0),
            (ReasonCpu, i => i.RemainingCpu >= request.Need.Cpu),
            (ReasonMemory, i => i.RemainingMemory >= request.Need.Memory),
            (ReasonPorts, i => !request.Need.TcpPorts.Intersect(i.UsedTcpPorts).Any()),
            (ReasonUdpPorts, i => !request.Need.UdpPorts.Intersect(i.UsedUdpPorts).Any()),
        ];

        var candidates = ordered;
        foreach (var (reason, passes) in stages)
        {
            var passing = candidates.Where(passes).ToList();
            if (passing.Count == 0)
            {
                return candidates.Count == 0
                    ? new PlacementDecision(null, ReasonAgent)
                    : new PlacementDecision(null, reason, Closest(candidates, request.Need));
            }
            candidates = passing;
        }

        foreach (var strategy in request.Strategies)
        {
            if (candidates.Count == 1) break;
            candidates = Narrow(strategy, candidates, request);
        }
        // Equally good instances: any of them (ECS promises no order), so placements deciding at once
        // from the same view of the cluster do not all race for the first one.
        return new PlacementDecision(candidates.Count == 1 ? candidates[0] : candidates[request.Random(candidates.Count)]);
    }

    /// <summary>Whether the instance has every required attribute: the name, and the value when one is required (ECS's match).</summary>
    public static bool HasAll(ContainerInstanceRecord instance, IReadOnlyList<InstanceAttribute> required)
        => required.All(r => instance.Attributes.Any(a => a.Name == r.Name && (r.Value is null || a.Value == r.Value)));

    private static List<ContainerInstanceRecord> Narrow(PlacementStrategy strategy, List<ContainerInstanceRecord> candidates, PlacementRequest request)
    {
        switch (strategy.Type)
        {
            case "binpack":
                // Fill the busiest host that still fits, so whole hosts stay free.
                Func<ContainerInstanceRecord, int> remaining = strategy.Field == "cpu" ? i => i.RemainingCpu : i => i.RemainingMemory;
                var least = candidates.Min(remaining);
                return candidates.Where(i => remaining(i) == least).ToList();

            case "spread":
                // Count the group's tasks per value of the field over every instance (not only the
                // candidates), then keep the candidates whose value holds the fewest.
                var field = strategy.Field ?? "instanceId";
                var perValue = request.Instances
                    .GroupBy(i => SpreadValue(i, field) ?? "")
                    .ToDictionary(g => g.Key, g => g.Sum(i => request.GroupTasksPerInstance.GetValueOrDefault(i.Id)));
                var fewest = candidates.Min(i => perValue[SpreadValue(i, field) ?? ""]);
                return candidates.Where(i => perValue[SpreadValue(i, field) ?? ""] == fewest).ToList();

            case "random":
                return [candidates[request.Random(candidates.Count)]];

            default:
                return candidates;
        }
    }

    private static string? SpreadValue(ContainerInstanceRecord instance, string field) => field switch
    {
        "instanceId" or "host" => instance.Id,
        _ when field.StartsWith("attribute:", StringComparison.Ordinal) => instance.Attribute(field["attribute:".Length..]),
        _ => null,
    };

    // The instance that would come closest to fitting: the most free memory, then cpu.
    private static ContainerInstanceRecord Closest(List<ContainerInstanceRecord> candidates, TaskNeed need)
        => candidates.OrderByDescending(i => i.RemainingMemory - need.Memory).ThenByDescending(i => i.RemainingCpu).First();
}
