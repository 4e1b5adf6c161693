using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Queues;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Capacity;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Scheduling;
using Serverless.Core.Storage;
using Serverless.Core.Tags;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Tasks;

/// <summary>What to launch: <see cref="Count"/> tasks of one definition in one group.</summary>
public sealed record LaunchRequest
{
    public required string Cluster { get; init; }
    public required TaskDefinitionRecord Definition { get; init; }
    public required int Count { get; init; }
    public required string Group { get; init; }
    public JsonObject? Overrides { get; init; }
    public string? StartedBy { get; init; }
    /// <summary>RunTask's <c>clientToken</c>, kept on each task row (<see cref="TaskRecord.ClientToken"/>).</summary>
    public string? ClientToken { get; init; }
    public IReadOnlyList<Tag> Tags { get; init; } = [];
    /// <summary>An <c>awsvpc</c> definition's checked network configuration: each task gets an interface in it.</summary>
    public AwsVpcConfiguration? Network { get; init; }
    public string LaunchType { get; init; } = "EC2";
    public string? PlatformVersion { get; init; }
    public string? CapacityProviderName { get; init; }
    /// <summary>RunTask: the capacity provider strategy its tasks are spread over (empty: one pool).</summary>
    public IReadOnlyList<StrategyItem> CapacityProviderStrategy { get; init; } = [];
    /// <summary>
    /// Whether a task that finds no room waits in PROVISIONING for its pool to grow, as ECS does
    /// with an Auto Scaling group capacity provider, rather than failing.
    /// </summary>
    public bool WaitsForCapacity => CapacityProviderName is { } provider && !CapacityProviderNames.IsFargate(provider) && OnInstances is null;
    /// <summary>The hosts this launch may use: its capacity provider's pool, Fargate's, or (null) the EC2 hosts.</summary>
    public string? Pool => CapacityProviderName ?? (LaunchType == LaunchTargets.Fargate ? CapacityProviderNames.Fargate : null);
    public IReadOnlyList<PlacementStrategy> Strategies { get; init; } = Placement.RunTaskDefault;
    public bool DistinctInstance { get; init; }
    public IReadOnlyList<Func<ContainerInstanceRecord, bool>> MemberOf { get; init; } = [];
    /// <summary>The <c>memberOf</c> expressions <see cref="MemberOf"/> was compiled from: kept with a task that waits for capacity.</summary>
    public IReadOnlyList<string> MemberOfExpressions { get; init; } = [];
    /// <summary>StartTask: one task on each of these instances, no strategy.</summary>
    public IReadOnlyList<string>? OnInstances { get; init; }
    /// <summary>
    /// Asked before each step of placement (a service reconcile's lease check): before each round of
    /// tasks placed together, and before each task placed alone; false places nothing more, and the
    /// tasks placed so far are started as usual.
    /// </summary>
    public Func<CancellationToken, Task<bool>>? KeepPlacing { get; init; }
}

/// <summary>A task that could not be placed or started, as ECS reports it in <c>failures</c>.</summary>
public sealed record LaunchFailure(string? Arn, string Reason, string? Detail = null);

public sealed record LaunchResult(IReadOnlyList<TaskRecord> Tasks, IReadOnlyList<LaunchFailure> Failures);

/// <summary>
/// Places tasks and hands them to their workers. For each task: decide (pure
/// <see cref="Placement"/>), reserve on the chosen instance with a conditional write (a lost race
/// re-reads that instance and decides again), insert the task row, send Start to the instance's
/// command queue. A reservation is only ever left behind with a task row that owns it.
/// </summary>
public sealed class TaskLauncher(
    ContainerInstanceStore instances,
    TaskStore tasks,
    StorageClients storage,
    Arns arns,
    EcsOptions options,
    QueueWake wake,
    TimeProvider time,
    ILogger<TaskLauncher> logger,
    Secrets.TaskSecretsSealer? secrets = null,
    WaitingTaskStore? waiting = null)
{
    private const int MaxPlacementAttempts = 20;

    /// <summary>The failure reason of a task that could not be placed because its cluster has no container instance at all.</summary>
    public const string NoInstancesReason = "NO_INSTANCES";

    /// <summary>Fargate's failure reason when it has no capacity for a task, in ECS's words (also used for an empty capacity provider).</summary>
    public const string NoCapacityReason = "Capacity is unavailable at this time. Please try again later or in a different availability zone";

    /// <summary>RunTask's error for a cluster with no container instance, in ECS's words.</summary>
    public const string NoInstancesMessage = "No Container Instances were found in your cluster.";

    /// <summary>
    /// Places and starts the tasks, each task's Start sent as soon as that task is placed, while
    /// others are being placed (see <see cref="PlaceTogetherAsync"/>: the tasks bound for one instance
    /// are placed with one write on its row). A failure part way stops placing and is thrown once the
    /// Starts already on their way have been sent; the tasks placed before it keep their rows,
    /// reservations and Starts, as they would had it come later. <paramref name="cancellationToken"/>
    /// stops placement; a task placed is started whatever happens to the caller, since undoing a
    /// placement costs as many writes as finishing it and its Start may already be on its way.
    /// </summary>
    public async Task<LaunchResult> LaunchAsync(LaunchRequest request, CancellationToken cancellationToken)
    {
        var starts = new List<Task<TaskRecord>>();
        LaunchResult placed;
        try
        {
            placed = await PlaceAsync(request, known: null, knownCached: false,
                task => starts.Add(task.IsWaitingForCapacity ? Task.FromResult(task) : SendStartAsync(task, CancellationToken.None)),
                cancellationToken);
        }
        catch
        {
            // SendStartAsync handles its own failures: waiting here only lets them finish before the caller hears.
            await ((Task)Task.WhenAll(starts)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            throw;
        }
        return placed with { Tasks = await Task.WhenAll(starts) };
    }

    /// <summary>
    /// Places the tasks and records them (rows PENDING, resources reserved) without telling
    /// any worker yet: until <see cref="StartAsync"/>, <see cref="AbandonAsync"/> undoes it all.
    /// </summary>
    /// <param name="known">The cluster's instances when the caller has just read them (null: placement's shared view of them).</param>
    public Task<LaunchResult> PlaceAsync(LaunchRequest request, IReadOnlyList<ContainerInstanceRecord>? known, CancellationToken cancellationToken)
        => PlaceAsync(request, known, knownCached: false, cancellationToken);

    /// <param name="known">The cluster's instances, or null to take them from <see cref="ContainerInstanceStore.ListForPlacementAsync"/>.</param>
    /// <param name="knownCached">Whether <paramref name="known"/> came from that shared view rather than a read of its own.</param>
    public Task<LaunchResult> PlaceAsync(
        LaunchRequest request, IReadOnlyList<ContainerInstanceRecord>? known, bool knownCached, CancellationToken cancellationToken)
        => PlaceAsync(request, known, knownCached, placedOne: null, cancellationToken);

    /// <param name="placedOne">
    /// Handed each task as soon as it is placed (its row written, its reservation held); from then on
    /// the task is the callback's, and a later failure does not undo it. Null: a failure undoes
    /// every task placed so far.
    /// </param>
    private async Task<LaunchResult> PlaceAsync(
        LaunchRequest request, IReadOnlyList<ContainerInstanceRecord>? known, bool knownCached,
        Action<TaskRecord>? placedOne, CancellationToken cancellationToken)
    {
        var (listed, cached) = known is not null ? (known, knownCached) : await instances.ListForPlacementAsync(request.Cluster, fresh: false, cancellationToken);
        var hosts = Hosts(request, listed);
        if (hosts.Count == 0 && cached)
        {
            // No room is decided on a read of this call's own, never on a shared view that may predate an instance.
            (listed, cached) = await instances.ListForPlacementAsync(request.Cluster, fresh: true, cancellationToken);
            hosts = Hosts(request, listed);
        }
        if (request.OnInstances is null && hosts.Count == 0 && !request.WaitsForCapacity)
            // An outcome, not an error: a service records it as an event and looks again later (RunTask answers it as ECS does).
            return new LaunchResult([], Enumerable.Range(0, request.Count)
                .Select(_ => new LaunchFailure(null, request.Pool is null ? NoInstancesReason : NoCapacityReason)).ToList());

        var placement = new SlotPlacement(request, hosts, TaskSizing.Need(request.Definition, request.Overrides),
            PlacementRequest.CountGroup(hosts, request.Group), TimeSpan.FromSeconds(options.AgentDisconnectedAfterSeconds)) { Cached = cached };
        var launched = new List<TaskRecord>();
        var failures = new List<LaunchFailure>();
        try
        {
            var slots = Enumerable.Range(0, request.OnInstances?.Count ?? request.Count).ToList();
            // StartTask names an instance per task: those go one by one.
            var alone = request.OnInstances is null ? await PlaceTogetherAsync(placement, slots, launched, placedOne, cancellationToken) : slots;
            foreach (var slot in alone ?? [])
            {
                if (request.KeepPlacing is { } keep && !await keep(cancellationToken)) break;
                var (task, failure) = await PlaceOneAsync(placement, slot, cancellationToken);
                if (task is not null)
                {
                    launched.Add(task);
                    placedOne?.Invoke(task);
                }
                else failures.Add(failure!);
            }
        }
        catch when (launched.Count > 0 && placedOne is null)
        {
            // Nothing was sent yet: the tasks placed so far go too, so the failed call leaves nothing behind.
            await AbandonAsync(new LaunchResult(launched, []), CancellationToken.None);
            throw;
        }
        return new LaunchResult(launched, failures);
    }

    /// <summary>The instances a launch may use: its pool's, narrowed to the named ones for StartTask.</summary>
    private static List<ContainerInstanceRecord> Hosts(LaunchRequest request, IReadOnlyList<ContainerInstanceRecord> listed)
    {
        var hosts = CapacityPools.Eligible(listed, request.Pool).ToList();
        return request.OnInstances is { } named ? hosts.Where(h => named.Contains(h.Id)).ToList() : hosts;
    }

    /// <summary>What every slot of one launch shares: the hosts as last seen (updated on lost races) and the group's count per host.</summary>
    private sealed record SlotPlacement(
        LaunchRequest Request, List<ContainerInstanceRecord> Hosts, TaskNeed Need, Dictionary<string, int> GroupCounts, TimeSpan AgentTimeout)
    {
        /// <summary>Whether <see cref="Hosts"/> came from the shared placement view (a "does not fit" is then checked on a fresh read).</summary>
        public bool Cached { get; set; }

        /// <summary>Placement's decision for one task of the launch among <paramref name="instances"/> (StartTask's named one: no strategy).</summary>
        public PlacementDecision Decide(IReadOnlyList<ContainerInstanceRecord> instances, IReadOnlyDictionary<string, int> groupCounts, DateTimeOffset now)
            => Placement.Choose(new PlacementRequest
            {
                Need = Need,
                Instances = instances,
                GroupTasksPerInstance = groupCounts,
                Strategies = Request.OnInstances is null ? Request.Strategies : [],
                DistinctInstance = Request.DistinctInstance,
                MemberOf = Request.MemberOf,
                RequiredAttributes = Request.Definition.RequiresAttributes,
                Now = now,
                AgentTimeout = AgentTimeout,
            });
    }

    /// <summary>How many rounds <see cref="PlaceTogetherAsync"/> tries before leaving the rest to placement one by one.</summary>
    private const int MaxTogetherRounds = 3;

    /// <summary>One task of a round of <see cref="PlaceTogetherAsync"/>: its slot, where it goes (as last seen) and what it holds there.</summary>
    private sealed record PlannedTask(int Slot, ContainerInstanceRecord Instance, string TaskId, Reservation Reservation);

    /// <summary>
    /// Places <paramref name="slots"/> in rounds. A round decides the tasks in turn (pure
    /// <see cref="Placement"/>), each on the hosts as the ones before it left them, up to the first
    /// that does not fit; then each chosen instance gets its share with one conditional write of its
    /// row beside one batch insert of the share's rows (<see cref="ReserveAndInsertAsync"/>),
    /// instances side by side. Ten tasks bound for one instance cost two storage calls and one round
    /// trip, where placing them one by one cost twenty calls and ten round trips in a row. A share
    /// whose instance changed since it was seen is decided again in the next round, on the row as it
    /// is now; from the second round on, a share's rows are inserted once its reservation is won (a
    /// launch that lost a race is contended, and a lost share then costs no insert and delete).
    /// Returns the slots left for placement one by one (those that did not fit the view, which
    /// <see cref="PlaceOneAsync"/> checks on a fresh read and answers with a reason), or null when
    /// <see cref="LaunchRequest.KeepPlacing"/> said stop. A failed write is thrown after the round's
    /// other shares are recorded (and handed to <paramref name="placedOne"/>).
    /// </summary>
    private async Task<List<int>?> PlaceTogetherAsync(
        SlotPlacement placement, List<int> slots, List<TaskRecord> launched, Action<TaskRecord>? placedOne, CancellationToken cancellationToken)
    {
        var request = placement.Request;
        for (var round = 0; round < MaxTogetherRounds && slots.Count > 0; round++)
        {
            if (request.KeepPlacing is { } keep && !await keep(cancellationToken)) return null;
            var planned = Plan(placement, slots);
            if (planned.Count == 0) break;
            var shares = planned.GroupBy(p => p.Instance.Id).Select(g => g.ToList()).ToList();
            var outcomes = await Task.WhenAll(shares.Select(async share =>
            {
                try
                {
                    return (Share: share, Placed: await ReserveAndInsertAsync(request, share[0].Instance,
                        share.Select(p => (p.TaskId, p.Reservation)).ToList(), placement.Need, beside: round == 0, cancellationToken), Error: (Exception?)null);
                }
                catch (Exception e)
                {
                    return (Share: share, Placed: (ReservedOn: (ContainerInstanceRecord?)null, Inserted: (IReadOnlyList<TaskRecord>?)null), Error: e);
                }
            }));
            var lost = new List<string>();
            foreach (var (share, (reservedOn, inserted), _) in outcomes)
            {
                var instanceId = share[0].Instance.Id;
                if (reservedOn is null || inserted is null)
                {
                    lost.Add(instanceId);
                    continue;
                }
                Replace(placement.Hosts, reservedOn, instanceId);
                placement.GroupCounts[instanceId] = placement.GroupCounts.GetValueOrDefault(instanceId) + inserted.Count;
                secrets?.NoteHolder(reservedOn);
                foreach (var task in inserted)
                {
                    logger.LogInformation("Placed {TaskArn} on {InstanceArn}", arns.Task(request.Cluster, task.Id), arns.ContainerInstance(request.Cluster, instanceId));
                    launched.Add(task);
                    placedOne?.Invoke(task);
                }
                var placedSlots = share.Select(p => p.Slot).ToHashSet();
                slots = slots.Where(s => !placedSlots.Contains(s)).ToList();
            }
            if (outcomes.FirstOrDefault(o => o.Error is not null).Error is { } error) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
            // The instances whose share lost the race, read side by side: those shares are decided again on the rows as they are now.
            var current = await Task.WhenAll(lost.Select(id => instances.FindAsync(request.Cluster, id, cancellationToken)));
            for (var i = 0; i < lost.Count; i++) Replace(placement.Hosts, current[i], lost[i]);
        }
        return slots;
    }

    /// <summary>
    /// One round's decisions: the slots in order, each decided on the hosts with the reservations and
    /// group counts of the slots before it added, up to the first that does not fit.
    /// </summary>
    private List<PlannedTask> Plan(SlotPlacement placement, List<int> slots)
    {
        var (request, hosts, need, groupCounts, _) = placement;
        var view = hosts.ToList();
        var counts = new Dictionary<string, int>(groupCounts);
        var now = time.GetUtcNow();
        var planned = new List<PlannedTask>();
        foreach (var slot in slots)
        {
            var decision = placement.Decide(view, counts, now);
            // A share's rows go in one batch, which Azure caps.
            if (!decision.Placed || planned.Count(p => p.Instance.Id == decision.Instance!.Id) == TableQueries.MaxBatchOperations) break;
            var chosen = decision.Instance!;
            var taskId = TaskIds.New(request.Group);
            var reservation = need.ReservationFor(taskId, request.Group) with { ReservedAt = now };
            planned.Add(new PlannedTask(slot, hosts.Single(h => h.Id == chosen.Id), taskId, reservation));
            Replace(view, chosen with { Reservations = [.. chosen.Reservations, reservation] }, chosen.Id);
            counts[chosen.Id] = counts.GetValueOrDefault(chosen.Id) + 1;
        }
        return planned;
    }

    /// <summary>
    /// One task: decide (pure <see cref="Placement"/>), reserve on the chosen instance with a
    /// conditional write (a lost race re-reads that instance and decides again), insert its row.
    /// </summary>
    private async Task<(TaskRecord? Task, LaunchFailure? Failure)> PlaceOneAsync(SlotPlacement placement, int slot, CancellationToken cancellationToken)
    {
        var (request, hosts, need, groupCounts, _) = placement;
        var candidates = request.OnInstances is { } only ? hosts.Where(h => h.Id == only[slot]).ToList() : hosts;
        if (candidates.Count == 0 && request.OnInstances is not null)
            return (null, new LaunchFailure(arns.ContainerInstance(request.Cluster, request.OnInstances[slot]), "MISSING"));

        var taskId = TaskIds.New(request.Group);
        ContainerInstanceRecord? reservedOn = null;
        TaskRecord? inserted = null;
        var triedBeside = false;
        PlacementDecision? decision = null;
        for (var attempt = 0; attempt < MaxPlacementAttempts && reservedOn is null; attempt++)
        {
            decision = placement.Decide(candidates, groupCounts, time.GetUtcNow());
            if (!decision.Placed && placement.Cached)
            {
                // Decided on the shared view: see the instances as they are now before answering "no room".
                placement.Cached = false;
                var (fresh, _) = await instances.ListForPlacementAsync(request.Cluster, fresh: true, cancellationToken);
                hosts.Clear();
                hosts.AddRange(Hosts(request, fresh));
                groupCounts.Clear();
                foreach (var (id, count) in PlacementRequest.CountGroup(hosts, request.Group)) groupCounts[id] = count;
                candidates = request.OnInstances is { } named ? hosts.Where(h => h.Id == named[slot]).ToList() : hosts;
                if (candidates.Count == 0) return (null, new LaunchFailure(arns.ContainerInstance(request.Cluster, request.OnInstances![slot]), "MISSING"));
                continue;
            }
            if (!decision.Placed) break;

            var reservation = need.ReservationFor(taskId, request.Group) with { ReservedAt = time.GetUtcNow() };
            // The first choice inserts the row beside the reservation (one round trip instead of two); after a lost race, once the reservation is won.
            var (won, rows) = await ReserveAndInsertAsync(request, decision.Instance!, [(taskId, reservation)], need, beside: !triedBeside, cancellationToken);
            triedBeside = true;
            (reservedOn, inserted) = (won, rows?.Single());
            // Lost the race for that instance: see what it holds now and decide again.
            var current = reservedOn ?? await instances.FindAsync(request.Cluster, decision.Instance!.Id, cancellationToken);
            Replace(hosts, current, decision.Instance!.Id);
            if (!ReferenceEquals(candidates, hosts)) Replace(candidates, current, decision.Instance!.Id);
        }

        if (reservedOn is null && request.WaitsForCapacity && waiting is not null)
            return (await InsertWaitingAsync(request, taskId, need, cancellationToken), null);
        if (reservedOn is null)
        {
            var reason = decision is { Placed: false } ? decision.Reason! : "RESOURCE:CONTENTION";
            logger.LogInformation("Could not place a task of {TaskDefinitionArn} in {Cluster}: {Reason}", request.Definition.Arn, request.Cluster, reason);
            return (null, new LaunchFailure(decision?.Closest is { } closest ? arns.ContainerInstance(request.Cluster, closest.Id) : null, reason));
        }

        groupCounts[reservedOn.Id] = groupCounts.GetValueOrDefault(reservedOn.Id) + 1;
        secrets?.NoteHolder(reservedOn);
        logger.LogInformation("Placed {TaskArn} on {InstanceArn}", arns.Task(request.Cluster, taskId), arns.ContainerInstance(request.Cluster, reservedOn.Id));
        return (inserted!, null);
    }

    /// <summary>
    /// Reserves for <paramref name="placing"/> on <paramref name="instance"/> (one conditional write)
    /// and inserts their rows (one insert, or one batch of the group's partition): with
    /// <paramref name="beside"/>, at the same time (one round trip), else the rows only once the
    /// reservation is won (a launch that already lost a race expects to lose again, and a lost
    /// reservation then costs no insert and no delete). Both or neither stand when this returns: rows
    /// whose reservation was lost (null) or failed are deleted (one batch), reservations whose rows
    /// could not be inserted are released. Either way no Start has been sent, so no worker has heard
    /// of the tasks; what a crash between the two leaves behind is what a crash between them in
    /// sequence would: reservations with no row (released by the delivery sweep after its grace
    /// period) or PENDING rows with no Start and no reservation (stopped by the start deadline; never
    /// in a recorded answer, since the answer is written after).
    /// </summary>
    private async Task<(ContainerInstanceRecord? ReservedOn, IReadOnlyList<TaskRecord>? Inserted)> ReserveAndInsertAsync(
        LaunchRequest request, ContainerInstanceRecord instance, IReadOnlyList<(string TaskId, Reservation Reservation)> placing, TaskNeed need,
        bool beside, CancellationToken cancellationToken)
    {
        var rows = placing.Select(p => NewTask(request, p.TaskId, instance, need)).ToList();
        var reservations = placing.Select(p => p.Reservation).ToList();
        var taskIds = placing.Select(p => p.TaskId).ToList();
        if (!beside)
        {
            if (await instances.TryReserveAsync(instance, reservations, cancellationToken) is not { } reserved) return (null, null);
            try
            {
                return (reserved, await InsertAsync());
            }
            catch
            {
                await instances.ReleaseAsync(request.Cluster, reserved.Id, taskIds, CancellationToken.None);
                throw;
            }
        }
        var inserting = InsertAsync();
        var reserving = instances.TryReserveAsync(instance, reservations, cancellationToken);
        try
        {
            await Task.WhenAll(inserting, reserving);
        }
        catch
        {
            // Both have finished; what each did decides below.
        }
        if (!inserting.IsCompletedSuccessfully)
        {
            if (reserving.IsCompletedSuccessfully && reserving.Result is { } won)
                await instances.ReleaseAsync(request.Cluster, won.Id, taskIds, CancellationToken.None);
            await inserting;   // its exception
        }
        if (!reserving.IsCompletedSuccessfully || reserving.Result is null)
        {
            // Lost the race for the instance (or the write failed): the rows go before anything else.
            await tasks.DeleteManyAsync(inserting.Result, CancellationToken.None);
            return (await reserving, null);   // the exception, or null: decide again
        }
        return (reserving.Result, inserting.Result);

        async Task<IReadOnlyList<TaskRecord>> InsertAsync()
            => rows.Count == 1 ? [await tasks.InsertAsync(rows[0], cancellationToken)] : await tasks.InsertManyAsync(rows, cancellationToken);
    }

    /// <summary>
    /// A task of a capacity provider that found no room: recorded PROVISIONING with no container
    /// instance. Its index row goes first, so no waiting task is ever left where the capacity loop
    /// does not look (an index row whose task never appeared is removed by that loop).
    /// </summary>
    private async Task<TaskRecord> InsertWaitingAsync(LaunchRequest request, string taskId, TaskNeed need, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        // With the launch's own placement (a standalone task is placed by it once room appears), and where
        // this control plane takes wakes (a worker that registers in the cluster wakes its capacity loop).
        await waiting!.AddAsync(new WaitingTask(request.Cluster, taskId, request.CapacityProviderName!, now)
        {
            Placement = new WaitingPlacement(request.Strategies, request.DistinctInstance, request.MemberOfExpressions),
            Wake = wake.Endpoint,
        }, cancellationToken);
        var task = await tasks.InsertAsync(NewTask(request, taskId, null, need) with { LastStatus = EcsTaskStatus.Provisioning }, cancellationToken);
        logger.LogInformation("{TaskArn} waits in PROVISIONING for capacity in {CapacityProvider}", arns.Task(request.Cluster, taskId), request.CapacityProviderName);
        return task;
    }

    /// <summary>
    /// Places a task that waited for capacity on one of <paramref name="hosts"/> (its pool, as last
    /// read; updated here on lost races): reserve, then give the row its instance (only while it still
    /// waits and is desired RUNNING; otherwise the reservation is released), then send Start.
    /// Returns the task as it now is, or null when there is still no room. <paramref name="rules"/>: its
    /// service's strategies and constraints, or RunTask's default.
    /// </summary>
    public async Task<TaskRecord?> PlaceWaitingAsync(
        TaskRecord task, TaskDefinitionRecord definition, List<ContainerInstanceRecord> hosts, PlacementRules rules, CancellationToken cancellationToken)
    {
        var need = TaskSizing.Need(definition, task.Overrides);
        var groupCounts = PlacementRequest.CountGroup(hosts, task.Group);
        ContainerInstanceRecord? reservedOn = null;
        for (var attempt = 0; attempt < MaxPlacementAttempts && reservedOn is null; attempt++)
        {
            var decision = Placement.Choose(new PlacementRequest
            {
                Need = need,
                Instances = hosts,
                GroupTasksPerInstance = groupCounts,
                Strategies = rules.Strategies,
                DistinctInstance = rules.DistinctInstance,
                MemberOf = rules.MemberOf,
                RequiredAttributes = definition.RequiresAttributes,
                Now = time.GetUtcNow(),
                AgentTimeout = TimeSpan.FromSeconds(options.AgentDisconnectedAfterSeconds),
            });
            if (!decision.Placed) return null;
            reservedOn = await instances.TryReserveAsync(decision.Instance!, need.ReservationFor(task.Id, task.Group) with { ReservedAt = time.GetUtcNow() }, cancellationToken);
            Replace(hosts, reservedOn ?? await instances.FindAsync(task.Cluster, decision.Instance!.Id, cancellationToken), decision.Instance!.Id);
        }
        if (reservedOn is null) return null;

        var now = time.GetUtcNow();
        var placed = false;
        TaskRecord? updated;
        try
        {
            updated = await tasks.UpdateAsync(task.Cluster, task.Id, t =>
            {
                placed = t.IsWaitingForCapacity && t.DesiredStatus == EcsTaskStatus.Running;
                return placed ? t with
                {
                    ContainerInstanceId = reservedOn.Id,
                    WakeEndpoint = reservedOn.WakeEndpoint,
                    PlacedAt = now,
                    LastStatus = t.Attachment is null ? EcsTaskStatus.Pending : EcsTaskStatus.Provisioning,
                } : null;
            }, cancellationToken);
        }
        catch
        {
            await instances.ReleaseAsync(task.Cluster, reservedOn.Id, task.Id, CancellationToken.None);
            throw;
        }
        if (updated is null || !placed)
        {
            await instances.ReleaseAsync(task.Cluster, reservedOn.Id, task.Id, CancellationToken.None);
            return updated;
        }
        logger.LogInformation("Placed {TaskArn}, which waited for capacity since {CreatedAt}, on {InstanceArn}",
            arns.Task(task.Cluster, task.Id), task.CreatedAt, arns.ContainerInstance(task.Cluster, reservedOn.Id));
        return await SendStartAsync(updated, CancellationToken.None);
    }

    /// <summary>
    /// Sends Start for each placed task, all at once (each is its own message; a launch of ten
    /// waits for one send, not ten in a row); a task waiting for capacity has nowhere to go yet. One
    /// that cannot be sent is recorded as failed to start.
    /// </summary>
    public async Task<LaunchResult> StartAsync(LaunchResult placed, CancellationToken cancellationToken)
    {
        var started = await Task.WhenAll(placed.Tasks.Select(task => task.IsWaitingForCapacity ? Task.FromResult(task) : SendStartAsync(task, cancellationToken)));
        return placed with { Tasks = started };
    }

    /// <summary>Undoes <see cref="PlaceAsync"/>: no worker has heard of these tasks, so they go without a trace.</summary>
    public async Task AbandonAsync(LaunchResult placed, CancellationToken cancellationToken)
    {
        foreach (var task in placed.Tasks)
        {
            await tasks.DeleteAsync(task, cancellationToken);
            if (task.IsWaitingForCapacity) await waiting!.RemoveAsync(task.Cluster, task.Id, cancellationToken);
            else await instances.ReleaseAsync(task.Cluster, task.ContainerInstanceId, task.Id, cancellationToken);
        }
    }

    /// <summary>
    /// Tells the task's worker to stop it (idempotent on the worker's side). The caller records
    /// <see cref="TaskRecord.StopSentAt"/> with the write that asked the task to stop, so that a
    /// Stop lost here is sent again by <see cref="ResendStopIfDueAsync"/>.
    /// </summary>
    public async Task SendStopAsync(TaskRecord task, CancellationToken cancellationToken)
    {
        if (task.IsWaitingForCapacity)
        {
            // No worker has it: a task stopped while it waits for capacity is STOPPED at once, as on ECS.
            await tasks.UpdateAsync(task.Cluster, task.Id, t => t.IsWaitingForCapacity
                ? t.RecordStopped(t.StopCode ?? "UserInitiated", t.StoppedReason ?? "Task stopped by user", time.GetUtcNow()) : null, cancellationToken);
            if (waiting is not null) await waiting.RemoveAsync(task.Cluster, task.Id, cancellationToken);
            return;
        }
        await SendAsync(task.ContainerInstanceId, task.WakeEndpoint, new TaskCommand
        {
            Type = TaskCommand.Stop,
            Cluster = task.Cluster,
            TaskArn = arns.Task(task.Cluster, task.Id),
            Reason = task.StoppedReason,
            ReportWake = wake.Endpoint,
        }, cancellationToken);
    }

    /// <summary>The stop reason of a task a worker runs that has no row (see <see cref="SendStopOfUnknownAsync"/>).</summary>
    public const string UnknownTaskReason = "Task stopped: the control plane has no record of this task.";

    /// <summary>
    /// Tells a worker to stop a task it reported but that has no row: whatever left it running (a
    /// lost write, a row removed by hand), nothing would ever stop it otherwise, and nothing accounts
    /// for what it uses. The worker reports it STOPPED, which is then ignored like this report.
    /// </summary>
    public async Task SendStopOfUnknownAsync(string cluster, string containerInstanceId, string taskArn, CancellationToken cancellationToken)
    {
        var instance = await instances.FindAsync(cluster, containerInstanceId, cancellationToken);
        await SendAsync(containerInstanceId, instance?.WakeEndpoint, new TaskCommand
        {
            Type = TaskCommand.Stop,
            Cluster = cluster,
            TaskArn = taskArn,
            Reason = UnknownTaskReason,
            ReportWake = wake.Endpoint,
        }, cancellationToken);
    }

    /// <summary>
    /// Sends Stop again to a task told to stop that has not stopped, when the last one was sent more
    /// than <see cref="TaskDeadlines.StopResendAfter"/> ago: first records the new send time
    /// (conditionally, so of two control planes looking at once only one sends), then sends. A send
    /// that fails is logged and left to the next look. Returns whether a Stop was sent.
    /// </summary>
    public async Task<bool> ResendStopIfDueAsync(TaskRecord task, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var afterDraining = false;
        var due = await tasks.UpdateAsync(task.Cluster, task.Id, t =>
        {
            if (!TaskDeadlines.StopIsDue(t, now)) return null;
            afterDraining = t.StopSentAt is null;   // held back while its targets drained: this is the first Stop
            return t with { StopSentAt = now };
        }, cancellationToken);
        if (due is null || due.StopSentAt != now) return false;
        try
        {
            await SendStopAsync(due, cancellationToken);
            if (afterDraining)
                logger.LogInformation("Sent Stop to {TaskArn}: its load balancer targets have drained", arns.Task(due.Cluster, due.Id));
            else
                logger.LogWarning("Sent Stop again to {TaskArn} (desired STOPPED since {StoppingAt}, still {LastStatus})",
                    arns.Task(due.Cluster, due.Id), due.StoppingAt, due.LastStatus);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(e, "Could not send Stop to {TaskArn}; it is sent again later", arns.Task(due.Cluster, due.Id));
            return false;
        }
    }

    /// <summary>
    /// Puts <paramref name="command"/> on the task's instance queue, then hands it to that instance's worker
    /// express as well (<see cref="QueueWake.SendExpress"/>), which also wakes its poller to collect the queued copy.
    /// Throws <see cref="CommandNotSentException"/> when the command is certainly not on the queue
    /// (the queue could not be had, or storage refused the message); any other failure leaves it
    /// unknown whether the message was enqueued (a timeout, a connection lost, a server error).
    /// </summary>
    private async Task SendAsync(string containerInstanceId, string? wakeEndpoint, TaskCommand command, CancellationToken cancellationToken)
    {
        var name = TaskMessages.CommandQueue(containerInstanceId);
        QueueClient queue;
        try
        {
            queue = await storage.QueueAsync(name, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new CommandNotSentException(e);
        }
        var text = TaskMessages.Serialize(command);
        try
        {
            await queue.SendMessageAsync(text, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is >= 400 and < 500 and not 408)
        {
            // The service answered and refused: nothing was enqueued.
            throw new CommandNotSentException(e);
        }
        // Only once it is queued: a worker must never run a command the queue (and so this call's outcome) does not hold.
        wake.SendExpress(wakeEndpoint, name, text, enqueued: true);
    }

    /// <summary>A command that is certainly not on its queue (as opposed to one whose send had no clear answer).</summary>
    private sealed class CommandNotSentException(Exception inner) : Exception(inner.Message, inner);

    private async Task<TaskRecord> SendStartAsync(TaskRecord task, CancellationToken cancellationToken)
    {
        try
        {
            var start = new TaskCommand
            {
                Type = TaskCommand.Start,
                Cluster = task.Cluster,
                TaskArn = arns.Task(task.Cluster, task.Id),
                TaskDefinitionArn = task.TaskDefinitionArn,
                Overrides = task.Overrides,
                StartedBy = task.StartedBy,
                Group = task.Group,
                SubnetId = task.Attachment?.SubnetId,
                ReportWake = wake.Endpoint,
                TraceParent = Telemetry.Telemetry.TraceParent,
            };
            // The task's secret values, sealed for its instance, go with the Start (or are stored before it).
            if (secrets is not null) start = await secrets.AttachAsync(task, start, cancellationToken);
            await SendAsync(task.ContainerInstanceId, task.WakeEndpoint, start, cancellationToken);
            return task;
        }
        catch (Exception e) when (e is not CommandNotSentException && (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested))
        {
            // Sent or not, nobody can tell (a timeout, a lost connection, a server error): the worker
            // may run the task. It stays as it is, desired RUNNING and not yet acknowledged; a worker
            // that got the Start acknowledges it, and if none does, the start deadline stops it, frees
            // its reservation and sends Stop (TaskDeliverySweep).
            logger.LogWarning(e, "Start for {TaskArn} may or may not have been queued; the start deadline decides", arns.Task(task.Cluster, task.Id));
            return task;
        }
        catch (CommandNotSentException e)
        {
            // The worker will never hear of this task: record it as failed to start and free its
            // resources, so what the client sees is true and nothing is held for it.
            logger.LogError(e.InnerException, "Could not send Start for {TaskArn}", arns.Task(task.Cluster, task.Id));
            var now = time.GetUtcNow();
            var stopped = await tasks.UpdateAsync(task.Cluster, task.Id,
                t => t.RecordStopped("TaskFailedToStart", "Unable to deliver the task to its container instance.", now), CancellationToken.None);
            await instances.ReleaseAsync(task.Cluster, task.ContainerInstanceId, task.Id, CancellationToken.None);
            return stopped ?? task;
        }
    }

    private TaskRecord NewTask(LaunchRequest request, string taskId, ContainerInstanceRecord? instance, TaskNeed need) => new()
    {
        Cluster = request.Cluster,
        Id = taskId,
        Group = request.Group,
        TaskDefinitionArn = request.Definition.Arn,
        Family = request.Definition.Family,
        ContainerInstanceId = instance?.Id ?? "",
        WakeEndpoint = instance?.WakeEndpoint,
        StartedBy = request.StartedBy,
        ClientToken = request.ClientToken,
        Cpu = need.Cpu,
        Memory = need.Memory,
        Containers = TaskSizing.Containers(request.Definition, request.Overrides),
        Overrides = request.Overrides,
        Tags = request.Tags,
        Attachment = request.Network is { } network ? NetworkAttachment.ForTask(taskId, network) : null,
        LaunchType = request.LaunchType,
        PlatformVersion = request.PlatformVersion,
        CapacityProviderName = request.CapacityProviderName,
        // ECS shows a bridge or host task on EC2 PENDING from the start; an awsvpc task is
        // PROVISIONING while its network interface is made (here: until its worker reports).
        LastStatus = request.Network is null ? EcsTaskStatus.Pending : EcsTaskStatus.Provisioning,
        CreatedAt = time.GetUtcNow(),
    };

    private static void Replace(List<ContainerInstanceRecord> hosts, ContainerInstanceRecord? current, string id)
    {
        var index = hosts.FindIndex(h => h.Id == id);
        if (index < 0) return;
        if (current is null) hosts.RemoveAt(index); else hosts[index] = current;
    }
}
