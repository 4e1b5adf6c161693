using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;
using Serverless.Core.AutoScaling;
using Serverless.Core.Metrics;

namespace Serverless.Core.Alarms;

/// <summary>
/// CloudWatch's DescribeAlarms and DeleteAlarms over the alarms that exist here: the two alarms each
/// target tracking policy owns, with the state the scaling evaluator last recorded for them
/// (<see cref="TargetTrackingAlarms"/>), described as Application Auto Scaling creates them.
/// </summary>
public sealed class AlarmActions(AutoScalingStore store, AutoScalingOptions scaling, EcsOptions options) : IActionSource
{
    private const int DefaultMaxRecords = 50;

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("DescribeAlarms", DescribeAlarmsAsync, CloudWatchActions.Model.TargetPrefix);
        registry.Map("DeleteAlarms", DeleteAlarmsAsync, CloudWatchActions.Model.TargetPrefix);
    }

    private async Task<JsonObject> DescribeAlarmsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var names = request.Strings("AlarmNames").ToHashSet(StringComparer.Ordinal);
        var prefix = request.String("AlarmNamePrefix");
        if (names.Count > 0 && prefix is not null)
            throw CloudWatchException.InvalidParameterCombination("AlarmNamePrefix and AlarmNames are mutually exclusive and you have specified both.");
        var types = request.Strings("AlarmTypes").ToList();
        var state = request.String("StateValue");
        var actionPrefix = request.String("ActionPrefix");
        var max = request.Int("MaxRecords") ?? DefaultMaxRecords;
        var after = request.String("NextToken");

        // Composite alarms do not exist here, so children and parents of any alarm are none.
        var wanted = (types.Count == 0 || types.Contains("MetricAlarm")) && request["ChildrenOfAlarmName"] is null && request["ParentsOfAlarmName"] is null;
        var alarms = wanted ? await ManagedAsync(cancellationToken) : [];
        var matching = alarms
            .Where(a => (names.Count == 0 || names.Contains(a.Name)) && (prefix is null || a.Name.StartsWith(prefix, StringComparison.Ordinal)))
            .Where(a => state is null || StateValue(a.Status.State) == state)
            .Where(a => actionPrefix is null || a.Policy.Arn.StartsWith(actionPrefix, StringComparison.Ordinal))
            .OrderBy(a => a.Name, StringComparer.Ordinal)
            .ToList();
        if (after is not null)
        {
            var index = matching.FindIndex(a => a.Name == after);
            if (index < 0) throw CloudWatchException.InvalidNextToken("The service returned an invalid NextToken.");
            matching = matching[(index + 1)..];
        }
        var page = matching.Take(max).ToList();
        var result = new JsonObject
        {
            ["MetricAlarms"] = page.Select(a => (JsonNode)Describe(a)).ToJsonArray(),
            ["CompositeAlarms"] = new JsonArray(),
        };
        if (matching.Count > max) result["NextToken"] = page[^1].Name;
        return result;
    }

    /// <summary>
    /// The only alarms here are the ones target tracking policies own, which Application Auto Scaling
    /// deletes with the policy (DeleteScalingPolicy): deleting one alone would leave its policy without
    /// its alarm, so it is refused, and no alarm is deleted when any name is refused or unknown.
    /// </summary>
    private async Task<JsonObject> DeleteAlarmsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var managed = (await ManagedAsync(cancellationToken)).ToDictionary(a => a.Name, StringComparer.Ordinal);
        var names = request.Strings("AlarmNames").ToList();
        if (names.FirstOrDefault(managed.ContainsKey) is { } owned)
            throw CloudWatchException.InvalidParameterValue($"The alarm {owned} is managed by the target tracking scaling policy {managed[owned].Policy.Arn}; delete the scaling policy to delete its alarms.");
        if (names.Count > 0) throw CloudWatchException.ResourceNotFound($"{names.Count} alarm(s) not found: {string.Join(", ", names)}.");
        return [];
    }

    private sealed record ManagedAlarm(string Name, bool High, AlarmStatus Status, ScalableTargetRecord Target, ScalingPolicyRecord Policy);

    private async Task<List<ManagedAlarm>> ManagedAsync(CancellationToken cancellationToken)
    {
        var alarms = new List<ManagedAlarm>();
        foreach (var (target, policies) in await store.ListAsync(cancellationToken))
        {
            foreach (var policy in policies)
            {
                const string created = "Unchecked: Initial alarm creation";
                alarms.Add(new ManagedAlarm(policy.HighAlarmName, true,
                    policy.Alarms?.High ?? new AlarmStatus(policy.HighAlarmName, AlarmState.InsufficientData, policy.CreatedAt, created), target, policy));
                alarms.Add(new ManagedAlarm(policy.LowAlarmName, false,
                    policy.Alarms?.Low ?? new AlarmStatus(policy.LowAlarmName, AlarmState.InsufficientData, policy.CreatedAt, created), target, policy));
            }
        }
        return alarms;
    }

    private JsonObject Describe(ManagedAlarm alarm)
    {
        var (policy, target) = (alarm.Policy, alarm.Target);
        var datapoints = alarm.High ? TargetTracking.HighDatapoints : TargetTracking.LowDatapoints;
        return new JsonObject
        {
            ["AlarmName"] = alarm.Name,
            ["AlarmArn"] = $"arn:aws:cloudwatch:{options.Region}:{options.AccountId}:alarm:{alarm.Name}",
            ["AlarmDescription"] = $"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy.Arn}.",
            ["AlarmConfigurationUpdatedTimestamp"] = AwsJson.Timestamp(policy.CreatedAt),
            ["ActionsEnabled"] = true,
            ["OKActions"] = new JsonArray(),
            ["AlarmActions"] = new JsonArray(policy.Arn),
            ["InsufficientDataActions"] = new JsonArray(),
            ["StateValue"] = StateValue(alarm.Status.State),
            ["StateReason"] = alarm.Status.Reason,
            ["StateUpdatedTimestamp"] = AwsJson.Timestamp(alarm.Status.UpdatedAt),
            ["StateTransitionedTimestamp"] = AwsJson.Timestamp(alarm.Status.UpdatedAt),
            ["MetricName"] = AutoScalingActions.MetricOf(policy),
            ["Namespace"] = EcsUtilization.Namespace,
            ["Statistic"] = "Average",
            ["Dimensions"] = new JsonArray(
                new JsonObject { ["Name"] = "ClusterName", ["Value"] = target.Cluster },
                new JsonObject { ["Name"] = "ServiceName", ["Value"] = target.Service }),
            ["Period"] = scaling.MetricPeriodSeconds,
            ["Unit"] = MetricStatistics.Percent,
            ["EvaluationPeriods"] = datapoints,
            ["DatapointsToAlarm"] = datapoints,
            ["Threshold"] = alarm.High ? policy.TargetValue : policy.TargetValue * TargetTracking.LowFraction,
            ["ComparisonOperator"] = alarm.High ? "GreaterThanThreshold" : "LessThanThreshold",
            ["TreatMissingData"] = "missing",
        };
    }

    public static string StateValue(AlarmState state) => state switch
    {
        AlarmState.Ok => "OK",
        AlarmState.Alarm => "ALARM",
        _ => "INSUFFICIENT_DATA",
    };
}

public static class AlarmServices
{
    public static IServiceCollection AddAlarms(this IServiceCollection services)
        => services.AddSingleton<IActionSource, AlarmActions>();
}
