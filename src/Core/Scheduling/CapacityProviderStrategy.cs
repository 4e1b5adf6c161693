namespace Serverless.Core.Scheduling;

/// <summary>One entry of a capacity provider strategy: ECS's <c>CapacityProviderStrategyItem</c>.</summary>
public sealed record StrategyItem(string CapacityProvider, int Weight = 0, int Base = 0);

/// <summary>
/// How ECS spreads tasks over a capacity provider strategy: the provider with a <c>base</c> gets
/// that many tasks first; every task after that goes where it keeps the split closest to the
/// weights (providers of weight 0 get none beyond their base). Pure: the same counts give the same
/// answer, ties broken by the larger weight, then the strategy's order.
/// </summary>
public static class CapacityProviderStrategy
{
    /// <summary>
    /// The provider of each of <paramref name="count"/> new tasks, given how many tasks each
    /// provider already runs for the same service or launch (<paramref name="existing"/>).
    /// </summary>
    public static IReadOnlyList<string> Distribute(IReadOnlyList<StrategyItem> strategy, int count, IReadOnlyDictionary<string, int>? existing = null)
    {
        var running = strategy.ToDictionary(s => s.CapacityProvider, s => existing?.GetValueOrDefault(s.CapacityProvider) ?? 0, StringComparer.Ordinal);
        var result = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            var next = strategy.FirstOrDefault(s => running[s.CapacityProvider] < s.Base)
                ?? strategy.Where(s => s.Weight > 0)
                    // Beyond the bases, the provider furthest below its weighted share.
                    .OrderBy(s => (double)(running[s.CapacityProvider] - s.Base + 1) / s.Weight)
                    .ThenByDescending(s => s.Weight)
                    .ThenBy(s => Index(strategy, s))
                    .FirstOrDefault();
            if (next is null) break; // all weights 0: nothing beyond the bases (ECS refuses such a strategy first)
            running[next.CapacityProvider]++;
            result.Add(next.CapacityProvider);
        }
        return result;
    }

    private static int Index(IReadOnlyList<StrategyItem> strategy, StrategyItem item)
    {
        for (var i = 0; i < strategy.Count; i++)
        {
            if (ReferenceEquals(strategy[i], item)) return i;
        }
        return strategy.Count;
    }
}

/// <summary>Which hosts a launch may use: the pool of its capacity provider, the hidden Fargate pool, or the cluster's EC2 hosts.</summary>
public static class CapacityPools
{
    /// <param name="pool">A capacity provider's name (<c>FARGATE</c> for Fargate tasks), or null for the EC2 launch type.</param>
    public static IReadOnlyList<ContainerInstances.ContainerInstanceRecord> Eligible(IEnumerable<ContainerInstances.ContainerInstanceRecord> hosts, string? pool)
        => pool switch
        {
            // EC2 tasks go on any host the user sees (ECS places them on capacity providers' instances too).
            null => hosts.Where(h => !h.IsFargateHost).ToList(),
            Capacity.CapacityProviderNames.Fargate or Capacity.CapacityProviderNames.FargateSpot => hosts.Where(h => h.IsFargateHost).ToList(),
            _ => hosts.Where(h => h.CapacityProviderName == pool).ToList(),
        };
}
