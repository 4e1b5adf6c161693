using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.Alarms;
using Serverless.Core.Api;
using Serverless.Core.AutoScaling;
using Serverless.Core.Metrics;
using Serverless.Core.Reconciliation;
using Serverless.Core.Storage;
using Serverless.Core.Tests.Services;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Alarms;

/// <summary>
/// A metric alarm created with PutMetricAlarm on a custom metric, whose action is a step scaling policy, over real
/// Table Storage: the API as CloudWatch and Application Auto Scaling show it, and the timer evaluating and scaling.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class StepScalingAlarmTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private static readonly ServiceModel AutoScalingModel = ServiceModel.Load("application-autoscaling");
    private readonly ServiceTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private ActionRegistry _registry = null!;
    private ScalingEvaluator _evaluator = null!;

    private string Resource => $"service/{_tables.Cluster}/web";

    public async Task InitializeAsync()
    {
        await _tables.InitializeAsync(_token);
        await _tables.CallAsync("CreateService", $$"""{"cluster":"{{_tables.Cluster}}","serviceName":"web","taskDefinition":"web","desiredCount":2}""", _token);
        var storage = new StorageClients(azurite.ConnectionString, _tables.Options);
        var targets = new AutoScalingStore(storage);
        var scheduled = new ScheduledActionStore(storage);
        var alarms = new MetricAlarmStore(storage);
        var reader = new MetricReader(new MetricStore(storage), new CustomMetricStore(storage));
        _registry = new ActionRegistry(
        [
            new AutoScalingActions(targets, scheduled, _tables.Services, alarms, _tables.Options, _tables.Time),
            new CloudWatchActions(new MetricStore(storage), new CustomMetricStore(storage), reader, new MetricsOptions(), _tables.Time),
            new AlarmActions(targets, alarms, new AutoScalingOptions(), _tables.Options, _tables.Time),
        ]);
        _evaluator = new ScalingEvaluator(targets, scheduled, new MetricStore(storage), _tables.Services,
            new ReconcileQueue(storage, new QueueWake(NullLogger<QueueWake>.Instance)),
            new MetricAlarmEvaluator(alarms, reader, _tables.Time, NullLogger<MetricAlarmEvaluator>.Instance),
            new AutoScalingOptions(), _tables.Time, NullLogger<ScalingEvaluator>.Instance);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<JsonObject> CallAsync(string prefix, string action, string json)
    {
        var request = JsonNode.Parse(json)!.AsObject();
        if (prefix == ActionRegistry.AutoScalingTargetPrefix) request = RequestValidator.Validate(AutoScalingModel, AutoScalingModel.InputOf(action)!, request);
        else request = RequestValidator.Validate(CloudWatchActions.Model, CloudWatchActions.Model.InputOf(action)!, request);
        Assert.True(_registry.TryGet($"{prefix}.{action}", out var handler));
        var response = await handler(request, new RequestContext("AKIDTEST"), _token);
        return JsonNode.Parse(response.ToJsonString(AwsJson.Options))!.AsObject();
    }

    private Task<JsonObject> ScalingAsync(string action, string json) => CallAsync(ActionRegistry.AutoScalingTargetPrefix, action, json);

    private Task<JsonObject> CloudWatchAsync(string action, string json) => CallAsync(CloudWatchActions.Model.TargetPrefix, action, json);

    private async Task<int> DesiredAsync() => (await _tables.Services.FindAsync(_tables.Cluster, "web", _token))!.DesiredCount;

    private Task PutLoadAsync(DateTimeOffset at, double value) => CloudWatchAsync("PutMetricData", $$"""
        {"Namespace":"Test/Queue","MetricData":[{"MetricName":"Backlog","Dimensions":[{"Name":"Service","Value":"web"}],
         "Timestamp":{{at.ToUnixTimeSeconds()}},"Value":{{value}}}]}
        """);

    private async Task<string> StepPolicyAsync(string steps, int cooldown = 300)
    {
        await ScalingAsync("RegisterScalableTarget",
            $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","MinCapacity":1,"MaxCapacity":10}""");
        return (await ScalingAsync("PutScalingPolicy", $$"""
            {"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","PolicyName":"backlog-out",
             "PolicyType":"StepScaling","StepScalingPolicyConfiguration":{"AdjustmentType":"ChangeInCapacity","Cooldown":{{cooldown}},
             "StepAdjustments":{{steps}}
            } }
            """))["PolicyARN"]!.GetValue<string>();
    }

    private Task<JsonObject> AlarmAsync(string policyArn) => CloudWatchAsync("PutMetricAlarm", $$"""
        {"AlarmName":"backlog-high","Namespace":"Test/Queue","MetricName":"Backlog","Dimensions":[{"Name":"Service","Value":"web"}],
         "Statistic":"Average","Period":60,"EvaluationPeriods":2,"DatapointsToAlarm":2,"Threshold":100,
         "ComparisonOperator":"GreaterThanOrEqualToThreshold","AlarmActions":["{{policyArn}}"]}
        """);

    [Fact]
    public async Task An_alarm_in_ALARM_adds_its_steps_capacity_once_per_cooldown_and_is_shown_as_CloudWatch_shows_it()
    {
        var arn = await StepPolicyAsync("""[{"MetricIntervalLowerBound":0,"MetricIntervalUpperBound":10,"ScalingAdjustment":1},{"MetricIntervalLowerBound":10,"ScalingAdjustment":3}]""");
        await AlarmAsync(arn);
        _tables.Time.Advance(TimeSpan.FromSeconds(1));     // history items a second apart, so newest first is one order

        var policy = (await ScalingAsync("DescribeScalingPolicies", $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}"}"""))["ScalingPolicies"]![0]!;
        Assert.Equal("StepScaling", policy["PolicyType"]!.GetValue<string>());
        Assert.Equal("backlog-high", policy["Alarms"]![0]!["AlarmName"]!.GetValue<string>());
        var alarm = (await CloudWatchAsync("DescribeAlarms", """{"AlarmNames":["backlog-high"]}"""))["MetricAlarms"]![0]!;
        Assert.Equal("INSUFFICIENT_DATA", alarm["StateValue"]!.GetValue<string>());
        Assert.Equal(arn, alarm["AlarmActions"]![0]!.GetValue<string>());
        Assert.Single((await CloudWatchAsync("DescribeAlarmsForMetric", """{"Namespace":"Test/Queue","MetricName":"Backlog"}"""))["MetricAlarms"]!.AsArray());

        var now = _tables.Time.GetUtcNow();
        var end = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() / 60 * 60);
        await PutLoadAsync(end.AddSeconds(-110), 115);
        await PutLoadAsync(end.AddSeconds(-50), 115);
        await _evaluator.TickAsync(_token);

        // 115 is 15 above the threshold: the +3 step, from the desired count of 2.
        Assert.Equal(5, await DesiredAsync());
        alarm = (await CloudWatchAsync("DescribeAlarms", """{"AlarmNames":["backlog-high"]}"""))["MetricAlarms"]![0]!;
        Assert.Equal("ALARM", alarm["StateValue"]!.GetValue<string>());
        Assert.Contains("2 out of the last 2 datapoints [115.0, 115.0] were greater than or equal to the threshold (100.0)", alarm["StateReason"]!.GetValue<string>());
        var history = (await CloudWatchAsync("DescribeAlarmHistory", """{"AlarmName":"backlog-high"}"""))["AlarmHistoryItems"]!.AsArray();
        Assert.Equal(["StateUpdate", "ConfigurationUpdate"], history.Select(h => h!["HistoryItemType"]!.GetValue<string>()));
        Assert.Equal("Alarm updated from INSUFFICIENT_DATA to ALARM", history[0]!["HistorySummary"]!.GetValue<string>());
        var activity = (await ScalingAsync("DescribeScalingActivities", $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}"}"""))["ScalingActivities"]![0]!;
        Assert.Equal("Setting desired count to 5.", activity["Description"]!.GetValue<string>());
        Assert.Contains("monitor alarm backlog-high in state ALARM triggered policy backlog-out", activity["Cause"]!.GetValue<string>());

        // Still in ALARM a minute later, within the cooldown: the capacity the first scale-out added counts, so nothing more.
        _tables.Time.Advance(TimeSpan.FromSeconds(60));
        await PutLoadAsync(end.AddSeconds(10), 115);
        await _evaluator.TickAsync(_token);
        Assert.Equal(5, await DesiredAsync());

        // After the cooldown it adds the step again; with actions disabled it does not.
        _tables.Time.Advance(TimeSpan.FromSeconds(300));
        await CloudWatchAsync("DisableAlarmActions", """{"AlarmNames":["backlog-high"]}""");
        foreach (var s in new[] { 250, 310, 370 }) await PutLoadAsync(end.AddSeconds(s), 115);
        await _evaluator.TickAsync(_token);
        Assert.Equal(5, await DesiredAsync());
        await CloudWatchAsync("EnableAlarmActions", """{"AlarmNames":["backlog-high"]}""");
        _tables.Time.Advance(TimeSpan.FromSeconds(60));
        await PutLoadAsync(end.AddSeconds(430), 115);
        await _evaluator.TickAsync(_token);
        Assert.Equal(8, await DesiredAsync());
    }

    [Fact]
    public async Task SetAlarmState_records_history_and_DeleteAlarms_deletes_only_what_exists()
    {
        var arn = await StepPolicyAsync("""[{"MetricIntervalLowerBound":0,"ScalingAdjustment":1}]""");
        await AlarmAsync(arn);
        await CloudWatchAsync("SetAlarmState", """{"AlarmName":"backlog-high","StateValue":"ALARM","StateReason":"testing"}""");
        var alarm = (await CloudWatchAsync("DescribeAlarms", """{"StateValue":"ALARM"}"""))["MetricAlarms"]![0]!;
        Assert.Equal("testing", alarm["StateReason"]!.GetValue<string>());
        var states = (await CloudWatchAsync("DescribeAlarmHistory", """{"AlarmName":"backlog-high","HistoryItemType":"StateUpdate"}"""))["AlarmHistoryItems"]!.AsArray();
        Assert.Equal("Alarm updated from INSUFFICIENT_DATA to ALARM", Assert.Single(states)!["HistorySummary"]!.GetValue<string>());
        var bad = await Assert.ThrowsAsync<CloudWatchException>(() => CloudWatchAsync("SetAlarmState", """{"AlarmName":"backlog-high","StateValue":"OK","StateReason":"x","StateReasonData":"{not json"}"""));
        Assert.Equal("InvalidFormat", bad.QueryCode);
        var missing = await Assert.ThrowsAsync<CloudWatchException>(() => CloudWatchAsync("SetAlarmState", """{"AlarmName":"nope","StateValue":"OK","StateReason":"x"}"""));
        Assert.Equal("ResourceNotFound", missing.QueryCode);

        Assert.Equal("ResourceNotFound", (await Assert.ThrowsAsync<CloudWatchException>(() => CloudWatchAsync("DeleteAlarms", """{"AlarmNames":["backlog-high","nope"]}"""))).QueryCode);
        Assert.Single((await CloudWatchAsync("DescribeAlarms", "{}"))["MetricAlarms"]!.AsArray());
        await CloudWatchAsync("DeleteAlarms", """{"AlarmNames":["backlog-high"]}""");
        Assert.Empty((await CloudWatchAsync("DescribeAlarms", "{}"))["MetricAlarms"]!.AsArray());
    }

    [Theory]
    [InlineData("""{"AlarmName":"a","Namespace":"N","MetricName":"M","Statistic":"Average","ExtendedStatistic":"p99","Period":60,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}""", "InvalidParameterCombination")]
    [InlineData("""{"AlarmName":"a","Namespace":"N","MetricName":"M","Statistic":"Average","Period":45,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}""", "InvalidParameterValue")]
    [InlineData("""{"AlarmName":"a","Namespace":"N","MetricName":"M","Statistic":"Average","Period":60,"EvaluationPeriods":2,"DatapointsToAlarm":3,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}""", "InvalidParameterValue")]
    [InlineData("""{"AlarmName":"a","Namespace":"N","MetricName":"M","Statistic":"Average","Period":60,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold","TreatMissingData":"sometimes"}""", "InvalidParameterValue")]
    [InlineData("""{"AlarmName":"a","Namespace":"N","MetricName":"M","Statistic":"Average","Period":60,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold","AlarmActions":["arn:aws:sns:us-east-1:000000000000:t"]}""", "InvalidParameterValue")]
    [InlineData("""{"AlarmName":"a","Namespace":"N","MetricName":"M","Period":60,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}""", "MissingParameter")]
    [InlineData("""{"AlarmName":"a","Namespace":"N","MetricName":"M","Statistic":"Average","Period":60,"EvaluationPeriods":1441,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}""", "InvalidParameterValue")]
    public async Task PutMetricAlarm_refuses_what_CloudWatch_refuses(string request, string code)
        => Assert.Equal(code, (await Assert.ThrowsAsync<CloudWatchException>(() => CloudWatchAsync("PutMetricAlarm", request))).QueryCode);

    [Fact]
    public async Task Step_adjustments_that_overlap_are_a_ValidationException()
    {
        var error = await Assert.ThrowsAsync<AutoScalingException>(() => StepPolicyAsync(
            """[{"MetricIntervalLowerBound":0,"MetricIntervalUpperBound":20,"ScalingAdjustment":1},{"MetricIntervalLowerBound":10,"ScalingAdjustment":3}]"""));
        Assert.Equal("ValidationException", error.ErrorType);
        Assert.Contains("must not overlap", error.Message);
    }
}
