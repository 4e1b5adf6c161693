using Serverless.Core.ContainerInstances;
using Serverless.Core.Services;
using Serverless.Core.Tasks;

namespace Serverless.Core.Reconciliation;

/// <summary>Everything one reconcile decision reads, read fresh by the reconciler.</summary>
public sealed record ServiceView
{
    public required ServiceRecord Service { get; init; }
    /// <summary>The service's tasks (its group's partition), stopped ones included.</summary>
    public required IReadOnlyList<TaskRecord> Tasks { get; init; }
    /// <summary>Whether the PRIMARY deployment's task definition has an essential container health check.</summary>
    public bool PrimaryHasHealthCheck { get; init; }
    /// <summary>DAEMON services: the cluster's instances, with <see cref="DaemonEligible"/> deciding which take a task.</summary>
    public IReadOnlyList<ContainerInstanceRecord> Instances { get; init; } = [];
    public Func<ContainerInstanceRecord, bool> DaemonEligible { get; init; } = _ => true;
    /// <summary>
    /// REPLICA services: the ids of the cluster's DRAINING instances. The service's tasks on them
    /// are replaced elsewhere, as ECS's container instance draining does.
    /// </summary>
    public IReadOnlySet<string> DrainingInstances { get; init; } = new HashSet<string>();
    public required DateTimeOffset Now { get; init; }
    /// <summary>Where new service events' ids come from: an input, so a decision is a function of its view.</summary>
    public Func<string> NewEventId { get; init; } = ServiceEvents.NewId;
    /// <summary>Blue/green: whether the listener rules already carried the traffic the PRIMARY's lifecycle asks for when read.</summary>
    public bool TrafficApplied { get; init; } = true;
    /// <summary>Services behind a load balancer: the tasks whose target is healthy in each of their target groups; null when none.</summary>
    public IReadOnlySet<string>? TargetHealthy { get; init; }
    /// <summary>Services behind a load balancer: the tasks whose target a target group reports unhealthy, with that group's ARN.</summary>
    public IReadOnlyDictionary<string, string> TargetUnhealthy { get; init; } = Rollout.NoUnhealthyTargets;
}

public sealed record TaskStop(string TaskId, string Reason);

/// <summary>Tasks to start for one deployment: <see cref="Count"/> placed by strategy, or one on each of <see cref="OnInstances"/> (DAEMON).</summary>
public sealed record TaskStart(string DeploymentId, string TaskDefinitionArn, int Count, IReadOnlyList<string>? OnInstances = null);

/// <summary>
/// The next step of a service: the tasks to start and stop and the service as it should be
/// recorded (deployment counts and states, events). <see cref="IsNone"/> when nothing changes.
/// </summary>
public sealed record RolloutStep(ServiceRecord Service, IReadOnlyList<TaskStart> Start, IReadOnlyList<TaskStop> Stop, TimeSpan? CheckAgainIn)
{
    public bool ChangesTasks => Start.Count > 0 || Stop.Count > 0;
}

/// <summary>
/// How a service converges, as plain decisions over plain data: keep <c>desiredCount</c> tasks
/// of the PRIMARY deployment running, replace stopped and unhealthy ones, and move from old
/// deployments to the new one without healthy tasks falling below <c>minimumHealthyPercent</c> or
/// all tasks exceeding <c>maximumPercent</c> of the desired count; trip the circuit breaker after
/// ECS's threshold of failed launches. Idempotent: the same view always gives the same step
/// (event ids come from the view's <see cref="ServiceView.NewEventId"/>). Each part
/// (<see cref="ForcedStops"/>, <see cref="CircuitBreaker"/>, <see cref="PlanReplica"/>,
/// <see cref="PlanDaemon"/>, <see cref="Counts"/>) returns values and changes nothing.
/// </summary>
public static class Rollout
{
    /// <summary>A task not RUNNING after this long is stopped and replaced.</summary>
    public static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long every task of the primary deployment must have run before the service counts as steady and the
    /// deployment COMPLETED: a revision whose containers exit at once reaches RUNNING for an instant, and completing on
    /// that instant would drop the deployment the circuit breaker rolls back to and leave the crash loop unbroken.
    /// </summary>
    public static readonly TimeSpan SteadyAfter = TimeSpan.FromSeconds(10);

    public const string ReasonScaling = "Scaling activity initiated by ({0})";
    public const string ReasonUnhealthy = "Task failed container health checks";
    private const string ReasonElbUnhealthyPrefix = "Task failed ELB health checks in (target-group ";
    public static readonly IReadOnlyDictionary<string, string> NoUnhealthyTargets = new Dictionary<string, string>();

    /// <summary>ECS's stop reason for a task whose target a target group reports unhealthy.</summary>
    public static string ReasonElbUnhealthy(string targetGroupArn) => ReasonElbUnhealthyPrefix + targetGroupArn + ")";

    /// <summary>The target group of a <see cref="ReasonElbUnhealthy"/> stop reason; null for any other reason.</summary>
    public static string? FailedElbHealthChecks(string? reason)
        => reason is not null && reason.StartsWith(ReasonElbUnhealthyPrefix, StringComparison.Ordinal) && reason.EndsWith(')')
            ? reason[ReasonElbUnhealthyPrefix.Length..^1]
            : null;
    public const string ReasonStuck = "Task did not reach RUNNING within the start deadline";
    public const string ReasonDaemonPlacement = "Task is on a container instance that no longer takes this daemon service's tasks";
    public const string ReasonInstanceDraining = "Container instance is draining";

    /// <summary>ECS's circuit breaker threshold: half the desired count, at least 3, at most 200.</summary>
    public static int FailureThreshold(int desired) => Math.Clamp((int)Math.Ceiling(desired * 0.5), 3, 200);

    public static RolloutStep NextStep(ServiceView view)
    {
        // Blue/green, linear and canary deployments decide their own steps (BlueGreen.cs); deployments that leave are kept as history.
        var before = view.Service;
        view = BlueGreen.Prepare(view);
        if (BlueGreen.Runs(view.Service)) return BlueGreen.Record(before, BlueGreen.NextStep(view), view.Now);
        var service = view.Service;
        if (service.Status == ServiceRecord.Inactive || service.Primary is null)
            return new RolloutStep(service, [], [], null);

        var live = view.Tasks.Where(t => !t.IsStopped && t.DesiredStatus == EcsTaskStatus.Running).ToList();
        var stopping = view.Tasks.Count(t => !t.IsStopped && t.DesiredStatus == EcsTaskStatus.Stopped);

        var (forced, checkAgain) = ForcedStops(view, live);
        // A protected task that scale-in or a deployment would otherwise stop is looked at again when its protection ends.
        if (live.Where(t => t.IsProtectedAt(view.Now)).Select(t => t.ProtectedUntil!.Value - view.Now).DefaultIfEmpty().Min() is { Ticks: > 0 } untilUnprotected)
            checkAgain = checkAgain is { } other && other < untilUnprotected ? other : untilUnprotected;
        var remaining = live.Where(t => forced.All(s => s.TaskId != t.Id)).ToList();

        var breaker = CircuitBreaker(view);
        service = breaker.Service;
        var primary = breaker.Primary;

        var draining = service.Status == ServiceRecord.Draining;
        var desired = draining ? 0
            : service.IsDaemon ? view.Instances.Count(i => IsDaemonTarget(view, i))
            : service.DesiredCount;
        var launching = primary.RolloutState != DeploymentRolloutState.Failed;
        var (planStops, starts) = service.IsDaemon
            ? PlanDaemon(view, primary, remaining, launching, draining)
            : PlanReplica(view, service, primary, desired, remaining, live.Count + stopping, launching);
        List<TaskStop> stops = [.. forced, .. planStops];

        var (deployments, events) = Counts(view, service, breaker.Deployments, primary, live, stops, starts, desired);

        // A deleted service is INACTIVE once every task has actually stopped, not when told to.
        var status = draining && view.Tasks.All(t => t.IsStopped) ? ServiceRecord.Inactive : service.Status;
        var steady = events.Steady;
        if (events.SteadyIn is { } settling) checkAgain = Min(checkAgain, settling);
        List<string> messages = [.. breaker.Events, .. events.Messages];
        if (steady && status == ServiceRecord.Active && !LastEventIsSteady(service))
            messages.Add($"(service {service.Name}) has reached a steady state.");

        var next = service with
        {
            // A DAEMON service's desired count is the number of instances it should run on.
            DesiredCount = service.IsDaemon ? desired : service.DesiredCount,
            Status = status,
            Deployments = deployments,
            Events = AddEvents(service.Events, messages, view.Now, view.NewEventId),
        };
        // A deployment the breaker failed and the counting dropped in this same step goes to the history failed, not as it was before.
        var latest = before with { Deployments = before.Deployments.Select(d => breaker.Deployments.FirstOrDefault(b => b.Id == d.Id) ?? d).ToList() };
        return BlueGreen.Record(latest, new RolloutStep(next, starts, stops, checkAgain), view.Now);
    }

    /// <summary>
    /// Tasks that must go whatever the rollout: unhealthy past the grace period (their container health check, or
    /// their target in a target group, as ECS's ELB health checks), stuck starting past <see cref="StartDeadline"/>;
    /// and when to look again for those not there yet.
    /// </summary>
    internal static (IReadOnlyList<TaskStop> Stops, TimeSpan? CheckAgainIn) ForcedStops(ServiceView view, IReadOnlyList<TaskRecord> live)
    {
        var stops = new List<TaskStop>();
        TimeSpan? checkAgain = null;
        var grace = TimeSpan.FromSeconds(view.Service.HealthCheckGracePeriodSeconds ?? 0);
        foreach (var task in live)
        {
            var failedElb = view.TargetUnhealthy.TryGetValue(task.Id, out var groupArn);
            if (task.LastStatus == EcsTaskStatus.Running && (task.HealthStatus == HealthStatus.Unhealthy || failedElb))
            {
                // healthCheckGracePeriodSeconds covers both kinds of health check, from when the task started.
                var graceEnds = (task.StartedAt ?? task.CreatedAt) + grace;
                if (view.Now >= graceEnds) stops.Add(new TaskStop(task.Id, task.HealthStatus == HealthStatus.Unhealthy ? ReasonUnhealthy : ReasonElbUnhealthy(groupArn!)));
                else checkAgain = Min(checkAgain, graceEnds - view.Now);
            }
            else if (EcsTaskStatus.Rank(task.LastStatus) < EcsTaskStatus.Rank(EcsTaskStatus.Running) && !task.IsWaitingForCapacity)
            {
                // A task that waited for capacity has its deadline from when it was placed.
                var deadline = (task.PlacedAt ?? task.CreatedAt) + StartDeadline;
                if (view.Now >= deadline) stops.Add(new TaskStop(task.Id, ReasonStuck));
                else checkAgain = Min(checkAgain, deadline - view.Now);
            }
        }
        return (stops, checkAgain);
    }

    /// <summary>What the circuit breaker leaves: the service (its task definition rolled back or not), its PRIMARY deployment, its deployments and the events to record.</summary>
    internal sealed record BreakerOutcome(ServiceRecord Service, Deployment Primary, IReadOnlyList<Deployment> Deployments, IReadOnlyList<string> Events);

    /// <summary>
    /// The circuit breaker: an in-progress PRIMARY deployment with at least <see cref="FailureThreshold"/>
    /// failed launches fails, and with rollback on, the newest COMPLETED deployment comes back as a
    /// new PRIMARY. Otherwise everything stays as it is.
    /// </summary>
    internal static BreakerOutcome CircuitBreaker(ServiceView view)
    {
        var service = view.Service;
        var primary = service.Primary!;
        var deployments = service.Deployments;
        var config = service.DeploymentConfiguration;
        // StopServiceDeployment's ROLLBACK rolls back as the breaker would, whether or not the breaker is on.
        var requested = primary.Lifecycle?.StopRequested == HookStatus.Rollback;
        if ((!config.CircuitBreakerEnable && !requested) || primary.RolloutState != DeploymentRolloutState.InProgress) return new(service, primary, deployments, []);
        var failed = FailedLaunches(primary, view);
        if (failed < FailureThreshold(service.DesiredCount) && !requested) return new(service, primary, deployments, []);

        List<string> events = [requested
            ? $"(service {service.Name}) (deployment {primary.Id}) deployment stopped: {BlueGreen.ReasonStopRequested}"
            : $"(service {service.Name}) (deployment {primary.Id}) deployment failed: tasks failed to start."];
        var failedDeployment = primary with
        {
            RolloutState = DeploymentRolloutState.Failed,
            RolloutStateReason = requested ? BlueGreen.ReasonStopRequested : $"ECS deployment circuit breaker: tasks failed to start.",
            FailedTasks = failed,
            UpdatedAt = view.Now,
        };
        var lastGood = LastCompleted(deployments, primary.Id);
        if ((!config.CircuitBreakerRollback && !requested) || lastGood is null)
            return new(service, failedDeployment, deployments.Select(d => d.Id == primary.Id ? failedDeployment : d).ToList(), events);

        var rollback = new Deployment
        {
            Id = RollbackId(primary.Id),
            Status = DeploymentStatus.Primary,
            TaskDefinitionArn = lastGood.TaskDefinitionArn,
            DesiredCount = service.DesiredCount,
            RolloutState = DeploymentRolloutState.InProgress,
            RolloutStateReason = $"ECS deployment circuit breaker: rolling back to deploymentId {lastGood.Id}.",
            CreatedAt = view.Now,
            UpdatedAt = view.Now,
        };
        events.Add($"(service {service.Name}) rolling back to deployment {lastGood.Id}.");
        return new(
            service with { TaskDefinitionArn = lastGood.TaskDefinitionArn },
            rollback,
            [rollback, .. deployments.Select(d => d.Id == primary.Id ? failedDeployment with { Status = DeploymentStatus.Active } : d)],
            events);
    }

    /// <summary>The events the counting adds, and whether the service is steady once the step is applied.</summary>
    /// <param name="SteadyIn">When the service would be steady if nothing changes: its newest task has not run <see cref="SteadyAfter"/> yet.</param>
    internal sealed record CountEvents(IReadOnlyList<string> Messages, bool Steady, TimeSpan? SteadyIn = null);

    /// <summary>
    /// The deployments as they will be once this step is applied: each one's desired, running,
    /// pending and failed counts; old deployments with no tasks left dropped or hidden; the
    /// PRIMARY COMPLETED once it alone runs exactly the desired count, all healthy.
    /// </summary>
    internal static (IReadOnlyList<Deployment> Deployments, CountEvents Events) Counts(
        ServiceView view, ServiceRecord service, IReadOnlyList<Deployment> deployments, Deployment primary,
        IReadOnlyList<TaskRecord> live, IReadOnlyList<TaskStop> stops, IReadOnlyList<TaskStart> starts, int desired)
    {
        var stopped = stops.Select(s => s.TaskId).ToHashSet();
        var after = live.Where(t => !stopped.Contains(t.Id)).ToList();
        var primaryAfter = after.Where(t => t.StartedBy == primary.Id).ToList();
        var oldAfter = after.Where(t => t.StartedBy != primary.Id).ToList();
        var started = starts.Sum(s => s.OnInstances?.Count ?? s.Count);

        // Old deployments leave the list once they have no tasks left, except the newest COMPLETED
        // one: it stays, hidden as INACTIVE, until the primary completes, so that the circuit breaker
        // can roll back to it even after failing tasks that ran for a moment replaced all of its own.
        var fallback = LastCompleted(deployments, primary.Id)?.Id;
        var counted = deployments
            .Select(d => d.Id == primary.Id
                ? Counted(d, primaryAfter, desired, view)
                : Counted(d, after.Where(t => t.StartedBy == d.Id).ToList(), after.Count(t => t.StartedBy == d.Id), view))
            .Where(d => d.Id == primary.Id || d.Id == fallback || after.Any(t => t.StartedBy == d.Id))
            .Select(d => d.Id != primary.Id && d.Status != DeploymentStatus.Inactive && !after.Any(t => t.StartedBy == d.Id)
                ? d with { Status = DeploymentStatus.Inactive, UpdatedAt = view.Now }
                : d)
            .ToList();

        var primaryNow = counted.First(d => d.Id == primary.Id);
        var healthyPrimary = primaryAfter.Count(t => IsHealthy(t, view.PrimaryHasHealthCheck) && TargetServing(view, t));
        var steady = !oldAfter.Any() && started == 0 && stops.Count == 0 && healthyPrimary == desired && primaryAfter.Count == desired;
        // Steady once the newest of its tasks has run for SteadyAfter (look again then); a task with no start time counts as settled.
        TimeSpan? steadyIn = null;
        if (steady && primaryAfter.Select(t => t.StartedAt).Max() is { } newest && newest + SteadyAfter > view.Now)
        {
            steady = false;
            steadyIn = newest + SteadyAfter - view.Now;
        }
        if (!steady || primaryNow.RolloutState != DeploymentRolloutState.InProgress) return (counted, new CountEvents([], steady, steadyIn));

        primaryNow = primaryNow with { RolloutState = DeploymentRolloutState.Completed, RolloutStateReason = "ECS deployment " + primaryNow.Id + " completed.", UpdatedAt = view.Now };
        return (counted.Where(d => d.Status != DeploymentStatus.Inactive).Select(d => d.Id == primaryNow.Id ? primaryNow : d).ToList(),
            new CountEvents([$"(service {service.Name}) (deployment {primaryNow.Id}) deployment completed."], steady));
    }

    /// <summary>
    /// A REPLICA service's stops and starts beyond <see cref="ForcedStops"/>: scale in, empty old
    /// deployments and draining instances within <c>minimumHealthyPercent</c>, start what the
    /// PRIMARY lacks within <c>maximumPercent</c> of the <paramref name="occupying"/> slots. Tasks under
    /// scale-in protection are neither scaled in nor replaced by a deployment until protection ends.
    /// </summary>
    internal static (IReadOnlyList<TaskStop> Stops, IReadOnlyList<TaskStart> Starts) PlanReplica(
        ServiceView view, ServiceRecord service, Deployment primary, int desired, IReadOnlyList<TaskRecord> remaining, int occupying, bool launching)
    {
        var stops = new List<TaskStop>();
        var starts = new List<TaskStart>();
        var config = service.DeploymentConfiguration;
        var maxTotal = Math.Max(desired, (int)Math.Floor(desired * config.MaximumPercent / 100.0));
        var minHealthy = (int)Math.Ceiling(desired * config.MinimumHealthyPercent / 100.0);
        var reason = string.Format(System.Globalization.CultureInfo.InvariantCulture, ReasonScaling, primary.Id);

        // Tasks on a DRAINING instance are replaced like an old deployment's (ECS: "stopped and
        // replaced according to minimumHealthyPercent and maximumPercent"): they do not count as
        // current, so replacements start elsewhere, and the healthy ones go only as far as the
        // healthy count allows; the others (PENDING, not yet RUNNING) are stopped at once.
        var displaced = remaining.Where(t => view.DrainingInstances.Contains(t.ContainerInstanceId)).ToList();
        var current = remaining.Where(t => t.StartedBy == primary.Id && !displaced.Contains(t)).ToList();
        var old = remaining.Where(t => t.StartedBy != primary.Id && !displaced.Contains(t)).ToList();
        // Behind a load balancer a new task counts once its target is healthy too: old ones go only as new ones serve.
        var healthy = remaining.Count(t => t.StartedBy == primary.Id ? IsHealthy(t, view.PrimaryHasHealthCheck) && TargetServing(view, t) : IsHealthy(t, false));

        // Scale in: surplus tasks of the current deployment go, not-yet-running ones first; tasks under
        // scale-in protection are never chosen (ECS scales in only as far as unprotected tasks allow).
        if (current.Count > desired)
        {
            foreach (var task in current.Where(t => !t.IsProtectedAt(view.Now)).OrderBy(t => t.LastStatus == EcsTaskStatus.Running).ThenByDescending(t => t.CreatedAt).ThenBy(t => t.Id, StringComparer.Ordinal).Take(current.Count - desired))
            {
                stops.Add(new TaskStop(task.Id, reason));
                if (IsHealthy(task, view.PrimaryHasHealthCheck) && TargetServing(view, task)) healthy--;
            }
            current = current.Where(t => stops.All(s => s.TaskId != t.Id)).ToList();
        }

        // Old deployments and draining instances empty: tasks that are not healthy cost no
        // availability; healthy ones go only while the healthy count stays at or above
        // minimumHealthyPercent, those on draining instances first (they cannot stay).
        bool HealthyLeaving(TaskRecord t) => IsHealthy(t, t.StartedBy == primary.Id && view.PrimaryHasHealthCheck);
        foreach (var task in displaced.Where(t => !HealthyLeaving(t)))
            stops.Add(new TaskStop(task.Id, ReasonInstanceDraining));
        foreach (var task in old.Where(t => !IsHealthy(t, false)))
            stops.Add(new TaskStop(task.Id, reason));
        var stoppable = Math.Max(0, healthy - minHealthy);
        var leaving = displaced.Where(HealthyLeaving).OrderBy(t => t.CreatedAt).ThenBy(t => t.Id, StringComparer.Ordinal)
            .Select(t => new TaskStop(t.Id, ReasonInstanceDraining))
            .Concat(old.Where(t => IsHealthy(t, false) && !t.IsProtectedAt(view.Now)).OrderBy(t => t.CreatedAt).ThenBy(t => t.Id, StringComparer.Ordinal).Select(t => new TaskStop(t.Id, reason)));
        stops.AddRange(leaving.Take(stoppable));

        // Start what the current deployment lacks, within maximumPercent of every task that still
        // holds a slot: a task told to stop keeps its slot until it has stopped.
        if (launching && current.Count < desired)
        {
            var count = Math.Min(desired - current.Count, Math.Max(0, maxTotal - occupying));
            if (count > 0) starts.Add(new TaskStart(primary.Id, primary.TaskDefinitionArn, count));
        }
        return (stops, starts);
    }

    /// <summary>A DAEMON service's stops and starts: one task of the PRIMARY on each eligible instance, none elsewhere.</summary>
    internal static (IReadOnlyList<TaskStop> Stops, IReadOnlyList<TaskStart> Starts) PlanDaemon(
        ServiceView view, Deployment primary, IReadOnlyList<TaskRecord> remaining, bool launching, bool draining)
    {
        var stops = new List<TaskStop>();
        var eligible = draining ? [] : view.Instances.Where(i => IsDaemonTarget(view, i)).Select(i => i.Id).ToHashSet();
        var reason = string.Format(System.Globalization.CultureInfo.InvariantCulture, ReasonScaling, primary.Id);
        var missing = new List<string>();
        foreach (var instance in view.Instances.Select(i => i.Id).Union(remaining.Select(t => t.ContainerInstanceId)).Order(StringComparer.Ordinal))
        {
            var here = remaining.Where(t => t.ContainerInstanceId == instance).OrderByDescending(t => t.StartedBy == primary.Id).ThenBy(t => t.CreatedAt).ToList();
            if (!eligible.Contains(instance))
            {
                stops.AddRange(here.Select(t => new TaskStop(t.Id, draining ? reason : ReasonDaemonPlacement)));
                continue;
            }
            // One task per instance; a daemon rollout replaces in place (stop the old, then start the new).
            var keep = here.FirstOrDefault(t => t.StartedBy == primary.Id || !launching);
            stops.AddRange(here.Where(t => t != keep).Select(t => new TaskStop(t.Id, reason)));
            if (keep is null && here.Count == 0 && launching) missing.Add(instance);
        }
        return (stops, missing.Count > 0 ? [new TaskStart(primary.Id, primary.TaskDefinitionArn, missing.Count, missing)] : []);
    }

    private static bool IsDaemonTarget(ServiceView view, ContainerInstanceRecord instance)
        => instance.Status == ContainerInstanceRecord.Active && view.DaemonEligible(instance);

    /// <summary>Whether the task's target is healthy in each of its target groups (true when the view does not say).</summary>
    public static bool TargetServing(ServiceView view, TaskRecord task) => view.TargetHealthy?.Contains(task.Id) ?? true;

    /// <summary>RUNNING, and HEALTHY where the task definition has a health check; never UNHEALTHY.</summary>
    public static bool IsHealthy(TaskRecord task, bool hasHealthCheck)
        => task.LastStatus == EcsTaskStatus.Running && task.DesiredStatus == EcsTaskStatus.Running
           && (hasHealthCheck ? task.HealthStatus == HealthStatus.Healthy : task.HealthStatus != HealthStatus.Unhealthy);

    /// <summary>A launch that failed: stopped by the task itself or its worker, not by a user or the scheduler.</summary>
    public static bool IsFailure(TaskRecord task)
        => task.StopCode is "TaskFailedToStart" or "EssentialContainerExited"
           || task.StoppedReason == ReasonUnhealthy || task.StoppedReason == ReasonStuck || FailedElbHealthChecks(task.StoppedReason) is not null;

    private static Deployment Counted(Deployment deployment, IReadOnlyCollection<TaskRecord> tasks, int desired, ServiceView view)
    {
        var running = tasks.Count(t => t.LastStatus == EcsTaskStatus.Running);
        var pending = tasks.Count - running;
        var failed = FailedLaunches(deployment, view);
        return deployment.DesiredCount == desired && deployment.RunningCount == running && deployment.PendingCount == pending && deployment.FailedTasks == failed
            ? deployment
            : deployment with { DesiredCount = desired, RunningCount = running, PendingCount = pending, FailedTasks = failed, UpdatedAt = view.Now };
    }

    private static Deployment? LastCompleted(IEnumerable<Deployment> deployments, string primaryId)
        => deployments.Where(d => d.Id != primaryId && d.RolloutState == DeploymentRolloutState.Completed)
            .OrderByDescending(d => d.CreatedAt).FirstOrDefault();

    /// <summary>
    /// The deployment's failed launches: those among its stopped tasks, or as many as were counted
    /// before, whichever is more (the retention sweep deletes tasks stopped long ago).
    /// </summary>
    private static int FailedLaunches(Deployment deployment, ServiceView view)
        => Math.Max(deployment.FailedTasks, view.Tasks.Count(t => t.StartedBy == deployment.Id && t.IsStopped && IsFailure(t)));

    private static bool LastEventIsSteady(ServiceRecord service)
        => service.Events.Count > 0 && service.Events[0].Message.EndsWith("has reached a steady state.", StringComparison.Ordinal);

    /// <summary>
    /// Newest first, at most <see cref="ServiceRecord.MaxEvents"/>; each new event gets an id from
    /// <paramref name="newId"/> (<see cref="ServiceEvents.NewId"/> when not given).
    /// </summary>
    public static IReadOnlyList<ServiceEvent> AddEvents(IReadOnlyList<ServiceEvent> existing, IEnumerable<string> messages, DateTimeOffset now, Func<string>? newId = null)
    {
        newId ??= ServiceEvents.NewId;
        var added = messages.Select(m => new ServiceEvent(newId(), now, m)).Reverse().ToList();
        return added.Count == 0 ? existing : [.. added, .. existing.Take(ServiceRecord.MaxEvents - added.Count)];
    }

    // A rollback deployment's id derives from the failed one, so a replayed decision adds it once.
    private static string RollbackId(string failedId) => "ecs-svc/" + string.Concat(failedId.Where(char.IsAsciiDigit).Reverse());

    private static TimeSpan? Min(TimeSpan? a, TimeSpan b) => a is null || b < a ? b : a;
}
