using Serverless.Core.ContainerInstances;
using Serverless.Core.Services;
using Serverless.Core.Tasks;
using TaskStatus = Serverless.Core.Tasks.TaskStatus;

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
/// ECS's threshold of failed launches. Idempotent: the same view always gives the same step.
/// </summary>
public static class Rollout
{
    /// <summary>A task not RUNNING after this long is stopped and replaced.</summary>
    public static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(5);

    public const string ReasonScaling = "Scaling activity initiated by ({0})";
    public const string ReasonUnhealthy = "Task failed container health checks";
    public const string ReasonStuck = "Task did not reach RUNNING within the start deadline";
    public const string ReasonDaemonPlacement = "Task is on a container instance that no longer takes this daemon service's tasks";
    public const string ReasonInstanceDraining = "Container instance is draining";

    /// <summary>ECS's circuit breaker threshold: half the desired count, at least 3, at most 200.</summary>
    public static int FailureThreshold(int desired) => Math.Clamp((int)Math.Ceiling(desired * 0.5), 3, 200);

    public static RolloutStep NextStep(ServiceView view)
    {
        var service = view.Service;
        if (service.Status == ServiceRecord.Inactive || service.Primary is null)
            return new RolloutStep(service, [], [], null);

        var primary = service.Primary;
        var live = view.Tasks.Where(t => !t.IsStopped && t.DesiredStatus == TaskStatus.Running).ToList();
        var stopping = view.Tasks.Count(t => !t.IsStopped && t.DesiredStatus == TaskStatus.Stopped);
        var stops = new List<TaskStop>();
        var starts = new List<TaskStart>();
        TimeSpan? checkAgain = null;

        // Tasks that must go whatever the rollout: unhealthy past the grace period, stuck starting.
        var grace = TimeSpan.FromSeconds(service.HealthCheckGracePeriodSeconds ?? 0);
        foreach (var task in live)
        {
            if (task.LastStatus == TaskStatus.Running && task.HealthStatus == "UNHEALTHY")
            {
                var graceEnds = (task.StartedAt ?? task.CreatedAt) + grace;
                if (view.Now >= graceEnds) stops.Add(new TaskStop(task.Id, ReasonUnhealthy));
                else checkAgain = Min(checkAgain, graceEnds - view.Now);
            }
            else if (TaskStatus.Rank(task.LastStatus) < TaskStatus.Rank(TaskStatus.Running))
            {
                var deadline = task.CreatedAt + StartDeadline;
                if (view.Now >= deadline) stops.Add(new TaskStop(task.Id, ReasonStuck));
                else checkAgain = Min(checkAgain, deadline - view.Now);
            }
        }
        var stopped = stops.Select(s => s.TaskId).ToHashSet();
        var remaining = live.Where(t => !stopped.Contains(t.Id)).ToList();

        // The circuit breaker: too many failed launches of an in-progress deployment.
        var deployments = service.Deployments.ToList();
        var events = new List<string>();
        var config = service.DeploymentConfiguration;
        if (config.CircuitBreakerEnable && primary.RolloutState == DeploymentStatus.InProgress)
        {
            var failed = FailedLaunches(primary, view);
            if (failed >= FailureThreshold(service.DesiredCount))
            {
                events.Add($"(service {service.Name}) (deployment {primary.Id}) deployment failed: tasks failed to start.");
                var failedDeployment = primary with
                {
                    RolloutState = DeploymentStatus.Failed,
                    RolloutStateReason = $"ECS deployment circuit breaker: tasks failed to start.",
                    FailedTasks = failed,
                    UpdatedAt = view.Now,
                };
                var lastGood = LastCompleted(deployments, primary.Id);
                if (config.CircuitBreakerRollback && lastGood is not null)
                {
                    var rollback = new Deployment
                    {
                        Id = RollbackId(primary.Id),
                        Status = DeploymentStatus.Primary,
                        TaskDefinitionArn = lastGood.TaskDefinitionArn,
                        DesiredCount = service.DesiredCount,
                        RolloutState = DeploymentStatus.InProgress,
                        RolloutStateReason = $"ECS deployment circuit breaker: rolling back to deploymentId {lastGood.Id}.",
                        CreatedAt = view.Now,
                        UpdatedAt = view.Now,
                    };
                    events.Add($"(service {service.Name}) rolling back to deployment {lastGood.Id}.");
                    deployments = [rollback, .. deployments.Select(d => d.Id == primary.Id ? failedDeployment with { Status = DeploymentStatus.Active } : d)];
                    service = service with { TaskDefinitionArn = lastGood.TaskDefinitionArn };
                    primary = rollback;
                }
                else
                {
                    deployments = deployments.Select(d => d.Id == primary.Id ? failedDeployment : d).ToList();
                    primary = failedDeployment;
                }
            }
        }

        var desired = service.Status == ServiceRecord.Draining ? 0
            : service.IsDaemon ? view.Instances.Count(i => IsDaemonTarget(view, i))
            : service.DesiredCount;
        var launching = primary.RolloutState != DeploymentStatus.Failed;

        if (service.IsDaemon)
            PlanDaemon(view, primary, remaining, stops, starts, launching, service.Status == ServiceRecord.Draining);
        else
            PlanReplica(view, service, primary, desired, remaining, live.Count + stopping, stops, starts, launching);

        // Record what the service will look like once this step is applied.
        stopped = stops.Select(s => s.TaskId).ToHashSet();
        var after = live.Where(t => !stopped.Contains(t.Id)).ToList();
        var primaryAfter = after.Where(t => t.StartedBy == primary.Id).ToList();
        var oldAfter = after.Where(t => t.StartedBy != primary.Id).ToList();
        var started = starts.Sum(s => s.OnInstances?.Count ?? s.Count);

        // Old deployments leave the list once they have no tasks left, except the newest COMPLETED
        // one: it stays, hidden as INACTIVE, until the primary completes, so that the circuit breaker
        // can roll back to it even after failing tasks that ran for a moment replaced all of its own.
        var fallback = LastCompleted(deployments, primary.Id)?.Id;
        deployments = deployments
            .Select(d => d.Id == primary.Id
                ? Counted(d, primaryAfter, desired, view)
                : Counted(d, after.Where(t => t.StartedBy == d.Id).ToList(), after.Count(t => t.StartedBy == d.Id), view))
            .Where(d => d.Id == primary.Id || d.Id == fallback || after.Any(t => t.StartedBy == d.Id))
            .Select(d => d.Id != primary.Id && d.Status != DeploymentStatus.Inactive && !after.Any(t => t.StartedBy == d.Id)
                ? d with { Status = DeploymentStatus.Inactive, UpdatedAt = view.Now }
                : d)
            .ToList();

        var primaryNow = deployments.First(d => d.Id == primary.Id);
        var healthyPrimary = primaryAfter.Count(t => IsHealthy(t, view.PrimaryHasHealthCheck));
        var steady = !oldAfter.Any() && started == 0 && stops.Count == 0 && healthyPrimary == desired && primaryAfter.Count == desired;
        if (steady && primaryNow.RolloutState == DeploymentStatus.InProgress)
        {
            primaryNow = primaryNow with { RolloutState = DeploymentStatus.Completed, RolloutStateReason = "ECS deployment " + primaryNow.Id + " completed.", UpdatedAt = view.Now };
            deployments = deployments.Where(d => d.Status != DeploymentStatus.Inactive).Select(d => d.Id == primaryNow.Id ? primaryNow : d).ToList();
            events.Add($"(service {service.Name}) (deployment {primaryNow.Id}) deployment completed.");
        }
        // A deleted service is INACTIVE once every task has actually stopped, not when told to.
        var status = service.Status == ServiceRecord.Draining && view.Tasks.All(t => t.IsStopped) ? ServiceRecord.Inactive : service.Status;
        if (steady && status == ServiceRecord.Active && !LastEventIsSteady(service))
            events.Add($"(service {service.Name}) has reached a steady state.");

        var next = service with
        {
            // A DAEMON service's desired count is the number of instances it should run on.
            DesiredCount = service.IsDaemon ? desired : service.DesiredCount,
            Status = status,
            Deployments = deployments,
            Events = AddEvents(service.Events, events, view.Now),
        };
        return new RolloutStep(next, starts, stops, checkAgain);
    }

    private static void PlanReplica(
        ServiceView view, ServiceRecord service, Deployment primary, int desired, List<TaskRecord> remaining, int occupying,
        List<TaskStop> stops, List<TaskStart> starts, bool launching)
    {
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
        var healthy = remaining.Count(t => IsHealthy(t, t.StartedBy == primary.Id ? view.PrimaryHasHealthCheck : false));

        // Scale in: surplus tasks of the current deployment go, not-yet-running ones first.
        if (current.Count > desired)
        {
            foreach (var task in current.OrderBy(t => t.LastStatus == TaskStatus.Running).ThenByDescending(t => t.CreatedAt).ThenBy(t => t.Id, StringComparer.Ordinal).Take(current.Count - desired))
            {
                stops.Add(new TaskStop(task.Id, reason));
                if (IsHealthy(task, view.PrimaryHasHealthCheck)) healthy--;
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
            .Concat(old.Where(t => IsHealthy(t, false)).OrderBy(t => t.CreatedAt).ThenBy(t => t.Id, StringComparer.Ordinal).Select(t => new TaskStop(t.Id, reason)));
        stops.AddRange(leaving.Take(stoppable));

        // Start what the current deployment lacks, within maximumPercent of every task that still
        // holds a slot: a task told to stop keeps its slot until it has stopped.
        if (launching && current.Count < desired)
        {
            var count = Math.Min(desired - current.Count, Math.Max(0, maxTotal - occupying));
            if (count > 0) starts.Add(new TaskStart(primary.Id, primary.TaskDefinitionArn, count));
        }
    }

    private static void PlanDaemon(
        ServiceView view, Deployment primary, List<TaskRecord> remaining, List<TaskStop> stops, List<TaskStart> starts, bool launching, bool draining)
    {
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
        if (missing.Count > 0) starts.Add(new TaskStart(primary.Id, primary.TaskDefinitionArn, missing.Count, missing));
    }

    private static bool IsDaemonTarget(ServiceView view, ContainerInstanceRecord instance)
        => instance.Status == ContainerInstanceRecord.Active && view.DaemonEligible(instance);

    /// <summary>RUNNING, and HEALTHY where the task definition has a health check; never UNHEALTHY.</summary>
    public static bool IsHealthy(TaskRecord task, bool hasHealthCheck)
        => task.LastStatus == TaskStatus.Running && task.DesiredStatus == TaskStatus.Running
           && (hasHealthCheck ? task.HealthStatus == "HEALTHY" : task.HealthStatus != "UNHEALTHY");

    /// <summary>A launch that failed: stopped by the task itself or its worker, not by a user or the scheduler.</summary>
    public static bool IsFailure(TaskRecord task)
        => task.StopCode is "TaskFailedToStart" or "EssentialContainerExited"
           || task.StoppedReason == ReasonUnhealthy || task.StoppedReason == ReasonStuck;

    private static Deployment Counted(Deployment deployment, List<TaskRecord> tasks, int desired, ServiceView view)
    {
        var running = tasks.Count(t => t.LastStatus == TaskStatus.Running);
        var pending = tasks.Count - running;
        var failed = FailedLaunches(deployment, view);
        return deployment.DesiredCount == desired && deployment.RunningCount == running && deployment.PendingCount == pending && deployment.FailedTasks == failed
            ? deployment
            : deployment with { DesiredCount = desired, RunningCount = running, PendingCount = pending, FailedTasks = failed, UpdatedAt = view.Now };
    }

    private static Deployment? LastCompleted(IEnumerable<Deployment> deployments, string primaryId)
        => deployments.Where(d => d.Id != primaryId && d.RolloutState == DeploymentStatus.Completed)
            .OrderByDescending(d => d.CreatedAt).FirstOrDefault();

    /// <summary>
    /// The deployment's failed launches: those among its stopped tasks, or as many as were counted
    /// before, whichever is more (the retention sweep deletes tasks stopped long ago).
    /// </summary>
    private static int FailedLaunches(Deployment deployment, ServiceView view)
        => Math.Max(deployment.FailedTasks, view.Tasks.Count(t => t.StartedBy == deployment.Id && t.IsStopped && IsFailure(t)));

    private static bool LastEventIsSteady(ServiceRecord service)
        => service.Events.Count > 0 && service.Events[0].Message.EndsWith("has reached a steady state.", StringComparison.Ordinal);

    /// <summary>Newest first, at most <see cref="ServiceRecord.MaxEvents"/>.</summary>
    public static IReadOnlyList<ServiceEvent> AddEvents(IReadOnlyList<ServiceEvent> existing, IEnumerable<string> messages, DateTimeOffset now)
    {
        var added = messages.Select(m => new ServiceEvent(Guid.NewGuid().ToString(), now, m)).Reverse().ToList();
        return added.Count == 0 ? existing : [.. added, .. existing.Take(ServiceRecord.MaxEvents - added.Count)];
    }

    // A rollback deployment's id derives from the failed one, so a replayed decision adds it once.
    private static string RollbackId(string failedId) => "ecs-svc/" + string.Concat(failedId.Where(char.IsAsciiDigit).Reverse());

    private static TimeSpan? Min(TimeSpan? a, TimeSpan b) => a is null || b < a ? b : a;
}
