using Microsoft.Extensions.Logging;
using Serverless.Core.Alarms;
using Serverless.Core.Api;
using Serverless.Core.Metrics;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;

namespace Serverless.Core.AutoScaling;

/// <summary>
/// The scaling loop, on a timer: every <see cref="AutoScalingOptions.EvaluationSeconds"/> it reads the
/// registered targets (one query) and their service rows (one query per 14), and for each one its service's metric partition,
/// evaluates the policies' alarms (<see cref="TargetTracking"/>) and applies <see cref="ScalingDecision"/>.
/// A change is first claimed on the target row with its ETag, so two control planes never both apply
/// it; then the service's desired count is set, a reconcile enqueued, and the activity recorded.
/// Scheduled actions run on every tick: only the rows whose stored next run is due are read.
/// </summary>
public sealed class ScalingEvaluator(
    AutoScalingStore store, ScheduledActionStore scheduled, MetricStore metrics, ServiceStore services, ReconcileQueue reconcile,
    MetricAlarmEvaluator alarms, AutoScalingOptions options, TimeProvider time, ILogger<ScalingEvaluator> logger)
{
    /// <summary>
    /// How far ahead a read of the scheduled actions looks, and so how often an idle timer reads them: a run is
    /// known this long before it is due. An action another control plane puts due sooner than this runs up to
    /// this late; one put through this process is read at the next tick.
    /// </summary>
    public static readonly TimeSpan ScheduledLookAhead = TimeSpan.FromMinutes(2);

    /// <summary>
    /// How often the targets are read while the last read found none and this process registered none since:
    /// a target registered through another control plane is evaluated at most this late the first time.
    /// </summary>
    public static readonly TimeSpan NoTargetsReadInterval = TimeSpan.FromMinutes(5);

    private long _lastSlot = -1;
    private DateTimeOffset? _noTargetsUntil;
    private long _targetChangesSeen = -1;
    private readonly Lock _scheduledGate = new();
    private DateTimeOffset _scheduledReadDue = DateTimeOffset.MinValue;
    private long _scheduledChangesSeen = -1;

    /// <summary>Called by a frequent timer; evaluates once per evaluation interval.</summary>
    public async Task TickAsync(CancellationToken cancellationToken)
    {
        await RunScheduledAsync(cancellationToken);
        var slot = time.GetUtcNow().ToUnixTimeSeconds() / Math.Max(1, options.EvaluationSeconds);
        if (Interlocked.Exchange(ref _lastSlot, slot) == slot) return;
        // No targets at the last read, none registered here since: an idle timer need not read the table every interval.
        var now = time.GetUtcNow();
        var changes = store.LocalTargetChanges;
        if (_noTargetsUntil is not { } until || now >= until || changes != _targetChangesSeen)
        {
            _targetChangesSeen = changes;
            var count = await EvaluateAllAsync(cancellationToken);
            _noTargetsUntil = count == 0 ? now + NoTargetsReadInterval : null;
        }
        foreach (var invocation in await alarms.EvaluateAllAsync(cancellationToken))
        {
            try
            {
                await InvokeStepPolicyAsync(invocation, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Invoking {PolicyArn} for alarm {AlarmName} failed: {Error}", invocation.PolicyArn, invocation.AlarmName, e.Message);
            }
        }
    }

    /// <summary>
    /// A step scaling policy invoked by its alarm in ALARM: the alarm's datapoints reduced by the policy's
    /// MetricAggregationType choose the step (<see cref="StepScaling"/>), and <see cref="ScalingDecision"/> applies
    /// it with the policy's cooldown. During a scale-out cooldown the step counts from the capacity the last
    /// scale-out started from, so the capacity it added is part of the next one, as AWS documents.
    /// A policy that no longer exists (deleted: its alarm keeps the action) does nothing.
    /// </summary>
    public async Task InvokeStepPolicyAsync(ScalingPolicyInvocation invocation, CancellationToken cancellationToken)
    {
        if (ScalingPolicyArns.Parse(invocation.PolicyArn) is not var (cluster, serviceName, policyName)) return;
        var (target, policies) = await store.FindAsync(cluster, serviceName, cancellationToken);
        if (target is null || policies.FirstOrDefault(p => p.Arn == invocation.PolicyArn && p.Name == policyName) is not { Step: { } step } policy) return;
        var service = await services.FindAsync(cluster, serviceName, cancellationToken);
        if (service is not { Status: ServiceRecord.Active }) return;
        var now = time.GetUtcNow();
        var cooldown = TimeSpan.FromSeconds(step.Cooldown ?? options.DefaultCooldownSeconds);
        var running = service.Deployments.Sum(d => d.RunningCount);
        var current = running > 0 ? running : service.DesiredCount;
        var inScaleOutCooldown = target.LastScaleOutAt is { } at && now < at + cooldown;
        var metric = StepScaling.Aggregate(step.MetricAggregationType, invocation.Datapoints);
        var want = StepScaling.Want(policy.Name, invocation.AlarmName, step, metric, invocation.Threshold, current);
        if (want is { ScaleOut: true } && inScaleOutCooldown && target.LastScaleOutFrom is { } from)
            want = StepScaling.Want(policy.Name, invocation.AlarmName, step, metric, invocation.Threshold, from) is { ScaleOut: true } fromBase ? fromBase : null;
        var state = new ScalingState(
            target.MinCapacity, target.MaxCapacity, service.DesiredCount,
            DeploymentInProgress: service.Deployments.Count > 1 || service.Primary?.RolloutState == DeploymentRolloutState.InProgress,
            target.DynamicScalingOutSuspended, target.DynamicScalingInSuspended,
            target.LastScaleOutAt, target.LastScaleOutCapacity, target.LastScaleInAt, cooldown, cooldown);
        if (ScalingDecision.Decide(state, [want], 1, now) is not { } change) return;
        await ApplyAsync(target, change, now, cancellationToken);
    }

    /// <summary>
    /// Evaluates every registered target; returns how many there are. The targets' service rows are read
    /// together (<see cref="ServiceStore.FindManyAsync"/>: one query per 14 services rather than a point
    /// read each), since every evaluation needs each one's desired and running counts.
    /// </summary>
    public async Task<int> EvaluateAllAsync(CancellationToken cancellationToken)
    {
        var targets = await store.ListAsync(cancellationToken);
        if (targets.Count == 0) return 0;
        var found = await services.FindManyAsync(targets.Select(t => (t.Target.Cluster, t.Target.Service)), cancellationToken);
        foreach (var (target, policies) in targets)
        {
            try
            {
                await EvaluateAsync(target, policies, found.GetValueOrDefault((target.Cluster, target.Service)), cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Scaling evaluation of {ResourceId} failed: {Error}", target.ResourceId, e.Message);
            }
        }
        return targets.Count;
    }

    /// <summary>The metric's value per period over the last <paramref name="periods"/> complete periods, oldest first (null: no datapoint).</summary>
    public static IReadOnlyList<double?> Values(IReadOnlyList<Datapoint> datapoints, DateTimeOffset firstPeriod, int periodSeconds, int periods)
    {
        var byStart = datapoints.ToDictionary(d => d.Timestamp);
        var values = Enumerable.Range(0, periods).Select(i => byStart.TryGetValue(firstPeriod.AddSeconds(i * periodSeconds), out var d) ? d.Average : (double?)null).ToList();
        // The newest period's report may still be on its way from the workers: a missing last value waits for the next evaluation.
        if (values.Count > 0 && values[^1] is null) values.RemoveAt(values.Count - 1);
        return values;
    }

    private async Task EvaluateAsync(ScalableTargetRecord target, IReadOnlyList<ScalingPolicyRecord> policies, ServiceRecord? service, CancellationToken cancellationToken)
    {
        if (service is not { Status: ServiceRecord.Active }) return;
        var now = time.GetUtcNow();
        var period = options.MetricPeriodSeconds;
        // Twice the longest alarm's datapoints: with missing data an alarm looks further back for its N datapoints.
        var periods = 2 * TargetTracking.LowDatapoints + 1;
        var end = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() / period * period);
        var start = end.AddSeconds(-periods * period);

        // Step policies act when their alarms invoke them (InvokeStepPolicyAsync); here only target tracking is evaluated.
        policies = [.. policies.Where(p => p.IsTargetTracking)];
        var wants = new List<PolicyWant?>();
        if (policies.Count > 0)
        {
            var rows = await metrics.ReadAsync(MetricStore.ServicePartition(target.Cluster, target.Service), start, end, cancellationToken);
            var running = service.Deployments.Sum(d => d.RunningCount);
            foreach (var policy in policies)
            {
                var values = Values(MetricStatistics.Datapoints(rows, AutoScalingActions.MetricOf(policy), start, end, period), start, period, periods);
                logger.LogDebug("{ResourceId} policy {Policy}: {Rows} rows, values {Values}", target.ResourceId, policy.Name, rows.Count, string.Join(' ', values.Select(v => v?.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture) ?? "-")));
                await RecordAlarmsAsync(target, policy, values, now, cancellationToken);
                wants.Add(TargetTracking.Want(policy.Name, policy.HighAlarmName, policy.LowAlarmName, policy.TargetValue, policy.DisableScaleIn,
                    values, running > 0 ? running : service.DesiredCount));
            }
        }
        var state = new ScalingState(
            target.MinCapacity, target.MaxCapacity, service.DesiredCount,
            DeploymentInProgress: service.Deployments.Count > 1 || service.Primary?.RolloutState == DeploymentRolloutState.InProgress,
            target.DynamicScalingOutSuspended, target.DynamicScalingInSuspended,
            target.LastScaleOutAt, target.LastScaleOutCapacity, target.LastScaleInAt,
            TimeSpan.FromSeconds(policies.Select(p => p.ScaleOutCooldown ?? options.DefaultCooldownSeconds).DefaultIfEmpty(options.DefaultCooldownSeconds).Max()),
            TimeSpan.FromSeconds(policies.Select(p => p.ScaleInCooldown ?? options.DefaultCooldownSeconds).DefaultIfEmpty(options.DefaultCooldownSeconds).Max()));
        if (ScalingDecision.Decide(state, wants, policies.Count, now) is not { } change) return;
        await ApplyAsync(target, change, now, cancellationToken);
    }

    /// <summary>Records the policy's alarm states where they changed, for CloudWatch's DescribeAlarms.</summary>
    private async Task RecordAlarmsAsync(ScalableTargetRecord target, ScalingPolicyRecord policy, IReadOnlyList<double?> values, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var next = TargetTracking.Alarms(policy, values, now);
        if (next == policy.Alarms) return;
        await store.SaveAlarmsAsync(target, policy.Name, next, cancellationToken);
        foreach (var (before, after) in new[] { (policy.Alarms?.High, next.High), (policy.Alarms?.Low, next.Low) })
        {
            // A new alarm (or one renamed with its policy) starts in INSUFFICIENT_DATA, as CloudWatch's do.
            var from = before is not null && before.Name == after.Name ? before.State : AlarmState.InsufficientData;
            if (from == after.State) continue;
            logger.LogInformation("Alarm {AlarmName} went from {From} to {To}: {Reason}", after.Name, from, after.State, after.Reason);
        }
    }

    private async Task ApplyAsync(ScalableTargetRecord target, ScalingChange change, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Claim: the cooldown bookkeeping is written first, conditional on what was read; a plane that loses the race does nothing.
        try
        {
            await store.SaveTargetAsync(change.ScaleOut
                ? target with { LastScaleOutAt = now, LastScaleOutCapacity = change.To, LastScaleOutFrom = change.From, LastScaleInAt = null }
                : target with { LastScaleInAt = now }, cancellationToken);
        }
        catch (ConcurrentUpdateException)
        {
            return;
        }

        await RecordAsync(target, $"Setting desired count to {change.To}.", change.Cause,
            $"Successfully set desired count to {change.To}. Change successfully fulfilled by ecs.", change.To, now, cancellationToken);
        logger.LogInformation("Scaled {ResourceId} from {From} to {To}: {Cause}", target.ResourceId, change.From, change.To, change.Cause);
    }

    /// <summary>Runs every scheduled action that is due: claims the run by moving its next run on (ETag), then applies it.</summary>
    public async Task RunScheduledAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var changes = scheduled.LocalChanges;
        lock (_scheduledGate)
        {
            // Nothing due before the remembered time, and nothing put here since: no read (a 5 s timer with nothing to do costs nothing).
            if (now < _scheduledReadDue && changes == _scheduledChangesSeen) return;
        }
        var soon = await scheduled.DueAsync(now + ScheduledLookAhead, cancellationToken);
        var due = soon.Where(a => a.NextRun <= now).ToList();
        lock (_scheduledGate)
        {
            _scheduledChangesSeen = changes;
            // A run moves the action's next run on, possibly within the look-ahead: read again at the next tick then.
            _scheduledReadDue = due.Count > 0
                ? now
                : soon.Select(a => a.NextRun!.Value).Append(now + ScheduledLookAhead).Min();
        }
        foreach (var action in due)
        {
            try
            {
                // A plane that was down runs a missed action once, not once per missed occurrence.
                await scheduled.UpdateAsync(action with { NextRun = action.Parsed().NextAfter(now) }, cancellationToken);
                await ApplyScheduledAsync(action, now, cancellationToken);
            }
            catch (ConcurrentUpdateException)
            {
                // Another control plane claimed this run (or the target kept changing under three attempts to set it).
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Scheduled action {Name} on {ResourceId} failed: {Error}", action.Name, action.ResourceId, e.Message);
            }
        }
    }

    private async Task ApplyScheduledAsync(ScheduledActionRecord action, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var cause = $"scheduled action name {action.Name} was triggered";
        for (var attempt = 1; ; attempt++)
        {
            var (target, _) = await store.FindAsync(action.Cluster, action.Service, cancellationToken);
            if (target is null)
            {
                // Its target was deregistered (which deletes its scheduled actions) and this row outlived it.
                await scheduled.DeleteAsync(action.Cluster, action.Service, action.Name, cancellationToken);
                return;
            }
            if (target.ScheduledScalingSuspended) return;
            var (min, max) = (action.MinCapacity ?? target.MinCapacity, action.MaxCapacity ?? target.MaxCapacity);
            var description = $"Setting min capacity to {min} and max capacity to {max}";
            if (min > max)
            {
                await store.AddActivityAsync(action.Cluster, action.Service, new ScalingActivityRecord(
                    Guid.NewGuid().ToString(), target.ResourceId, description, $"{now.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ} {cause}", now, time.GetUtcNow(),
                    "Failed", $"Failed to set min capacity to {min} and max capacity to {max}: minimum capacity cannot be greater than maximum capacity."), cancellationToken);
                return;
            }
            try
            {
                await store.SaveTargetAsync(target with { MinCapacity = min, MaxCapacity = max }, cancellationToken);
            }
            catch (ConcurrentUpdateException) when (attempt < 3)
            {
                continue;
            }
            var service = await services.FindAsync(action.Cluster, action.Service, cancellationToken);
            var desired = service is { Status: ServiceRecord.Active } ? Math.Clamp(service.DesiredCount, min, max) : (int?)null;
            await RecordAsync(target, $"{description}.", cause,
                $"Successfully set min capacity to {min} and max capacity to {max}. Change successfully fulfilled by ecs.", null, now, cancellationToken);
            // The desired count moves into the new range at once, as AWS does.
            if (desired is { } to && to != service!.DesiredCount)
                await RecordAsync(target, $"Setting desired count to {to}.", to > service.DesiredCount ? $"minimum capacity was set to {min}" : $"maximum capacity was set to {max}",
                    $"Successfully set desired count to {to}. Change successfully fulfilled by ecs.", to, now, cancellationToken);
            logger.LogInformation("Scheduled action {Name} set {ResourceId} to min {Min} max {Max}", action.Name, target.ResourceId, min, max);
            return;
        }
    }

    /// <summary>Writes a change: the service's desired count (when <paramref name="desired"/> is set, with a reconcile), its event, and the scaling activity.</summary>
    private async Task RecordAsync(ScalableTargetRecord target, string description, string cause, string statusMessage, int? desired,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        try
        {
            await services.UpdateAsync(target.Cluster, target.Service, s => s.Status != ServiceRecord.Active ? s : s with
            {
                DesiredCount = desired ?? s.DesiredCount,
                Deployments = desired is { } to
                    ? [.. s.Deployments.Select(d => d.Status == DeploymentStatus.Primary ? d with { DesiredCount = to, UpdatedAt = now } : d)]
                    : s.Deployments,
                Events = Rollout.AddEvents(s.Events, [$"(service {target.Service}) Application Auto Scaling: {description} Cause: {cause}."], now),
            }, cancellationToken);
        }
        catch (ServiceNotFoundException)
        {
            return;     // the service is gone: nothing to scale, no event to show
        }
        if (desired is not null) await reconcile.EnqueueAsync(new ServiceKey(target.Cluster, target.Service), null, cancellationToken);
        await store.AddActivityAsync(target.Cluster, target.Service, new ScalingActivityRecord(
            Guid.NewGuid().ToString(), target.ResourceId, description, $"{now.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ} {cause}", now, time.GetUtcNow(),
            "Successful", statusMessage), cancellationToken);
    }
}
