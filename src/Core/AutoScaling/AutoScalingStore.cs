using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;

namespace Serverless.Core.AutoScaling;

/// <summary>A registered scalable target: an ECS service's desired count between Min and Max.</summary>
public sealed record ScalableTargetRecord
{
    public required string Cluster { get; init; }
    public required string Service { get; init; }
    public required string Arn { get; init; }
    public int MinCapacity { get; init; }
    public int MaxCapacity { get; init; }
    public required string RoleArn { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public bool DynamicScalingInSuspended { get; init; }
    public bool DynamicScalingOutSuspended { get; init; }
    public bool ScheduledScalingSuspended { get; init; }
    public DateTimeOffset? LastScaleOutAt { get; init; }
    public int? LastScaleOutCapacity { get; init; }
    /// <summary>The capacity the last scale-out started from: a step policy's scale-out during its cooldown counts from it.</summary>
    public int? LastScaleOutFrom { get; init; }
    public DateTimeOffset? LastScaleInAt { get; init; }
    public IReadOnlyDictionary<string, string>? Tags { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public ETag ETag { get; init; }

    public string ResourceId => $"service/{Cluster}/{Service}";
}

/// <summary>
/// A scaling policy: target tracking (with the two alarms it owns) or, when <see cref="Step"/> is set, step
/// scaling, which owns no alarm: alarms created with PutMetricAlarm name it in their actions.
/// </summary>
public sealed record ScalingPolicyRecord
{
    public required string Name { get; init; }
    public required string Arn { get; init; }
    public double TargetValue { get; init; }
    /// <summary><c>ECSServiceAverageCPUUtilization</c> or <c>ECSServiceAverageMemoryUtilization</c> (target tracking).</summary>
    public string MetricType { get; init; } = "";
    public int? ScaleOutCooldown { get; init; }
    public int? ScaleInCooldown { get; init; }
    public bool DisableScaleIn { get; init; }
    public string HighAlarmName { get; init; } = "";
    public string LowAlarmName { get; init; } = "";
    /// <summary>A step scaling policy's configuration; null for target tracking.</summary>
    public StepScalingConfiguration? Step { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsTargetTracking => Step is null;
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>The two alarms' states as the evaluator last recorded them (row <c>alarms|name</c>); null before the first evaluation.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public TargetTrackingAlarms? Alarms { get; init; }
}

/// <summary>One alarm's state and when and why it last changed.</summary>
public sealed record AlarmStatus(string Name, AlarmState State, DateTimeOffset UpdatedAt, string Reason);

/// <summary>A target tracking policy's AlarmHigh and AlarmLow, as the evaluator last saw them.</summary>
public sealed record TargetTrackingAlarms(AlarmStatus High, AlarmStatus Low);

/// <summary>One scaling activity, as DescribeScalingActivities shows it.</summary>
public sealed record ScalingActivityRecord(
    string ActivityId, string ResourceId, string Description, string Cause, DateTimeOffset StartTime, DateTimeOffset? EndTime, string StatusCode, string? StatusMessage);

/// <summary>
/// Scalable targets and their policies (table <c>ScalingTargets</c>, one partition per service:
/// row <c>target</c>, rows <c>policy|name</c> and the policies' alarm states <c>alarms|name</c>) and their activities (table <c>ScalingActivities</c>,
/// one partition per service, newest first). The evaluator reads the whole targets table in one query per
/// tick: it holds only what users registered, so a service without a target costs nothing.
/// </summary>
public sealed class AutoScalingStore(StorageClients storage)
{
    private const string Targets = "ScalingTargets";

    private long _targetChanges;

    /// <summary>Counts the scalable targets this process registered or changed (see <see cref="ScalingEvaluator"/>'s idle reads).</summary>
    public long LocalTargetChanges => Interlocked.Read(ref _targetChanges);
    private const string Activities = "ScalingActivities";
    private const string TargetRow = "target";
    private const string PolicyPrefix = "policy|";
    private const string AlarmsPrefix = "alarms|";

    public static string Partition(string cluster, string service) => $"ecs|{cluster}|{service}";

    public async Task<(ScalableTargetRecord? Target, IReadOnlyList<ScalingPolicyRecord> Policies)> FindAsync(string cluster, string service, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Targets, cancellationToken);
        ScalableTargetRecord? target = null;
        var policies = new List<ScalingPolicyRecord>();
        var alarms = new Dictionary<string, TargetTrackingAlarms>(StringComparer.Ordinal);
        await foreach (var entity in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {Partition(cluster, service)}"), cancellationToken: cancellationToken))
            Read(entity, ref target, policies, alarms);
        return (target, WithAlarms(policies, alarms));
    }

    /// <summary>Every target with its policies, in one scan of the targets table.</summary>
    public async Task<IReadOnlyList<(ScalableTargetRecord Target, IReadOnlyList<ScalingPolicyRecord> Policies)>> ListAsync(CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Targets, cancellationToken);
        var byPartition = new SortedDictionary<string, (ScalableTargetRecord? Target, List<ScalingPolicyRecord> Policies, Dictionary<string, TargetTrackingAlarms> Alarms)>(StringComparer.Ordinal);
        await foreach (var entity in table.QueryAsync<TableEntity>(cancellationToken: cancellationToken))
        {
            if (!byPartition.TryGetValue(entity.PartitionKey, out var entry)) entry = (null, [], new(StringComparer.Ordinal));
            var target = entry.Target;
            Read(entity, ref target, entry.Policies, entry.Alarms);
            byPartition[entity.PartitionKey] = (target, entry.Policies, entry.Alarms);
        }
        return [.. byPartition.Values.Where(e => e.Target is not null).Select(e => (e.Target!, WithAlarms(e.Policies, e.Alarms)))];
    }

    /// <summary>Inserts or replaces the target, conditional on the ETag it was read with (none: insert only).</summary>
    public async Task SaveTargetAsync(ScalableTargetRecord target, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Targets, cancellationToken);
        var entity = new TableEntity(Partition(target.Cluster, target.Service), TargetRow) { ["Json"] = TaskMessages.Serialize(target) };
        try
        {
            if (target.ETag == default) await table.AddEntityAsync(entity, cancellationToken);
            else await table.UpdateEntityAsync(entity, target.ETag, TableUpdateMode.Replace, cancellationToken);
            Interlocked.Increment(ref _targetChanges);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            throw new ConcurrentUpdateException(target.ResourceId);
        }
    }

    public async Task SavePolicyAsync(ScalableTargetRecord target, ScalingPolicyRecord policy, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Targets, cancellationToken);
        await table.UpsertEntityAsync(new TableEntity(Partition(target.Cluster, target.Service), PolicyPrefix + policy.Name) { ["Json"] = TaskMessages.Serialize(policy) },
            TableUpdateMode.Replace, cancellationToken);
    }

    public async Task DeletePolicyAsync(ScalableTargetRecord target, string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Targets, cancellationToken);
        await table.DeleteEntityAsync(Partition(target.Cluster, target.Service), PolicyPrefix + name, ETag.All, cancellationToken);
        await table.DeleteEntityAsync(Partition(target.Cluster, target.Service), AlarmsPrefix + name, ETag.All, cancellationToken);
    }

    /// <summary>
    /// Records a policy's alarm states. Every plane computes them from the same datapoints, so the last
    /// writer is as right as any; a row left by a deleted policy is ignored (<see cref="WithAlarms"/> keys
    /// on the alarm names) until the policy is deleted again or its partition goes.
    /// </summary>
    public async Task SaveAlarmsAsync(ScalableTargetRecord target, string policy, TargetTrackingAlarms alarms, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Targets, cancellationToken);
        await table.UpsertEntityAsync(new TableEntity(Partition(target.Cluster, target.Service), AlarmsPrefix + policy) { ["Json"] = TaskMessages.Serialize(alarms) },
            TableUpdateMode.Replace, cancellationToken);
    }

    /// <summary>Deletes the target and its policies in one transaction (one partition), so neither outlives the other.</summary>
    public async Task DeleteAsync(ScalableTargetRecord target, IReadOnlyList<ScalingPolicyRecord> policies, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Targets, cancellationToken);
        var partition = Partition(target.Cluster, target.Service);
        var actions = policies.Select(p => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(partition, PolicyPrefix + p.Name), ETag.All))
            .Concat(policies.Where(p => p.Alarms is not null).Select(p => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(partition, AlarmsPrefix + p.Name), ETag.All)))
            .Prepend(new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(partition, TargetRow), target.ETag));
        try
        {
            await table.SubmitTransactionAsync(actions, cancellationToken);
        }
        catch (TableTransactionFailedException e) when (e.Status is 404 or 412)
        {
            throw new ConcurrentUpdateException(target.ResourceId);
        }
    }

    public async Task AddActivityAsync(string cluster, string service, ScalingActivityRecord activity, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Activities, cancellationToken);
        var newestFirst = (DateTimeOffset.MaxValue.UtcTicks - activity.StartTime.UtcTicks).ToString("D19", CultureInfo.InvariantCulture);
        await table.UpsertEntityAsync(new TableEntity(Partition(cluster, service), $"{newestFirst}|{activity.ActivityId}") { ["Json"] = TaskMessages.Serialize(activity) },
            TableUpdateMode.Replace, cancellationToken);
    }

    /// <summary>Up to <paramref name="take"/> activities of one service, newest first, after the row key <paramref name="after"/>.</summary>
    public async Task<(IReadOnlyList<ScalingActivityRecord> Activities, string? Next)> ActivitiesAsync(
        string cluster, string service, int take, string? after, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Activities, cancellationToken);
        var filter = after is null
            ? TableClient.CreateQueryFilter($"PartitionKey eq {Partition(cluster, service)}")
            : TableClient.CreateQueryFilter($"PartitionKey eq {Partition(cluster, service)} and RowKey gt {after}");
        var (items, more) = await table.TakeAsync<TableEntity>(filter, take, null, cancellationToken);
        return ([.. items.Select(e => JsonSerializer.Deserialize<ScalingActivityRecord>(e.GetString("Json"), TaskMessages.Json)!)],
            more ? items[^1].RowKey : null);
    }

    private static void Read(TableEntity entity, ref ScalableTargetRecord? target, List<ScalingPolicyRecord> policies, Dictionary<string, TargetTrackingAlarms> alarms)
    {
        var json = entity.GetString("Json");
        if (entity.RowKey == TargetRow)
            target = JsonSerializer.Deserialize<ScalableTargetRecord>(json, TaskMessages.Json)! with { ETag = entity.ETag };
        else if (entity.RowKey.StartsWith(PolicyPrefix, StringComparison.Ordinal))
            policies.Add(JsonSerializer.Deserialize<ScalingPolicyRecord>(json, TaskMessages.Json)!);
        else if (entity.RowKey.StartsWith(AlarmsPrefix, StringComparison.Ordinal))
            alarms[entity.RowKey[AlarmsPrefix.Length..]] = JsonSerializer.Deserialize<TargetTrackingAlarms>(json, TaskMessages.Json)!;
    }

    /// <summary>The policies with their recorded alarm states, where those are of the policy's current alarms.</summary>
    private static IReadOnlyList<ScalingPolicyRecord> WithAlarms(List<ScalingPolicyRecord> policies, Dictionary<string, TargetTrackingAlarms> alarms)
        => [.. policies.Select(p => alarms.TryGetValue(p.Name, out var a) && a.High.Name == p.HighAlarmName && a.Low.Name == p.LowAlarmName ? p with { Alarms = a } : p)];
}
