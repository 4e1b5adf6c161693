using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.LoadBalancing;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Scheduling;
using Serverless.Core.Services;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;

namespace Serverless.Core.Reconciliation;

/// <summary>What a reconcile asks of its caller: nothing, or another look after a delay.</summary>
public sealed record ReconcileResult(TimeSpan? RequeueAfter)
{
    public static readonly ReconcileResult Done = new((TimeSpan?)null);

    public static ReconcileResult After(TimeSpan delay) => new(delay);
}

/// <summary>
/// The service controller. Level-triggered and idempotent: it reads the service and its tasks
/// fresh, asks <see cref="Rollout"/> for the next step, and applies it. While it starts or stops
/// tasks it holds a lease on the service row (a conditional write on the ETag it read), so a second
/// control plane, or a duplicated message, can never act on the same service at the same time.
/// </summary>
public sealed class ServiceReconciler(
    ServiceStore services,
    TaskStore tasks,
    TaskDefinitionStore definitions,
    ContainerInstanceStore instances,
    TaskLauncher launcher,
    EcsOptions options,
    TimeProvider time,
    ILogger<ServiceReconciler> logger,
    ServiceTargets? targets = null,
    ListenerTraffic? traffic = null)
{
    private readonly TimeSpan _leaseDuration = TimeSpan.FromSeconds(options.ServiceLeaseSeconds);
    private static readonly TimeSpan PlacementRetry = TimeSpan.FromSeconds(20);

    /// <summary>How soon a reconcile that lost a write to the service row (another reconcile, an API call) looks again.</summary>
    private static readonly TimeSpan LostRaceRetry = TimeSpan.FromMilliseconds(200);
    private readonly ConcurrentDictionary<string, bool> _healthChecks = new();

    public async Task<ReconcileResult> ReconcileAsync(ServiceKey key, CancellationToken cancellationToken)
    {
        var service = await services.FindAsync(key.Cluster, key.Name, cancellationToken);
        if (service is null || service.Status == ServiceRecord.Inactive) return ReconcileResult.Done;   // nothing to converge

        // The lease belongs to one reconcile, not to a process: messages for the same service can
        // run at once in one process too (a queue batch), and each must see the other's lease.
        var now = time.GetUtcNow();
        if (ServiceLease.HeldByAnother(service, now))
            // Look again shortly: the holder usually finishes in milliseconds, and what this message
            // announced may be newer than what the holder read.
            return ReconcileResult.After(TimeSpan.FromMilliseconds(Math.Min(1000, (service.LeaseExpiresAt!.Value - now).TotalMilliseconds + 50)));

        var serviceTasks = await tasks.ListForGroupAsync(key.Cluster, service.Group, cancellationToken, includeStopped: NeedsStoppedTasks(service));
        // A blue/green deployment's traffic is brought to what its lifecycle asks for first; it moves on only
        // once the rules carried it when read, and counts a task as ready only once its target is healthy.
        var trafficApplied = !BlueGreen.Runs(service) || traffic is null || await traffic.EnsureAsync(service, service.Primary!, cancellationToken);
        // Behind a load balancer: a rollout counts a new task only once its target is healthy, and a task whose
        // target a group reports unhealthy is replaced once its grace period is over (ECS's ELB health checks).
        var targetHealth = targets is null ? null : await targets.HealthAsync(service, serviceTasks, cancellationToken);
        var view = new ServiceView
        {
            Service = service,
            Tasks = serviceTasks,
            TrafficApplied = trafficApplied,
            TargetHealthy = service.Primary is { RolloutState: DeploymentRolloutState.InProgress } ? targetHealth?.Healthy : null,
            TargetUnhealthy = targetHealth?.Unhealthy ?? Rollout.NoUnhealthyTargets,
            PrimaryHasHealthCheck = await HasHealthCheckAsync(service.Primary?.TaskDefinitionArn, cancellationToken),
            Instances = service.IsDaemon ? await instances.ListAsync(key.Cluster, cancellationToken) : [],
            DaemonEligible = DaemonEligibility(service),
            DrainingInstances = service.IsDaemon ? new HashSet<string>() : await instances.ListDrainingIdsAsync(key.Cluster, cancellationToken),
            Now = now,
        };
        var step = Rollout.NextStep(view);
        var nextStop = await ResendStopsAsync(view.Tasks, now, cancellationToken);
        if (targets is not null) await targets.SyncAsync(service, view.Tasks, view.PrimaryHasHealthCheck, cancellationToken);

        if (!step.ChangesTasks)
        {
            // A lost save (another reconcile's counts, an API update) is looked at again with that write in view:
            // another reconcile's save enqueues nothing, and what this one saw (a task that just started) must be counted.
            if (!SameRecord(service, step.Service) && !await TrySaveAsync(step.Service, cancellationToken))
                return ReconcileResult.After(LostRaceRetry);
            var later = Earliest(step.CheckAgainIn, nextStop - now);
            return later is { } delay ? ReconcileResult.After(delay) : ReconcileResult.Done;
        }

        // Claim the service before acting: losing this write means someone else changed it since
        // our read, and their change must be seen before anything is decided.
        var lease = await ServiceLease.TryClaimAsync(services, time, _leaseDuration, service, cancellationToken);
        if (lease is null) return ReconcileResult.After(LostRaceRetry);
        try
        {
            return await ActAsync(key, step, view.Tasks, lease, nextStop - now, cancellationToken);
        }
        finally
        {
            // Also on a failure: a lease left behind would stall every reconcile of the service until it expires.
            await lease.ReleaseAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// Whether a reconcile must read the service's stopped tasks, not only those that run: a deployment in progress
    /// counts its failed launches among them (the circuit breaker), and a load balancer's targets of a task that
    /// stopped are deregistered from them. Otherwise nothing decided reads a stopped task, and a service that churns
    /// keeps each for the retention period: a service scaled 0 -> 50 -> 0 a few times made every reconcile read and
    /// parse ~180 KB of them, the largest storage cost of its scale-out.
    /// </summary>
    private static bool NeedsStoppedTasks(ServiceRecord service)
        => service.Deployments.Any(d => d.RolloutState == DeploymentRolloutState.InProgress) || ServiceTargets.Of(service).Count > 0;

    /// <summary>
    /// Applies <paramref name="step"/> under <paramref name="lease"/>: every stop and every placement
    /// is preceded by <see cref="ServiceLease.HoldAsync"/>, so once another reconcile has taken the
    /// service this one starts and stops nothing more, and its record (read before the other's
    /// work) is never saved over the other's.
    /// </summary>
    /// <paramref name="nextStop"/>: when a Stop held back or to be sent again falls due, to look again then.
    private async Task<ReconcileResult> ActAsync(ServiceKey key, RolloutStep step, IReadOnlyList<TaskRecord> tasks, ServiceLease lease, TimeSpan? nextStop, CancellationToken cancellationToken)
    {
        var service = step.Service;
        var events = new List<string>();
        var placementFailed = false;
        var draining = await StopAsync(service, step.Stop, lease, events, cancellationToken);
        // A strategy's base and weights count the service's tasks that still run, per capacity provider.
        var byProvider = tasks.Where(t => t.DesiredStatus != EcsTaskStatus.Stopped && t.CapacityProviderName is not null)
            .GroupBy(t => t.CapacityProviderName!).ToDictionary(g => g.Key, g => g.Count());
        foreach (var start in step.Start)
            placementFailed |= await StartAsync(service, start, lease, events, byProvider, cancellationToken);

        if (!lease.Lost)
        {
            var recorded = step.Service with
            {
                Events = Rollout.AddEvents(step.Service.Events, events, time.GetUtcNow()),
                LeaseOwner = null,
                LeaseExpiresAt = null,
                ETag = lease.Current.ETag,
            };
            try
            {
                await services.SaveAsync(recorded, cancellationToken);
                lease.Released();
                return placementFailed ? ReconcileResult.After(Earliest(PlacementRetry, nextStop)!.Value)
                    : Earliest(Earliest(step.CheckAgainIn, draining), nextStop) is { } again ? ReconcileResult.After(again)
                    : ReconcileResult.Done;
            }
            catch (ConcurrentUpdateException)
            {
                // The API changed the service while we held it: keep our events below, free the lease, look again.
            }
        }
        else
        {
            logger.LogWarning("Service {Service} in {Cluster}: lease {Lease} was taken over while reconciling; stopped acting", key.Name, key.Cluster, lease.Owner);
        }

        // What we did is true whoever holds the service now: record it, and leave the rest of the row
        // (and a lease someone else took) as it is.
        if (events.Count > 0)
            await services.UpdateAsync(key.Cluster, key.Name, s => s with
            {
                Events = Rollout.AddEvents(s.Events, events, time.GetUtcNow()),
                LeaseOwner = s.LeaseOwner == lease.Owner ? null : s.LeaseOwner,
                LeaseExpiresAt = s.LeaseOwner == lease.Owner ? null : s.LeaseExpiresAt,
            }, cancellationToken);
        return ReconcileResult.After(lease.Lost ? LostRaceRetry : TimeSpan.Zero);
    }

    /// <summary>Stops the step's tasks; a task behind a load balancer is drained first. Returns when the next draining ends.</summary>
    private async Task<TimeSpan?> StopAsync(ServiceRecord service, IReadOnlyList<TaskStop> stops, ServiceLease lease, List<string> events, CancellationToken cancellationToken)
    {
        if (stops.Count == 0) return null;
        var now = time.GetUtcNow();
        var stopped = new List<string>();
        var draining = new List<string>();
        TimeSpan? drainingEnds = null;
        foreach (var stop in stops)
        {
            if (!await lease.HoldAsync(cancellationToken)) break;
            if (targets is not null && ServiceTargets.Of(service).Count > 0
                && await tasks.FindAsync(service.Cluster, stop.TaskId, cancellationToken) is { DesiredStatus: EcsTaskStatus.Running } serving
                && await targets.DrainAsync(service, serving, cancellationToken) is ({ } drained, var began) && drained > now)
            {
                // As ECS's DEACTIVATING: no new requests reach the task while those in flight complete; Stop comes after.
                if (began) draining.Add(serving.Id);
                drainingEnds = Earliest(drainingEnds, drained - now);
                continue;
            }
            var task = await tasks.UpdateAsync(service.Cluster, stop.TaskId, t => t.RequestStop("ServiceSchedulerInitiated", stop.Reason, now), cancellationToken);
            if (task is null || task.IsStopped) continue;
            try
            {
                await launcher.SendStopAsync(task, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The task is recorded desired STOPPED with the time of this attempt: a later reconcile sends Stop again.
                logger.LogWarning(e, "Service {Service} could not send Stop to {TaskId}; it is sent again later", service.Name, task.Id);
            }
            stopped.Add(task.Id);
            logger.LogInformation("Service {Service} stops {TaskId}: {Reason}", service.Name, task.Id, stop.Reason);
            if (Rollout.FailedElbHealthChecks(stop.Reason) is { } groupArn)
                events.Add($"(service {service.Name}) (task {task.Id}) failed ELB health checks in (target-group {groupArn})");
        }
        if (stopped.Count > 0)
            events.Add($"(service {service.Name}) has stopped {stopped.Count} running tasks: {string.Join(" ", stopped.Select(id => $"(task {id})"))}.");
        if (draining.Count > 0)
            events.Add($"(service {service.Name}) has begun draining connections on {draining.Count} tasks.");
        return drainingEnds;
    }

    /// <summary>
    /// Sends Stop again to the service's tasks told to stop that have not stopped, once
    /// <see cref="TaskDeadlines.StopResendAfter"/> has passed since the last one (a Stop can be lost
    /// between the write that asked for it and the queue). Returns when the next one falls due.
    /// </summary>
    private async Task<DateTimeOffset?> ResendStopsAsync(IReadOnlyList<TaskRecord> serviceTasks, DateTimeOffset now, CancellationToken cancellationToken)
    {
        DateTimeOffset? next = null;
        foreach (var task in serviceTasks)
        {
            if (TaskDeadlines.NextStopAt(task) is not { } due) continue;
            if (due <= now && await launcher.ResendStopIfDueAsync(task, cancellationToken)) due = now + TaskDeadlines.StopResendAfter;
            else if (due <= now) due = now + TaskDeadlines.StopResendAfter;
            next = next is null || due < next ? due : next;
        }
        return next;
    }

    private static TimeSpan? Earliest(TimeSpan? a, TimeSpan? b) => a is null ? b : b is null ? a : a < b ? a : b;

    /// <summary>Starts the step's tasks; true when some could not be placed.</summary>
    private async Task<bool> StartAsync(
        ServiceRecord service, TaskStart start, ServiceLease lease, List<string> events, Dictionary<string, int> byProvider, CancellationToken cancellationToken)
    {
        var definition = await ResolveAsync(start.TaskDefinitionArn, cancellationToken);
        if (definition is null)
        {
            logger.LogWarning("Service {Service} cannot start tasks: {TaskDefinitionArn} is gone", service.Name, start.TaskDefinitionArn);
            return true;
        }
        var rules = PlacementRules.Of(service);
        var launched = new List<TaskRecord>();
        var failures = new List<LaunchFailure>();
        var remaining = start.Count;
        var onInstances = start.OnInstances;
        var strategy = Capacity.LaunchTargets.Parse(service.Passthrough["capacityProviderStrategy"] as System.Text.Json.Nodes.JsonArray);
        var fargate = service.LaunchType == Capacity.LaunchTargets.Fargate;
        var platformVersion = !fargate ? null
            : service.Passthrough["platformVersion"]?.GetValue<string>() is { } given and not "LATEST" ? given : Capacity.LaunchTargets.LatestPlatformVersion;
        while (remaining > 0 && !lease.Lost)
        {
            var batch = Math.Min(remaining, 10);
            // With a strategy, one launch per provider: the run of tasks that base and weights send to the same one.
            var spread = strategy.Count > 0 && onInstances is null ? Scheduling.CapacityProviderStrategy.Distribute(strategy, batch, byProvider) : [];
            var provider = spread.FirstOrDefault();
            if (provider is not null)
            {
                batch = spread.TakeWhile(p => p == provider).Count();
                byProvider[provider] = byProvider.GetValueOrDefault(provider) + batch;
            }
            var result = await launcher.LaunchAsync(new LaunchRequest
            {
                LaunchType = service.LaunchType,
                PlatformVersion = platformVersion,
                CapacityProviderName = provider,
                Cluster = service.Cluster,
                Definition = definition,
                Count = batch,
                Group = service.Group,
                StartedBy = start.DeploymentId,
                Tags = PropagatedTags(service, definition),
                Network = Capacity.AwsVpcConfiguration.Stored(definition, service.Passthrough["networkConfiguration"]),
                Strategies = rules.Strategies,
                DistinctInstance = rules.DistinctInstance,
                MemberOf = rules.MemberOf,
                OnInstances = onInstances?.Skip(start.Count - remaining).Take(batch).ToList(),
                KeepPlacing = lease.HoldAsync,
            }, cancellationToken);
            launched.AddRange(result.Tasks);
            failures.AddRange(result.Failures);
            remaining -= batch;
            if (result.Failures.Count > 0 && onInstances is null) break;   // the rest will not fit either
        }
        if (launched.Count > 0)
            events.Add($"(service {service.Name}) has started {launched.Count} tasks: {string.Join(" ", launched.Select(t => $"(task {t.Id})"))}.");
        if (failures.Count == 0) return false;

        var failure = failures[0];
        var closest = failure.Reason == TaskLauncher.NoInstancesReason ? " Reason: No Container Instances were found in your cluster."
            : failure.Arn is { } arn ? $" The closest matching (container-instance {Arns.LastSegment(arn)}) {Insufficient(failure.Reason)}." : "";
        var message = $"(service {service.Name}) was unable to place a task because no container instance met all of its requirements.{closest} For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.";
        // ECS omits a repeated placement event until the cause is resolved or six hours pass.
        if (!ServiceEvents.IsRepeat(service.Events, message, time.GetUtcNow())) events.Add(message);
        logger.LogInformation("Service {Service} could not place {Count} tasks: {Reason}", service.Name, start.Count - launched.Count, failure.Reason);
        return true;
    }

    /// <summary>ECS <c>propagateTags</c>: the service's tags, the task definition's, or none.</summary>
    private static IReadOnlyList<Tags.Tag> PropagatedTags(ServiceRecord service, TaskDefinitionRecord definition) => service.PropagateTagsFrom switch
    {
        "SERVICE" => service.Tags,
        "TASK_DEFINITION" => definition.Tags,
        _ => [],
    };

    private static string Insufficient(string reason) => reason switch
    {
        Placement.ReasonCpu => "has insufficient CPU units available",
        Placement.ReasonMemory => "has insufficient memory available",
        Placement.ReasonPorts or Placement.ReasonUdpPorts => "is already using a port required by your task",
        Placement.ReasonAgent => "is not connected",
        Placement.ReasonAttribute => "does not match the placement constraints",
        _ => $"cannot take the task ({reason})",
    };

    private static Func<ContainerInstanceRecord, bool> DaemonEligibility(ServiceRecord service)
    {
        if (!service.IsDaemon) return _ => false;
        var memberOf = PlacementStrategies.MemberOf(service.PlacementConstraints);
        return instance => instance.Status == ContainerInstanceRecord.Active && memberOf.All(m => m(instance));
    }

    /// <summary>Saves <paramref name="next"/> conditional on the ETag it was read with; false when someone wrote the service since.</summary>
    private async Task<bool> TrySaveAsync(ServiceRecord next, CancellationToken cancellationToken)
    {
        try
        {
            await services.SaveAsync(next, cancellationToken);
            return true;
        }
        catch (ConcurrentUpdateException)
        {
            return false;
        }
    }

    private async Task<bool> HasHealthCheckAsync(string? taskDefinitionArn, CancellationToken cancellationToken)
    {
        if (taskDefinitionArn is null) return false;
        if (_healthChecks.TryGetValue(taskDefinitionArn, out var known)) return known;
        var definition = await ResolveAsync(taskDefinitionArn, cancellationToken);
        var has = definition?.Containers.Any(c => c.Essential && c.HealthCheck is not null) ?? false;
        // Revisions never change, so the answer holds for as long as this process lives.
        return _healthChecks[taskDefinitionArn] = has;
    }

    private Task<TaskDefinitionRecord?> ResolveAsync(string taskDefinitionArn, CancellationToken cancellationToken)
        => definitions.FindByReferenceAsync(taskDefinitionArn, cancellationToken);

    private static bool SameRecord(ServiceRecord a, ServiceRecord b)
        => a.Status == b.Status && a.DesiredCount == b.DesiredCount && a.Deployments.SequenceEqual(b.Deployments) && a.Events.Count == b.Events.Count
           && a.TaskDefinitionArn == b.TaskDefinitionArn;
}
