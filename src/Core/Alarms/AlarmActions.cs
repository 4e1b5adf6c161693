using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;
using Serverless.Core.AutoScaling;
using Serverless.Core.Metrics;

namespace Serverless.Core.Alarms;

/// <summary>
/// CloudWatch's alarms: metric alarms created with PutMetricAlarm (<see cref="MetricAlarmStore"/>, evaluated by
/// <see cref="MetricAlarmEvaluator"/>), and the two alarms each target tracking policy owns, with the state the
/// scaling evaluator last recorded for them (<see cref="TargetTrackingAlarms"/>), described as Application Auto
/// Scaling creates them. DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState,
/// DescribeAlarmHistory and Enable/DisableAlarmActions see both kinds.
/// </summary>
public sealed class AlarmActions(AutoScalingStore store, MetricAlarmStore alarms, AutoScalingOptions scaling, EcsOptions options, TimeProvider time) : IActionSource
{
    private const int DefaultMaxRecords = 50;

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("PutMetricAlarm", PutMetricAlarmAsync, CloudWatchActions.Model.TargetPrefix);
        registry.Map("DescribeAlarms", DescribeAlarmsAsync, CloudWatchActions.Model.TargetPrefix);
        registry.Map("DescribeAlarmsForMetric", DescribeAlarmsForMetricAsync, CloudWatchActions.Model.TargetPrefix);
        registry.Map("DeleteAlarms", DeleteAlarmsAsync, CloudWatchActions.Model.TargetPrefix);
        registry.Map("SetAlarmState", SetAlarmStateAsync, CloudWatchActions.Model.TargetPrefix);
        registry.Map("DescribeAlarmHistory", DescribeAlarmHistoryAsync, CloudWatchActions.Model.TargetPrefix);
        registry.Map("EnableAlarmActions", (r, c, t) => SetActionsEnabledAsync(r, true, t), CloudWatchActions.Model.TargetPrefix);
        registry.Map("DisableAlarmActions", (r, c, t) => SetActionsEnabledAsync(r, false, t), CloudWatchActions.Model.TargetPrefix);
    }

    /// <summary>
    /// Creates or replaces a metric alarm on one metric with a static threshold. Its actions must be Application
    /// Auto Scaling policy ARNs (the only actions this endpoint can take); metric math, anomaly detection and
    /// percentile statistics are refused, since no percentile is kept. An update keeps the alarm's state, as
    /// CloudWatch does, and the next evaluation judges it by the new configuration.
    /// </summary>
    private async Task<JsonObject> PutMetricAlarmAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request.String("AlarmName")!;
        if (request["Metrics"] is not null || request["ThresholdMetricId"] is not null || request["EvaluationCriteria"] is not null)
            throw CloudWatchException.InvalidParameterValue("Metric math, anomaly detection and PromQL alarms are not supported here; specify MetricName, Namespace, Statistic and Threshold.");
        var ns = request.String("Namespace") ?? throw CloudWatchException.MissingParameter("The parameter Namespace is required.");
        var metric = request.String("MetricName") ?? throw CloudWatchException.MissingParameter("The parameter MetricName is required.");
        var statistic = request.String("Statistic");
        if (statistic is not null && request["ExtendedStatistic"] is not null)
            throw CloudWatchException.InvalidParameterCombination("Exactly one element of the Statistic and ExtendedStatistic parameters must be specified.");
        if (request.String("ExtendedStatistic") is { } extended)
            throw CloudWatchException.InvalidParameterValue($"The extended statistic {extended} cannot be evaluated here: percentiles are not kept; use Statistic.");
        if (statistic is null) throw CloudWatchException.MissingParameter("Exactly one element of the Statistic and ExtendedStatistic parameters must be specified.");
        var period = request.Int("Period") ?? throw CloudWatchException.MissingParameter("The parameter Period is required.");
        if (period is not (10 or 20 or 30) && period % 60 != 0)
            throw CloudWatchException.InvalidParameterValue("The parameter Period must be 10, 20, 30 or a multiple of 60.");
        var evaluationPeriods = request.Int("EvaluationPeriods") ?? throw CloudWatchException.MissingParameter("The parameter EvaluationPeriods is required.");
        if ((long)evaluationPeriods * period > (period >= 3600 ? 7 * 86400 : 86400))
            throw CloudWatchException.InvalidParameterValue($"The evaluation period (Period × EvaluationPeriods) must not exceed {(period >= 3600 ? "7 days" : "one day")}.");
        var datapoints = request.Int("DatapointsToAlarm") ?? evaluationPeriods;
        if (datapoints > evaluationPeriods)
            throw CloudWatchException.InvalidParameterValue("DatapointsToAlarm must be less than or equal to EvaluationPeriods.");
        var threshold = request["Threshold"]?.GetValue<double>() ?? throw CloudWatchException.MissingParameter("The parameter Threshold is required.");
        var comparison = request.String("ComparisonOperator") ?? throw CloudWatchException.MissingParameter("The parameter ComparisonOperator is required.");
        if (!MetricAlarmEvaluation.Operators.Contains(comparison))
            throw CloudWatchException.InvalidParameterValue($"The comparison operator {comparison} needs an anomaly detection band, which is not supported here.");
        var treatMissing = request.String("TreatMissingData") ?? MetricAlarmEvaluation.Missing;
        if (!MetricAlarmEvaluation.Treatments.Contains(treatMissing))
            throw CloudWatchException.InvalidParameterValue($"The value {treatMissing} for parameter TreatMissingData is not valid; use one of {string.Join(", ", MetricAlarmEvaluation.Treatments)}.");
        List<string> Actions(string member)
        {
            var actions = request.Strings(member).Distinct(StringComparer.Ordinal).ToList();
            if (actions.FirstOrDefault(a => ScalingPolicyArns.Parse(a) is null) is { } other)
                throw CloudWatchException.InvalidParameterValue($"Invalid action {other} in {member}: only Application Auto Scaling policy ARNs of ECS services are actions here.");
            return actions;
        }
        var (okActions, alarmActions, insufficientActions) = (Actions("OKActions"), Actions("AlarmActions"), Actions("InsufficientDataActions"));
        var dimensions = CloudWatchActions.Dimensions(request["Dimensions"]).OrderBy(d => d.Key, StringComparer.Ordinal).ToList();
        if ((await ManagedAsync(cancellationToken)).FirstOrDefault(a => a.Name == name) is { } managed)
            throw CloudWatchException.InvalidParameterValue($"The alarm {name} is managed by the target tracking scaling policy {managed.Policy.Arn}; update the scaling policy instead.");

        for (var attempt = 1; ; attempt++)
        {
            var existing = await alarms.FindAsync(name, cancellationToken);
            var now = time.GetUtcNow();
            var alarm = new MetricAlarmRecord
            {
                Name = name,
                Arn = $"arn:aws:cloudwatch:{options.Region}:{options.AccountId}:alarm:{name}",
                Description = request.String("AlarmDescription"),
                ActionsEnabled = request.Bool("ActionsEnabled") ?? true,
                OkActions = okActions,
                AlarmActions = alarmActions,
                InsufficientDataActions = insufficientActions,
                Namespace = ns,
                MetricName = metric,
                Dimensions = dimensions,
                Statistic = statistic,
                Period = period,
                Unit = request.String("Unit"),
                EvaluationPeriods = evaluationPeriods,
                DatapointsToAlarm = datapoints,
                Threshold = threshold,
                ComparisonOperator = comparison,
                TreatMissingData = treatMissing,
                ConfigurationUpdatedAt = now,
                State = existing?.State ?? AlarmState.InsufficientData,
                StateReason = existing?.StateReason ?? "Unchecked: Initial alarm creation",
                StateReasonData = existing?.StateReasonData,
                StateUpdatedAt = existing?.StateUpdatedAt ?? now,
                StateTransitionedAt = existing?.StateTransitionedAt ?? now,
                Tags = existing?.Tags ?? Tags(request),
                ETag = existing?.ETag ?? default,
            };
            var history = new AlarmHistoryRecord(name, now, "ConfigurationUpdate", $"Alarm \"{name}\" {(existing is null ? "created" : "updated")}",
                new JsonObject { ["version"] = "1.0", ["type"] = existing is null ? "Create" : "Update" }.ToJsonString());
            try
            {
                await alarms.SaveAsync(alarm, history, cancellationToken);
                return [];
            }
            catch (ConcurrentUpdateException) when (attempt < 3)
            {
            }
        }
    }

    private static Dictionary<string, string>? Tags(JsonObject request)
        => request["Tags"] is JsonArray { Count: > 0 } tags
            ? tags.OfType<JsonObject>().ToDictionary(t => t.String("Key")!, t => t.String("Value")!, StringComparer.Ordinal)
            : null;

    /// <summary>An alarm as DescribeAlarms shows it, with what filters need: its name, state, actions and metric.</summary>
    private sealed record Described(string Name, AlarmState State, IReadOnlyList<string> AlarmActions, string Namespace, string MetricName,
        IReadOnlyList<KeyValuePair<string, string>> Dimensions, string Statistic, int Period, string? Unit, JsonObject Json);

    private async Task<List<Described>> AllAsync(CancellationToken cancellationToken)
    {
        var all = (await alarms.ListAsync(cancellationToken)).Select(a => new Described(a.Name, a.State, a.AlarmActions, a.Namespace, a.MetricName,
            a.Dimensions, a.Statistic, a.Period, a.Unit, Describe(a))).ToList();
        all.AddRange((await ManagedAsync(cancellationToken)).Select(a => new Described(a.Name, a.Status.State, [a.Policy.Arn], EcsUtilization.Namespace,
            AutoScalingActions.MetricOf(a.Policy), [new("ClusterName", a.Target.Cluster), new("ServiceName", a.Target.Service)], "Average",
            scaling.MetricPeriodSeconds, MetricStatistics.Percent, Describe(a))));
        return [.. all.OrderBy(a => a.Name, StringComparer.Ordinal)];
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
        var matching = (wanted ? await AllAsync(cancellationToken) : [])
            .Where(a => (names.Count == 0 || names.Contains(a.Name)) && (prefix is null || a.Name.StartsWith(prefix, StringComparison.Ordinal)))
            .Where(a => state is null || StateValue(a.State) == state)
            .Where(a => actionPrefix is null || a.AlarmActions.Any(x => x.StartsWith(actionPrefix, StringComparison.Ordinal)))
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
            ["MetricAlarms"] = page.Select(a => (JsonNode)a.Json).ToJsonArray(),
            ["CompositeAlarms"] = new JsonArray(),
        };
        if (matching.Count > max) result["NextToken"] = page[^1].Name;
        return result;
    }

    /// <summary>The alarms on one metric: its namespace and name, and where given its statistic, dimensions, period and unit.</summary>
    private async Task<JsonObject> DescribeAlarmsForMetricAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (ns, metric) = (request.String("Namespace")!, request.String("MetricName")!);
        var statistic = request.String("Statistic");
        var dimensions = request["Dimensions"] is null ? null : CloudWatchActions.Dimensions(request["Dimensions"]);
        var period = request.Int("Period");
        var unit = request.String("Unit");
        var matching = (await AllAsync(cancellationToken)).Where(a => a.Namespace == ns && a.MetricName == metric
            && (statistic is null || a.Statistic == statistic) && (period is null || a.Period == period) && (unit is null || a.Unit == unit)
            && (dimensions is null || (a.Dimensions.Count == dimensions.Count && a.Dimensions.All(d => dimensions.TryGetValue(d.Key, out var v) && v == d.Value))));
        return new JsonObject { ["MetricAlarms"] = matching.Select(a => (JsonNode)a.Json).ToJsonArray() };
    }

    /// <summary>
    /// Deletes metric alarms; a target tracking policy's alarms are deleted with the policy (DeleteScalingPolicy),
    /// so naming one is refused, and nothing is deleted when any name is refused or unknown.
    /// </summary>
    private async Task<JsonObject> DeleteAlarmsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var managed = (await ManagedAsync(cancellationToken)).ToDictionary(a => a.Name, StringComparer.Ordinal);
        var names = request.Strings("AlarmNames").Distinct(StringComparer.Ordinal).ToList();
        if (names.FirstOrDefault(managed.ContainsKey) is { } owned)
            throw CloudWatchException.InvalidParameterValue($"The alarm {owned} is managed by the target tracking scaling policy {managed[owned].Policy.Arn}; delete the scaling policy to delete its alarms.");
        var existing = (await alarms.ListAsync(cancellationToken)).Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        var unknown = names.Where(n => !existing.Contains(n)).ToList();
        if (unknown.Count > 0) throw CloudWatchException.ResourceNotFound($"{unknown.Count} alarm(s) not found: {string.Join(", ", unknown)}.");
        await alarms.DeleteAsync(names, cancellationToken);
        return [];
    }

    /// <summary>
    /// Sets a metric alarm's state until its next evaluation, as CloudWatch does for testing, with a history item.
    /// Its scaling actions run from evaluations, which judge the state from the datapoints again.
    /// </summary>
    private async Task<JsonObject> SetAlarmStateAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request.String("AlarmName")!;
        var state = request.String("StateValue") switch { "OK" => AlarmState.Ok, "ALARM" => AlarmState.Alarm, _ => AlarmState.InsufficientData };
        var data = request.String("StateReasonData");
        if (data is not null)
        {
            try
            {
                JsonNode.Parse(data);
            }
            catch (System.Text.Json.JsonException)
            {
                throw new CloudWatchException("InvalidFormatFault", "InvalidFormat", "StateReasonData is not valid JSON.");
            }
        }
        for (var attempt = 1; ; attempt++)
        {
            if (await alarms.FindAsync(name, cancellationToken) is not { } alarm)
            {
                if ((await ManagedAsync(cancellationToken)).Any(a => a.Name == name))
                    throw CloudWatchException.InvalidParameterValue($"The alarm {name} is managed by a target tracking scaling policy; its state follows its datapoints.");
                throw CloudWatchException.ResourceNotFound($"Alarm {name} not found.");
            }
            var now = time.GetUtcNow();
            var next = MetricAlarmEvaluator.Transition(alarm, state, request.String("StateReason")!, data, now);
            try
            {
                await alarms.SaveAsync(next, MetricAlarmEvaluator.StateHistory(alarm, next, now), cancellationToken);
                return [];
            }
            catch (ConcurrentUpdateException) when (attempt < 3)
            {
            }
        }
    }

    private async Task<JsonObject> SetActionsEnabledAsync(JsonObject request, bool enabled, CancellationToken cancellationToken)
    {
        foreach (var name in request.Strings("AlarmNames").Distinct(StringComparer.Ordinal))
        {
            for (var attempt = 1; attempt <= 3; attempt++)
            {
                // CloudWatch answers success for names that are not (or not its user's) metric alarms.
                if (await alarms.FindAsync(name, cancellationToken) is not { } alarm || alarm.ActionsEnabled == enabled) break;
                try
                {
                    await alarms.SaveAsync(alarm with { ActionsEnabled = enabled, ConfigurationUpdatedAt = time.GetUtcNow() }, null, cancellationToken);
                    break;
                }
                catch (ConcurrentUpdateException) when (attempt < 3)
                {
                }
            }
        }
        return [];
    }

    private async Task<JsonObject> DescribeAlarmHistoryAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var types = request.Strings("AlarmTypes").ToList();
        var itemType = request.String("HistoryItemType");
        var from = request["StartDate"] is { } s ? AwsJson.FromTimestamp(s.GetValue<double>()) : DateTimeOffset.UnixEpoch;
        var to = request["EndDate"] is { } e ? AwsJson.FromTimestamp(e.GetValue<double>()) : time.GetUtcNow();
        var max = request.Int("MaxRecords") ?? 100;
        var skip = 0;
        if (request.String("NextToken") is { } token && !int.TryParse(token, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out skip))
            throw CloudWatchException.InvalidNextToken("The service returned an invalid NextToken.");
        IEnumerable<AlarmHistoryRecord> items = types.Count > 0 && !types.Contains("MetricAlarm")
            ? []
            : await alarms.HistoryAsync(request.String("AlarmName"), from, to, cancellationToken);
        items = items.Where(i => itemType is null || i.ItemType == itemType);
        if (request.String("ScanBy") == "TimestampAscending") items = items.Reverse();
        var all = items.ToList();
        var page = all.Skip(skip).Take(max).ToList();
        var result = new JsonObject
        {
            ["AlarmHistoryItems"] = page.Select(i => (JsonNode)new JsonObject
            {
                ["AlarmName"] = i.AlarmName,
                ["AlarmType"] = "MetricAlarm",
                ["Timestamp"] = AwsJson.Timestamp(i.Timestamp),
                ["HistoryItemType"] = i.ItemType,
                ["HistorySummary"] = i.Summary,
                ["HistoryData"] = i.Data,
            }).ToJsonArray(),
        };
        if (skip + page.Count < all.Count) result["NextToken"] = (skip + page.Count).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return result;
    }

    private JsonObject Describe(MetricAlarmRecord alarm)
    {
        var json = new JsonObject
        {
            ["AlarmName"] = alarm.Name,
            ["AlarmArn"] = alarm.Arn,
            ["AlarmConfigurationUpdatedTimestamp"] = AwsJson.Timestamp(alarm.ConfigurationUpdatedAt),
            ["ActionsEnabled"] = alarm.ActionsEnabled,
            ["OKActions"] = alarm.OkActions.Select(a => (JsonNode)a).ToJsonArray(),
            ["AlarmActions"] = alarm.AlarmActions.Select(a => (JsonNode)a).ToJsonArray(),
            ["InsufficientDataActions"] = alarm.InsufficientDataActions.Select(a => (JsonNode)a).ToJsonArray(),
            ["StateValue"] = StateValue(alarm.State),
            ["StateReason"] = alarm.StateReason,
            ["StateUpdatedTimestamp"] = AwsJson.Timestamp(alarm.StateUpdatedAt),
            ["StateTransitionedTimestamp"] = AwsJson.Timestamp(alarm.StateTransitionedAt),
            ["MetricName"] = alarm.MetricName,
            ["Namespace"] = alarm.Namespace,
            ["Statistic"] = alarm.Statistic,
            ["Dimensions"] = alarm.Dimensions.Select(d => (JsonNode)new JsonObject { ["Name"] = d.Key, ["Value"] = d.Value }).ToJsonArray(),
            ["Period"] = alarm.Period,
            ["EvaluationPeriods"] = alarm.EvaluationPeriods,
            ["DatapointsToAlarm"] = alarm.DatapointsToAlarm,
            ["Threshold"] = alarm.Threshold,
            ["ComparisonOperator"] = alarm.ComparisonOperator,
            ["TreatMissingData"] = alarm.TreatMissingData,
        };
        if (alarm.Description is not null) json["AlarmDescription"] = alarm.Description;
        if (alarm.StateReasonData is not null) json["StateReasonData"] = alarm.StateReasonData;
        if (alarm.Unit is not null) json["Unit"] = alarm.Unit;
        return json;
    }

    private sealed record ManagedAlarm(string Name, bool High, AlarmStatus Status, ScalableTargetRecord Target, ScalingPolicyRecord Policy);

    private async Task<List<ManagedAlarm>> ManagedAsync(CancellationToken cancellationToken)
    {
        var alarms = new List<ManagedAlarm>();
        foreach (var (target, policies) in await store.ListAsync(cancellationToken))
        {
            foreach (var policy in policies.Where(p => p.IsTargetTracking))
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
        => services.AddSingleton<MetricAlarmStore>().AddSingleton<MetricAlarmEvaluator>().AddSingleton<IActionSource, AlarmActions>();
}
