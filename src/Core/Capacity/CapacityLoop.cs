using Microsoft.Extensions.Logging;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Metrics;
using Serverless.Core.Reconciliation;
using Serverless.Core.Scheduling;
using Serverless.Core.Services;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;

namespace Serverless.Core.Capacity;

/// <summary>Settings of capacity providers (section <c>Capacity</c>, app settings <c>Capacity__*</c>).</summary>
public sealed class CapacityOptions
{
    /// <summary>How often managed scaling measures <c>CapacityProviderReservation</c> and resizes pools (ECS: every minute).</summary>
    public int ScalingSeconds { get; set; } = 60;

    /// <summary>How long a pool must want fewer instances before scale-in (the 15 one-minute datapoints of ECS's low alarm).</summary>
    public int ScaleInAfterSeconds { get; set; } = 900;

    /// <summary>How long a task waits in PROVISIONING for capacity before it is stopped.</summary>
    public int ProvisioningTimeoutSeconds { get; set; } = 1800;

    /// <summary>Pools that are Azure VM scale sets (<c>Capacity__ScaleSets__0__Pool</c>, <c>__ResourceId</c>, ...), converged by <see cref="ScaleSetPools"/>.</summary>
    public List<ScaleSetOptions> ScaleSets { get; set; } = [];

    /// <summary>Azure Resource Manager's endpoint, for <see cref="ScaleSets"/>.</summary>
    public string ArmEndpoint { get; set; } = "https://management.azure.com/";
}

/// <summary>
/// The capacity loop, on a frequent timer. Every tick it tries to place the tasks that wait in
/// PROVISIONING for room in their capacity provider's pool (room appears when an instance registers
/// or a task stops), and stops those that waited longer than
/// <see cref="CapacityOptions.ProvisioningTimeoutSeconds"/>. Every
/// <see cref="CapacityOptions.ScalingSeconds"/> it runs managed scaling for each capacity provider
/// with managed scaling ENABLED: measures and publishes <c>CapacityProviderReservation</c>
/// (namespace <c>AWS/ECS/ManagedScaling</c>, dimensions CapacityProviderName and ClusterName), sets the
/// pool's desired size (<see cref="ManagedScaling.Decide"/>), drains the instances scale-in picks and
/// deregisters them once the pool agent has stopped their workers. Every decision is re-read and
/// written conditionally, so two control planes running it at once change nothing twice.
/// </summary>
public sealed class CapacityLoop(
    WaitingTaskStore waiting,
    WorkerPoolStore pools,
    CapacityProviderStore providers,
    ClusterStore clusters,
    ContainerInstanceStore instances,
    TaskStore tasks,
    TaskDefinitionStore definitions,
    ServiceStore services,
    TaskLauncher launcher,
    ReconcileQueue reconcile,
    ServiceResync resync,
    CustomMetricStore metrics,
    CapacityOptions options,
    TimeProvider time,
    ILogger<CapacityLoop> logger,
    SweepReads? sweepReads = null,
    ScaleSetPools? scaleSets = null)
{
    public const string MetricNamespace = "AWS/ECS/ManagedScaling";
    public const string MetricName = "CapacityProviderReservation";
    public const string ProvisioningTimeoutReason = "Timeout waiting for capacity to become available in the capacity provider.";
    private const int MaxWaitingPerTick = 500;

    /// <summary>
    /// How often the waiting tasks are read while the last read found none and this process added none
    /// since: a task another control plane put waiting is looked at up to this late the first time.
    /// </summary>
    public static readonly TimeSpan NoneWaitingReadInterval = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The wake (<see cref="Storage.QueueWake"/>) that makes this process look at its waiting tasks at once: a
    /// worker that registers sends it to the control planes whose tasks wait in its cluster (their waiting rows
    /// name them), so a task that waited for that worker is placed without waiting for the next tick.
    /// </summary>
    public const string WakeName = "capacity-loop";

    /// <summary>One look at the waiting tasks at a time in this process (the timer's tick, a wake's).</summary>
    private readonly SemaphoreSlim _placing = new(1, 1);

    private long _lastSlot = -1;
    private DateTimeOffset? _noneWaitingUntil;
    private long _addsSeen = -1;

    public async Task TickAsync(CancellationToken cancellationToken)
    {
        var stillWaiting = await PlaceWaitingAsync(cancellationToken);
        var slot = time.GetUtcNow().ToUnixTimeSeconds() / Math.Max(1, options.ScalingSeconds);
        if (Interlocked.Exchange(ref _lastSlot, slot) == slot) return;
        await ScaleAllAsync(stillWaiting, cancellationToken);
        // Scale-set pools follow the decision at once (local pools have their own agent).
        if (scaleSets is not null) await scaleSets.ConvergeAllAsync(cancellationToken);
    }

    /// <summary>Places what now fits; returns the tasks still waiting, per cluster and provider.</summary>
    public async Task<IReadOnlyList<TaskRecord>> PlaceWaitingAsync(CancellationToken cancellationToken)
    {
        await _placing.WaitAsync(cancellationToken);
        try
        {
            return await PlaceWaitingOnceAsync(cancellationToken);
        }
        finally
        {
            _placing.Release();
        }
    }

    private async Task<IReadOnlyList<TaskRecord>> PlaceWaitingOnceAsync(CancellationToken cancellationToken)
    {
        var still = new List<TaskRecord>();
        var now = time.GetUtcNow();
        // None waiting at the last read, none added here since: an idle tick need not read the table.
        var adds = waiting.LocalAdds;
        if (_noneWaitingUntil is { } until && now < until && adds == _addsSeen) return still;
        _addsSeen = adds;
        var definitionCache = new Dictionary<string, TaskDefinitionRecord?>(StringComparer.Ordinal);
        var rulesCache = new Dictionary<(string, string), PlacementRules>();
        var entries = await waiting.ListAsync(MaxWaitingPerTick, cancellationToken);
        _noneWaitingUntil = entries.Count == 0 ? now + NoneWaitingReadInterval : null;
        foreach (var cluster in entries.GroupBy(w => w.Cluster))
        {
            var hosts = await instances.ListAsync(cluster.Key, cancellationToken);
            var byPool = new Dictionary<string, List<ContainerInstanceRecord>>(StringComparer.Ordinal);
            var touched = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in cluster)
            {
                try
                {
                    var task = await tasks.FindAsync(entry.Cluster, entry.TaskId, cancellationToken);
                    if (task is null)
                    {
                        // The index row goes in before the task row: only an old one is an orphan.
                        if (now - entry.Since > TimeSpan.FromMinutes(1)) await waiting.RemoveAsync(entry.Cluster, entry.TaskId, cancellationToken);
                        continue;
                    }
                    if (!task.IsWaitingForCapacity)
                    {
                        await waiting.RemoveAsync(entry.Cluster, entry.TaskId, cancellationToken);
                        continue;
                    }
                    if (task.DesiredStatus == EcsTaskStatus.Stopped)
                    {
                        await launcher.SendStopAsync(task, cancellationToken);   // records it STOPPED: no worker has it
                        touched.Add(task.Group);
                        continue;
                    }
                    if (now - task.CreatedAt >= TimeSpan.FromSeconds(options.ProvisioningTimeoutSeconds))
                    {
                        await ExpireAsync(task, now, cancellationToken);
                        touched.Add(task.Group);
                        continue;
                    }
                    if (!definitionCache.TryGetValue(task.TaskDefinitionArn, out var definition))
                        definitionCache[task.TaskDefinitionArn] = definition = await definitions.FindByReferenceAsync(task.TaskDefinitionArn, cancellationToken);
                    if (definition is null) continue;
                    var provider = task.CapacityProviderName ?? entry.CapacityProvider;
                    if (!byPool.TryGetValue(provider, out var pool)) byPool[provider] = pool = [.. CapacityPools.Eligible(hosts, provider)];
                    var rules = await RulesAsync(task, entry, rulesCache, cancellationToken);
                    var placed = await launcher.PlaceWaitingAsync(task, definition, pool, rules, cancellationToken);
                    if (placed is null) still.Add(task);
                    else
                    {
                        if (!placed.IsWaitingForCapacity) await waiting.RemoveAsync(entry.Cluster, entry.TaskId, cancellationToken);
                        touched.Add(task.Group);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning("Could not look at waiting task {TaskId} of {Cluster}: {Error}", entry.TaskId, entry.Cluster, e.Message);
                }
            }
            foreach (var group in touched.Where(g => g.StartsWith(TaskRecord.ServiceGroupPrefix, StringComparison.Ordinal)))
                await reconcile.EnqueueAsync(new ServiceKey(cluster.Key, group[TaskRecord.ServiceGroupPrefix.Length..]), null, cancellationToken);
        }
        return still;
    }

    /// <summary>
    /// How a waiting task is placed: a service's task by the service's strategies and constraints as they are now
    /// (a distinctInstance service keeps one task per instance as its pool grows), a standalone one by its
    /// RunTask's own, kept on its waiting row (RunTask's default for a row from before they were kept).
    /// </summary>
    private async Task<PlacementRules> RulesAsync(TaskRecord task, WaitingTask entry, Dictionary<(string, string), PlacementRules> cache, CancellationToken cancellationToken)
    {
        if (task.ServiceName is not { } name) return entry.Placement?.Rules() ?? PlacementRules.RunTaskDefault;
        if (cache.TryGetValue((task.Cluster, name), out var rules)) return rules;
        var service = await services.FindAsync(task.Cluster, name, cancellationToken);
        return cache[(task.Cluster, name)] = service is null ? new PlacementRules(Placement.ServiceDefault, false, []) : PlacementRules.Of(service);
    }

    private async Task ExpireAsync(TaskRecord task, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var stopped = await tasks.UpdateAsync(task.Cluster, task.Id,
            t => t.IsWaitingForCapacity ? t.RecordStopped("TaskFailedToStart", ProvisioningTimeoutReason, now) : null, cancellationToken);
        await waiting.RemoveAsync(task.Cluster, task.Id, cancellationToken);
        if (stopped is { IsStopped: true })
            logger.LogWarning("Stopped {TaskId} of {Cluster}: it waited for capacity in {CapacityProvider} since {CreatedAt}",
                task.Id, task.Cluster, task.CapacityProviderName, task.CreatedAt);
    }

    /// <summary>Managed scaling for every cluster's capacity providers with managed scaling ENABLED.</summary>
    public async Task ScaleAllAsync(IReadOnlyList<TaskRecord> stillWaiting, CancellationToken cancellationToken)
    {
        // The minute's list of clusters, shared with the sweeps that run a few seconds later (SweepReads).
        var active = sweepReads is null
            ? await clusters.EnumerateActiveAsync(cancellationToken).ToListAsync(cancellationToken)
            : await sweepReads.For(time.GetUtcNow()).ActiveClustersAsync(cancellationToken);
        foreach (var cluster in active)
        {
            var names = LaunchTargets.Associated(cluster).Where(n => !CapacityProviderNames.IsFargate(n)).ToList();
            if (names.Count == 0) continue;
            try
            {
                var hosts = await instances.ListAsync(cluster.Name, cancellationToken);
                var (daemons, _) = await services.ListAsync(cluster.Name, null, 100, null, ServiceRecord.Daemon, cancellationToken);
                var daemonGroups = daemons.Select(d => $"service:{d.Name}").ToHashSet(StringComparer.Ordinal);
                foreach (var name in names)
                {
                    var provider = await providers.FindAsync(name, cancellationToken);
                    if (provider is not { Status: CapacityProviderRecord.Active }) continue;
                    var view = new PoolView
                    {
                        Instances = [.. CapacityPools.Eligible(hosts, name).Where(h => h.IsRegistered)],
                        Waiting = [.. stillWaiting.Where(t => t.Cluster == cluster.Name && t.CapacityProviderName == name).Select(t => (t.Cpu, t.Memory))],
                        DaemonGroups = daemonGroups,
                    };
                    await ScaleAsync(cluster.Name, provider, view, cancellationToken);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Managed scaling of {Cluster} failed: {Error}", cluster.Name, e.Message);
            }
        }
    }

    private async Task ScaleAsync(string cluster, CapacityProviderRecord provider, PoolView view, CancellationToken cancellationToken)
    {
        var settings = ManagedScalingSettings.Of(provider.AutoScalingGroupProvider);
        if (!settings.Enabled) return;
        var poolName = WorkerPoolRecord.NameOf(provider.AutoScalingGroupProvider["autoScalingGroupArn"]?.GetValue<string>() ?? "");
        var pool = await pools.FindAsync(poolName, cancellationToken);
        if (pool is null)
        {
            logger.LogInformation("Capacity provider {CapacityProvider}: no pool agent runs pool {Pool}; nothing to scale", provider.Name, poolName);
            return;
        }
        var shapeFrom = view.Instances.OrderByDescending(i => i.RegisteredMemory).FirstOrDefault();
        view = view with
        {
            InstanceCpu = pool.InstanceCpu > 0 ? pool.InstanceCpu : shapeFrom?.RegisteredCpu ?? 0,
            InstanceMemory = pool.InstanceMemory > 0 ? pool.InstanceMemory : shapeFrom?.RegisteredMemory ?? 0,
        };
        var now = time.GetUtcNow();
        var reservation = ManagedScaling.Measure(view);
        await metrics.AddAsync([(MetricId.Of(MetricNamespace, MetricName, new Dictionary<string, string>
        {
            ["CapacityProviderName"] = provider.Name,
            ["ClusterName"] = cluster,
        }), new CustomSample(now, reservation.Value, 1, reservation.Value, reservation.Value, "Percent"))], cancellationToken);

        await DeregisterTerminatedAsync(cluster, pool, view, cancellationToken);
        pool = await pools.FindAsync(poolName, cancellationToken) ?? pool;

        var low = ManagedScaling.IsLow(reservation, settings, pool);
        var protection = provider.AutoScalingGroupProvider["managedTerminationProtection"]?.GetValue<string>() == "ENABLED";
        var step = ManagedScaling.Decide(view, reservation, settings, pool with { LowSince = low ? pool.LowSince ?? now : null }, protection, now,
            TimeSpan.FromSeconds(options.ScaleInAfterSeconds));
        IReadOnlyList<string> terminate = [];
        if (step is { Terminate.Count: > 0 }) terminate = await DrainAsync(cluster, step.Terminate, view.DaemonGroups, protection, cancellationToken);
        if (step is not null && step.Terminate.Count > 0 && terminate.Count == 0) step = null;   // every pick took a task meanwhile

        await pools.UpdateAsync(poolName, p =>
        {
            if (step is null)
            {
                DateTimeOffset? lowSince = low ? p.LowSince ?? now : null;
                return lowSince == p.LowSince ? null : p with { LowSince = lowSince };
            }
            var desired = step.Terminate.Count > 0 ? p.DesiredCapacity - terminate.Count : step.DesiredCapacity;
            return p with
            {
                DesiredCapacity = Math.Clamp(desired, p.MinSize, Math.Max(p.MinSize, p.MaxSize)),
                Terminate = [.. p.Terminate.Union(terminate)],
                LastScaleOutAt = step.Terminate.Count == 0 ? now : p.LastScaleOutAt,
                LowSince = null,
            };
        }, cancellationToken);
        logger.LogInformation(
            "Managed scaling of {CapacityProvider} in {Cluster}: CapacityProviderReservation {Value} (M {Needed}, N {Present}), pool {Pool} desired {Desired}{Change}",
            provider.Name, cluster, reservation.Value, reservation.Needed, reservation.Present, poolName, pool.DesiredCapacity,
            step is null ? "" : $" -> {(step.Terminate.Count > 0 ? pool.DesiredCapacity - terminate.Count : step.DesiredCapacity)} ({step.Why}{(terminate.Count > 0 ? "; terminating " + string.Join(' ', terminate) : "")})");
    }

    /// <summary>
    /// Drains the instances scale-in picked (nothing new is placed on a DRAINING instance), then keeps
    /// only those still idle after the drain was written: one a task reached meanwhile goes back to
    /// ACTIVE under managed termination protection.
    /// </summary>
    private async Task<IReadOnlyList<string>> DrainAsync(
        string cluster, IReadOnlyList<string> ids, IReadOnlySet<string> daemonGroups, bool protection, CancellationToken cancellationToken)
    {
        var kept = new List<string>();
        foreach (var id in ids)
        {
            var drained = await instances.UpdateAsync(cluster, id, i => i with { Status = ContainerInstanceRecord.Draining }, cancellationToken);
            if (protection && ManagedScaling.IsBusy(drained, daemonGroups))
            {
                await instances.UpdateAsync(cluster, id, i => i with { Status = ContainerInstanceRecord.Active }, cancellationToken);
                continue;
            }
            kept.Add(id);
        }
        if (kept.Count > 0) await resync.ResyncClusterAsync(cluster, cancellationToken);
        return kept;
    }

    /// <summary>
    /// The instances the agent was asked to terminate and no longer runs are deregistered (as a
    /// terminated EC2 instance leaves its cluster) and dropped from the pool's list.
    /// </summary>
    private async Task DeregisterTerminatedAsync(string cluster, WorkerPoolRecord pool, PoolView view, CancellationToken cancellationToken)
    {
        var gone = pool.Terminate.Where(id => !pool.Running.Contains(id)).ToList();
        if (gone.Count == 0) return;
        foreach (var id in gone)
        {
            if (view.Instances.All(i => i.Id != id)) continue;
            await instances.UpdateAsync(cluster, id, i => i with { Status = ContainerInstanceRecord.Inactive }, cancellationToken);
            logger.LogInformation("Deregistered container instance {InstanceId} of {Cluster}: pool {Pool} terminated its worker", id, cluster, pool.Name);
        }
        await pools.UpdateAsync(pool.Name, p => p with { Terminate = [.. p.Terminate.Except(gone)] }, cancellationToken);
        await resync.ResyncClusterAsync(cluster, cancellationToken);
    }
}
