using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// The reads the minute's sweeps share: <see cref="InstanceHealthSweep"/> and <see cref="Tasks.TaskDeliverySweep"/>
/// both walk every ACTIVE cluster and read each one's instances, a few seconds apart. Their timers pass the same
/// <see cref="Round"/> (one per minute), so those reads are made once a minute instead of once per sweep: on an
/// idle cluster two storage requests a minute fewer. A sweep called without a round (tests, the scale simulation's
/// probe) reads for itself, as before. What a round read is as old as the first sweep of the minute; each sweep
/// decides on it as of when it was read, and acts through conditional writes, as it would on its own read.
/// </summary>
public sealed class SweepReads(ClusterStore clusters, ContainerInstanceStore instances, TimeProvider time)
{
    /// <summary>The oldest a shared read may be to serve another sweep (its timer late, the first sweep slow): else it is read again.</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(20);

    private readonly Lock _gate = new();
    private Round? _current;

    /// <summary>The round of the minute <paramref name="at"/> falls in (a new one each minute; the last one is forgotten).</summary>
    public Round For(DateTimeOffset at)
    {
        var minute = at.ToUnixTimeSeconds() / 60;
        lock (_gate)
        {
            if (_current is null || _current.Minute != minute) _current = new Round(minute, clusters, instances, time);
            return _current;
        }
    }

    /// <summary>
    /// Runs <paramref name="sweepCluster"/> for every ACTIVE cluster, the one walk both sweeps make: on
    /// <paramref name="shared"/>'s reads, or without a round enumerated from <paramref name="clusters"/> (the sweep
    /// then gets a null round and reads for itself).
    /// </summary>
    public static async Task ForEachActiveClusterAsync(
        ClusterStore clusters, Round? shared, Func<string, Round?, CancellationToken, Task> sweepCluster, CancellationToken cancellationToken)
    {
        if (shared is null)
        {
            await foreach (var cluster in clusters.EnumerateActiveAsync(cancellationToken))
                await sweepCluster(cluster.Name, null, cancellationToken);
            return;
        }
        foreach (var cluster in await shared.ActiveClustersAsync(cancellationToken))
            await sweepCluster(cluster.Name, shared, cancellationToken);
    }

    /// <summary>One minute's shared reads. A read that failed is not kept: the next sweep reads again.</summary>
    public sealed class Round
    {
        private readonly ClusterStore _clusters;
        private readonly ContainerInstanceStore _instances;
        private readonly TimeProvider _time;
        private readonly Lock _gate = new();
        private (DateTimeOffset At, Task<IReadOnlyList<ClusterRecord>> Read)? _active;
        private readonly Dictionary<string, (DateTimeOffset At, Task<(IReadOnlyList<ContainerInstanceRecord>, DateTimeOffset)> Read)> _hosts = new(StringComparer.Ordinal);

        internal Round(long minute, ClusterStore clusters, ContainerInstanceStore instances, TimeProvider time)
        {
            Minute = minute;
            _clusters = clusters;
            _instances = instances;
            _time = time;
        }

        internal long Minute { get; }

        /// <summary>Every ACTIVE cluster, read once in this round.</summary>
        public Task<IReadOnlyList<ClusterRecord>> ActiveClustersAsync(CancellationToken cancellationToken)
        {
            var now = _time.GetUtcNow();
            lock (_gate)
            {
                if (_active is not { } seen || !Usable(seen.At, seen.Read, now)) _active = seen = (now, ReadClustersAsync());
                return seen.Read.WaitAsync(cancellationToken);
            }
        }

        /// <summary>The cluster's instances, read once in this round, and when they were read.</summary>
        public Task<(IReadOnlyList<ContainerInstanceRecord> Instances, DateTimeOffset ReadAt)> InstancesAsync(string cluster, CancellationToken cancellationToken)
        {
            var now = _time.GetUtcNow();
            lock (_gate)
            {
                if (!_hosts.TryGetValue(cluster, out var seen) || !Usable(seen.At, seen.Read, now)) _hosts[cluster] = seen = (now, ReadInstancesAsync(cluster));
                return seen.Read.WaitAsync(cancellationToken);
            }
        }

        private static bool Usable(DateTimeOffset at, Task read, DateTimeOffset now) => !read.IsFaulted && !read.IsCanceled && now - at <= MaxAge;

        private async Task<IReadOnlyList<ClusterRecord>> ReadClustersAsync()
        {
            var all = new List<ClusterRecord>();
            // Not cancelled by one sweep: the other may be waiting on it.
            await foreach (var cluster in _clusters.EnumerateActiveAsync(CancellationToken.None)) all.Add(cluster);
            return all;
        }

        private async Task<(IReadOnlyList<ContainerInstanceRecord>, DateTimeOffset)> ReadInstancesAsync(string cluster)
        {
            var readAt = _time.GetUtcNow();
            return (await _instances.ListAsync(cluster, CancellationToken.None), readAt);
        }
    }
}
