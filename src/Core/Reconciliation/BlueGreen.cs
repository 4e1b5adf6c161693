using System.Text.Json.Nodes;
using Serverless.Core.Services;
using Serverless.Core.Tasks;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// ECS-native blue/green (and linear, canary) deployments as plain decisions over a <see cref="ServiceView"/>.
/// The new revision (green) is started beside the running one (blue) at full size in the other target
/// group of each load balancer entry; once every green task is healthy, and its target too, test traffic
/// and then production traffic move to green by the listener rules' forward weights (all at once, or in
/// canary or linear steps); after the bake time the blue tasks are stopped. A <c>PAUSE</c> hook holds the
/// deployment at its stage until ContinueServiceDeployment; a rollback (requested, by a hook, or by the
/// circuit breaker) moves traffic back to blue before green is stopped, so production only ever points at
/// tasks that passed their health checks. The traffic a lifecycle asks for is written by the reconciler
/// (<see cref="DeploymentLifecycle.Traffic"/>); a stage that moves traffic ends only once the view says the
/// rules matched it when read (<see cref="ServiceView.TrafficApplied"/>), so every shift has settled in the
/// data plane before the next step.
/// </summary>
public static class BlueGreen
{
    /// <summary>How soon to look again while waiting for traffic, targets or hooks.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromSeconds(2);
    public const int MaxHistory = 10;

    public const string ReasonStopRequested = "Service deployment rolled back because of a StopServiceDeployment request.";
    public const string ReasonHookRollback = "Service deployment rolled back because a lifecycle hook asked for a rollback.";
    public const string ReasonHookTimedOut = "Service deployment rolled back because a lifecycle hook timed out.";
    public const string ReasonCircuitBreaker = "Service deployment rolled back because the circuit breaker is triggered.";

    /// <summary>Whether the service has load balancer entries with an <c>advancedConfiguration</c> (two target groups).</summary>
    public static bool HasAlternates(ServiceRecord service)
        => service.Passthrough["loadBalancers"] is JsonArray entries && entries.Any(e => e?["advancedConfiguration"]?["alternateTargetGroupArn"] is not null);

    /// <summary>Whether the service's PRIMARY deployment is a traffic-shifting deployment that has not ended.</summary>
    public static bool Runs(ServiceRecord service)
        => service.Status == ServiceRecord.Active && service.Primary?.Lifecycle is { InProgress: true, Stage: not null };

    /// <summary>
    /// Gives a PRIMARY deployment without a lifecycle its own: a traffic-shifting one when the strategy says so
    /// and another deployment still runs tasks (the blue), else one that only records its target group slot
    /// (that of the deployment before it, so a rolling update keeps serving behind the live target group).
    /// </summary>
    public static ServiceView Prepare(ServiceView view)
    {
        var service = view.Service;
        var primary = service.Primary;
        if (primary is null || primary.Lifecycle is not null || service.IsDaemon || !HasAlternates(service)) return view;
        var settings = BlueGreenSettings.Of(service);
        var previous = service.Deployments.Where(d => d.Id != primary.Id && d.Lifecycle is not null).OrderByDescending(d => d.CreatedAt).FirstOrDefault();
        var blue = service.Deployments.Where(d => d.Id != primary.Id && view.Tasks.Any(t => t.StartedBy == d.Id && !t.IsStopped && t.DesiredStatus == EcsTaskStatus.Running))
            .OrderByDescending(d => d.CreatedAt).FirstOrDefault();
        var blueSlot = (blue ?? previous)?.Lifecycle?.AlternateSlot ?? false;
        var lifecycle = DeploymentStrategies.ShiftsTraffic(settings.Strategy) && blue is not null && primary.RolloutState == DeploymentRolloutState.InProgress
            ? new DeploymentLifecycle
            {
                Strategy = settings.Strategy,
                AlternateSlot = !blueSlot,
                Stage = LifecycleStages.ReconcileService,
                Status = ServiceDeploymentStatus.InProgress,
                SourceDeploymentId = blue.Id,
                StageEnteredAt = view.Now,
                StartedAt = view.Now,
            }
            : new DeploymentLifecycle { Strategy = DeploymentStrategies.Rolling, AlternateSlot = blueSlot, StartedAt = view.Now };
        var deployments = service.Deployments.Select(d => d.Id == primary.Id ? d with { Lifecycle = lifecycle } : d).ToList();
        return view with { Service = service with { Deployments = deployments } };
    }

    /// <summary>The next step of a service whose PRIMARY is a traffic-shifting deployment in progress (<see cref="Runs"/>).</summary>
    public static RolloutStep NextStep(ServiceView view)
    {
        var service = view.Service;
        var green = service.Primary!;
        var lc = green.Lifecycle!;
        var settings = BlueGreenSettings.Of(service);
        var now = view.Now;
        var desired = service.DesiredCount;

        var live = view.Tasks.Where(t => !t.IsStopped && t.DesiredStatus == EcsTaskStatus.Running).ToList();
        var (forced, checkAgain) = Rollout.ForcedStops(view, live);
        var remaining = live.Where(t => forced.All(s => s.TaskId != t.Id)).ToList();
        var greenTasks = remaining.Where(t => t.StartedBy == green.Id).ToList();
        var blueTasks = remaining.Where(t => t.StartedBy != green.Id).ToList();
        var stops = new List<TaskStop>(forced);
        var starts = new List<TaskStart>();
        var messages = new List<string>();
        var scaling = string.Format(System.Globalization.CultureInfo.InvariantCulture, Rollout.ReasonScaling, green.Id);
        IReadOnlyList<Deployment> deployments = service.Deployments;
        var primary = green;

        if (lc.Status == ServiceDeploymentStatus.InProgress && RollbackReason(view, lc, settings) is { } why)
        {
            lc = StartRollback(lc, why, now);
            messages.Add($"(service {service.Name}) (deployment {green.Id}) {why}");
        }

        if (lc.Status is ServiceDeploymentStatus.RollbackInProgress or ServiceDeploymentStatus.RollbackRequested)
        {
            lc = lc with { Status = ServiceDeploymentStatus.RollbackInProgress, ProductionPermille = 0, TestOnGreen = false };
            var blue = service.Deployments.FirstOrDefault(d => d.Id == lc.SourceDeploymentId);
            // The view says whether the rules carried the traffic of the lifecycle as read: a rollback that starts in this step waits a look.
            if (view.TrafficApplied && green.Lifecycle!.Traffic == lc.Traffic && blue is not null)
            {
                // Production and test traffic are on blue again: blue is the service's revision once more, green goes.
                lc = lc with { Status = ServiceDeploymentStatus.RollbackSuccessful, StatusReason = lc.RollbackReason, FinishedAt = now };
                var failed = green with
                {
                    Status = DeploymentStatus.Active, RolloutState = DeploymentRolloutState.Failed,
                    RolloutStateReason = lc.RollbackReason, Lifecycle = lc, UpdatedAt = now,
                };
                primary = blue with
                {
                    Status = DeploymentStatus.Primary, RolloutState = DeploymentRolloutState.Completed, DesiredCount = desired, UpdatedAt = now,
                    Lifecycle = blue.Lifecycle ?? new DeploymentLifecycle { AlternateSlot = !lc.AlternateSlot, StartedAt = blue.CreatedAt },
                };
                deployments = [primary, .. service.Deployments.Where(d => d.Id != blue.Id).Select(d => d.Id == green.Id ? failed : d)];
                service = service with { TaskDefinitionArn = blue.TaskDefinitionArn };
                stops.AddRange(greenTasks.Select(t => new TaskStop(t.Id, scaling)));
                messages.Add($"(service {service.Name}) rolled back to deployment {blue.Id}: production traffic is on it.");
            }
            else
            {
                checkAgain = Min(checkAgain, Poll);
                deployments = Replace(service.Deployments, green with { Lifecycle = lc, UpdatedAt = now });
                if (ReplaceBlue(blue, blueTasks, desired) is { } replacement) starts.Add(replacement);
            }
            return Compose(view, service, deployments, primary, live, stops, starts, desired, messages, checkAgain);
        }

        // Forward through the stages as far as the facts allow: each stage's work, then its hook, then the next stage.
        for (var guard = 0; guard < LifecycleStages.Order.Count + 2 && lc.Status == ServiceDeploymentStatus.InProgress; guard++)
        {
            var stage = lc.Stage!;
            var (done, traffic, wait) = Work(view, settings, lc, greenTasks, blueTasks, desired);
            lc = traffic;
            if (wait is { } w) checkAgain = Min(checkAgain, w);
            if (!done) break;

            if (settings.HookAt(stage) is { } hook)
            {
                var run = lc.Hooks.LastOrDefault(h => h.Stage == stage);
                if (run is null)
                {
                    run = new HookRun(view.NewEventId(), stage, HookStatus.AwaitingAction, hook.TimeoutMinutes is { } m ? now.AddMinutes(m) : null, hook.TimeoutAction);
                    lc = lc with { Hooks = [.. lc.Hooks, run] };
                    messages.Add($"(service {service.Name}) (deployment {green.Id}) is paused at {LifecycleStages.Shown(stage)} by lifecycle hook {run.HookId}.");
                }
                if (run.Status == HookStatus.AwaitingAction && run.ExpiresAt is { } expires && now >= expires)
                {
                    run = run with { Status = HookStatus.TimedOut };
                    lc = lc with { Hooks = lc.Hooks.Select(h => h.HookId == run.HookId ? run : h).ToList() };
                    if (run.TimeoutAction == HookStatus.Rollback)
                    {
                        lc = StartRollback(lc, ReasonHookTimedOut, now);
                        messages.Add($"(service {service.Name}) (deployment {green.Id}) {ReasonHookTimedOut}");
                        checkAgain = TimeSpan.Zero;
                        break;
                    }
                }
                if (run.Status == HookStatus.AwaitingAction)
                {
                    if (run.ExpiresAt is { } at) checkAgain = Min(checkAgain, at - now);
                    break;
                }
            }

            if (stage == LifecycleStages.CleanUp)
            {
                lc = lc with { Status = ServiceDeploymentStatus.Successful, StatusReason = "Service deployment completed successfully.", FinishedAt = now };
                break;
            }
            var next = LifecycleStages.Order[LifecycleStages.IndexOf(stage) + 1];
            lc = lc with { Stage = next, StageEnteredAt = now };
            if (next == LifecycleStages.TestTrafficShift) lc = lc with { TestOnGreen = true };
            if (next == LifecycleStages.ProductionTrafficShift) lc = lc with { ProductionPermille = settings.FirstStep, ShiftedAt = now };
            if (next is LifecycleStages.TestTrafficShift or LifecycleStages.ProductionTrafficShift)
            {
                // The rules are rewritten before anything else happens: look again once they are.
                checkAgain = TimeSpan.Zero;
                break;
            }
        }

        var stageIndex = LifecycleStages.IndexOf(lc.Stage!);
        var launching = lc.Status == ServiceDeploymentStatus.InProgress && stageIndex >= LifecycleStages.IndexOf(LifecycleStages.ScaleUp);
        // Green runs at full size beside blue (ECS's blue/green runs 200 %), whatever maximumPercent says.
        if (launching && greenTasks.Count < desired) starts.Add(new TaskStart(green.Id, green.TaskDefinitionArn, desired - greenTasks.Count));
        if (greenTasks.Count > desired)
            stops.AddRange(greenTasks.OrderBy(t => t.LastStatus == EcsTaskStatus.Running).ThenByDescending(t => t.CreatedAt).ThenBy(t => t.Id, StringComparer.Ordinal)
                .Take(greenTasks.Count - desired).Select(t => new TaskStop(t.Id, scaling)));
        if (lc.Stage == LifecycleStages.CleanUp)
            stops.AddRange(blueTasks.Select(t => new TaskStop(t.Id, scaling)));
        // Until clean-up, blue is what production falls back to: a blue task that stopped (its container died,
        // its instance was lost) is replaced as the scheduler replaces any, so a rollback finds blue at full size.
        else if (lc.InProgress && ReplaceBlue(service.Deployments.FirstOrDefault(d => d.Id == lc.SourceDeploymentId), blueTasks, desired) is { } replacement)
            starts.Add(replacement);
        if (lc.Status == ServiceDeploymentStatus.Successful)
            messages.Add($"(service {service.Name}) (deployment {green.Id}) {lc.Strategy} deployment completed: production traffic is on it.");
        if (lc.InProgress && starts.Count == 0 && stops.Count == 0) checkAgain = Min(checkAgain, Poll);

        deployments = Replace(service.Deployments, green with { Lifecycle = lc, UpdatedAt = lc == green.Lifecycle ? green.UpdatedAt : now });
        primary = deployments.First(d => d.Id == green.Id);
        return Compose(view, service, deployments, primary, live, stops, starts, desired, messages, checkAgain);
    }

    /// <summary>The start that brings <paramref name="blue"/> back to <paramref name="desired"/> running tasks; null when it has them.</summary>
    private static TaskStart? ReplaceBlue(Deployment? blue, IReadOnlyList<TaskRecord> blueTasks, int desired)
        => blue is not null && blueTasks.Count(t => t.StartedBy == blue.Id) is var running && running < desired
            ? new TaskStart(blue.Id, blue.TaskDefinitionArn, desired - running)
            : null;

    /// <summary>Whether <paramref name="lc"/>'s stage has done its work, the lifecycle after it (a linear or canary step), and when to look again.</summary>
    private static (bool Done, DeploymentLifecycle Lifecycle, TimeSpan? Wait) Work(
        ServiceView view, BlueGreenSettings settings, DeploymentLifecycle lc, IReadOnlyList<TaskRecord> green, IReadOnlyList<TaskRecord> blue, int desired)
    {
        switch (lc.Stage)
        {
            case LifecycleStages.ScaleUp:
                // Every green task healthy, and its target healthy in each of the service's target groups.
                var ready = green.Count == desired && green.All(t => Rollout.IsHealthy(t, view.PrimaryHasHealthCheck) && (view.TargetHealthy?.Contains(t.Id) ?? true));
                return (ready, lc, ready ? null : Poll);
            case LifecycleStages.TestTrafficShift:
                return (view.TrafficApplied, lc, view.TrafficApplied ? null : Poll);
            case LifecycleStages.ProductionTrafficShift:
                if (!view.TrafficApplied) return (false, lc, Poll);
                if (lc.ProductionPermille >= TrafficState.All) return (true, lc, null);
                var (next, bake) = settings.After(lc.ProductionPermille);
                var due = (lc.ShiftedAt ?? view.Now) + bake;
                if (view.Now < due) return (false, lc, due - view.Now);
                return (false, lc with { ProductionPermille = next, ShiftedAt = view.Now }, TimeSpan.Zero);
            case LifecycleStages.BakeTime:
                var baked = (lc.StageEnteredAt ?? view.Now) + TimeSpan.FromMinutes(settings.BakeTimeMinutes);
                return view.Now >= baked ? (true, lc, null) : (false, lc, baked - view.Now);
            case LifecycleStages.CleanUp:
                return (blue.Count == 0, lc, blue.Count == 0 ? null : Poll);
            default:
                return (true, lc, null);
        }
    }

    private static string? RollbackReason(ServiceView view, DeploymentLifecycle lc, BlueGreenSettings settings)
    {
        if (lc.StopRequested == HookStatus.Rollback) return ReasonStopRequested;
        if (lc.Hooks.Any(h => h.Status == HookStatus.Failed)) return ReasonHookRollback;
        var service = view.Service;
        var green = service.Primary!;
        if (service.DeploymentConfiguration.CircuitBreakerEnable)
        {
            var failed = Math.Max(green.FailedTasks, view.Tasks.Count(t => t.StartedBy == green.Id && t.IsStopped && Rollout.IsFailure(t)));
            // Blue still serves production: a green revision that keeps failing goes, whatever the rollback flag
            // says, since production never moved to it (after the shift it is the flag's choice, as ECS's).
            if (failed >= Rollout.FailureThreshold(service.DesiredCount)
                && (service.DeploymentConfiguration.CircuitBreakerRollback || lc.ProductionPermille == 0))
                return ReasonCircuitBreaker;
        }
        _ = settings;
        return null;
    }

    private static DeploymentLifecycle StartRollback(DeploymentLifecycle lc, string reason, DateTimeOffset now) => lc with
    {
        Status = ServiceDeploymentStatus.RollbackInProgress,
        StatusReason = reason,
        RollbackReason = reason,
        RollbackStartedAt = now,
        ProductionPermille = 0,
        TestOnGreen = false,
        // A paused hook is answered by the rollback.
        Hooks = lc.Hooks.Select(h => h.Status == HookStatus.AwaitingAction ? h with { Status = HookStatus.Failed } : h).ToList(),
    };

    private static RolloutStep Compose(
        ServiceView view, ServiceRecord service, IReadOnlyList<Deployment> deployments, Deployment primary, IReadOnlyList<TaskRecord> live,
        IReadOnlyList<TaskStop> stops, IReadOnlyList<TaskStart> starts, int desired, List<string> messages, TimeSpan? checkAgain)
    {
        var distinct = stops.GroupBy(s => s.TaskId).Select(g => g.First()).ToList();
        var (counted, events) = Rollout.Counts(view, service, deployments, primary, live, distinct, starts, desired);
        messages.AddRange(events.Messages);
        var next = service with
        {
            Deployments = counted,
            // A deployment that leaves in this step is kept as this step left it (a rollback's outcome included).
            DeploymentHistory = WithHistory(service.DeploymentHistory, deployments, counted, view.Now),
            Events = Rollout.AddEvents(service.Events, messages, view.Now, view.NewEventId),
        };
        return new RolloutStep(next, starts, distinct, checkAgain);
    }

    private static IReadOnlyList<Deployment> Replace(IReadOnlyList<Deployment> deployments, Deployment changed)
        => deployments.Select(d => d.Id == changed.Id ? changed : d).ToList();

    /// <summary>
    /// The service's finished deployments, newest first (at most <see cref="MaxHistory"/>): those that
    /// <paramref name="after"/> no longer holds join them, so ListServiceDeployments still finds them.
    /// </summary>
    public static IReadOnlyList<Deployment> WithHistory(IReadOnlyList<Deployment> history, IReadOnlyList<Deployment> before, IReadOnlyList<Deployment> after, DateTimeOffset now)
    {
        var gone = before.Where(d => after.All(a => a.Id != d.Id) && history.All(h => h.Id != d.Id))
            .Select(d => d with { Status = DeploymentStatus.Inactive, RunningCount = 0, PendingCount = 0, UpdatedAt = now })
            .ToList();
        return gone.Count == 0 ? history : [.. gone.OrderByDescending(d => d.CreatedAt), .. history.Take(MaxHistory - gone.Count)];
    }

    /// <summary><paramref name="step"/> with the deployments it dropped kept in the service's history.</summary>
    public static RolloutStep Record(ServiceRecord before, RolloutStep step, DateTimeOffset now)
    {
        var history = WithHistory(step.Service.DeploymentHistory, before.Deployments, step.Service.Deployments, now);
        return ReferenceEquals(history, step.Service.DeploymentHistory) ? step : step with { Service = step.Service with { DeploymentHistory = history } };
    }

    private static TimeSpan? Min(TimeSpan? a, TimeSpan b) => a is null || b < a ? b : a;
}
