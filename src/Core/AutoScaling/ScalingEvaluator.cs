using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Metrics;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;

namespace Serverless.Core.AutoScaling;

/// <summary>
/// The scaling loop, on a timer: every <see cref="AutoScalingOptions.EvaluationSeconds"/> it reads the
/// registered targets (one query), and for each one its service's metric partition and its service row,
/// evaluates the policies' alarms (<see cref="TargetTracking"/>) and applies <see cref="ScalingDecision"/>.
/// A change is first claimed on the target row with its ETag, so two control planes never both apply
/// it; then the service's desired count is set, a reconcile enqueued, and the activity recorded.
/// </summary>
public sealed class ScalingEvaluator(
    AutoScalingStore store, MetricStore metrics, ServiceStore services, ReconcileQueue reconcile,
    AutoScalingOptions options, TimeProvider time, ILogger<ScalingEvaluator> logger)
{
    private long _lastSlot = -1;

    /// <summary>Called by a frequent timer; evaluates once per evaluation interval.</summary>
    public async Task TickAsync(CancellationToken cancellationToken)
    {
        var slot = time.GetUtcNow().ToUnixTimeSeconds() / Math.Max(1, options.EvaluationSeconds);
        if (Interlocked.Exchange(ref _lastSlot, slot) == slot) return;
        await EvaluateAllAsync(cancellationToken);
    }

    public async Task EvaluateAllAsync(CancellationToken cancellationToken)
    {
        foreach (var (target, policies) in await store.ListAsync(cancellationToken))
        {
            try
            {
                await EvaluateAsync(target, policies, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Scaling evaluation of {ResourceId} failed: {Error}", target.ResourceId, e.Message);
            }
        }
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

    private async Task EvaluateAsync(ScalableTargetRecord target, IReadOnlyList<ScalingPolicyRecord> policies, CancellationToken cancellationToken)
    {
        var service = await services.FindAsync(target.Cluster, target.Service, cancellationToken);
        if (service is not { Status: ServiceRecord.Active }) return;
        var now = time.GetUtcNow();
        var period = options.MetricPeriodSeconds;
        // Twice the longest alarm's datapoints: with missing data an alarm looks further back for its N datapoints.
        var periods = 2 * TargetTracking.LowDatapoints + 1;
        var end = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() / period * period);
        var start = end.AddSeconds(-periods * period);

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
            DeploymentInProgress: service.Deployments.Count > 1 || service.Primary?.RolloutState == DeploymentStatus.InProgress,
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
        if (next != policy.Alarms) await store.SaveAlarmsAsync(target, policy.Name, next, cancellationToken);
    }

    private async Task ApplyAsync(ScalableTargetRecord target, ScalingChange change, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // Claim: the cooldown bookkeeping is written first, conditional on what was read; a plane that loses the race does nothing.
        try
        {
            await store.SaveTargetAsync(change.ScaleOut
                ? target with { LastScaleOutAt = now, LastScaleOutCapacity = change.To, LastScaleInAt = null }
                : target with { LastScaleInAt = now }, cancellationToken);
        }
        catch (ConcurrentUpdateException)
        {
            return;
        }

        var description = $"Setting desired count to {change.To}.";
        await services.UpdateAsync(target.Cluster, target.Service, s => s.Status != ServiceRecord.Active ? s : s with
        {
            DesiredCount = change.To,
            Deployments = [.. s.Deployments.Select(d => d.Status == DeploymentStatus.Primary ? d with { DesiredCount = change.To, UpdatedAt = now } : d)],
            Events = Rollout.AddEvents(s.Events, [$"(service {target.Service}) Application Auto Scaling: {description} Cause: {change.Cause}."], now),
        }, cancellationToken);
        await reconcile.EnqueueAsync(new ServiceKey(target.Cluster, target.Service), null, cancellationToken);
        await store.AddActivityAsync(target.Cluster, target.Service, new ScalingActivityRecord(
            Guid.NewGuid().ToString(), target.ResourceId, description, $"{now.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ} {change.Cause}", now, time.GetUtcNow(),
            "Successful", $"Successfully set desired count to {change.To}. Change successfully fulfilled by ecs."), cancellationToken);
        logger.LogInformation("Scaled {ResourceId} from {From} to {To}: {Cause}", target.ResourceId, change.From, change.To, change.Cause);
    }
}
