using Serverless.Core.Alarms;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.Api;
using Serverless.Core.AutoScaling;
using Serverless.Core.Metrics;
using Serverless.Core.Reconciliation;
using Serverless.Core.Storage;
using Serverless.Core.Tests.Services;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.AutoScaling;

/// <summary>Scheduled actions over real Table Storage: the API's checks, and the timer applying what is due.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ScheduledActionTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private static readonly ServiceModel Model = ServiceModel.Load("application-autoscaling");
    private readonly ServiceTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private ActionRegistry _registry = null!;
    private ScalingEvaluator _evaluator = null!;
    private AutoScalingStore _targets = null!;

    private string Resource => $"service/{_tables.Cluster}/web";

    public async Task InitializeAsync()
    {
        await _tables.InitializeAsync(_token);
        await _tables.CallAsync("CreateService", $$"""{"cluster":"{{_tables.Cluster}}","serviceName":"web","taskDefinition":"web","desiredCount":2}""", _token);
        var storage = new StorageClients(azurite.ConnectionString, _tables.Options);
        _targets = new AutoScalingStore(storage);
        var scheduled = new ScheduledActionStore(storage);
        _registry = new ActionRegistry(
        [
            new AutoScalingActions(_targets, scheduled, _tables.Services, new MetricAlarmStore(storage), _tables.Options, _tables.Time),
            new ScheduledActionActions(_targets, scheduled, _tables.Options, _tables.Time),
            new ScalableTargetTags(_targets),
        ]);
        _evaluator = new ScalingEvaluator(_targets, scheduled, new MetricStore(storage), _tables.Services,
            new ReconcileQueue(storage, new QueueWake(NullLogger<QueueWake>.Instance)),
            new MetricAlarmEvaluator(new MetricAlarmStore(storage), new MetricReader(new MetricStore(storage), new CustomMetricStore(storage)), _tables.Time, NullLogger<MetricAlarmEvaluator>.Instance),
            new AutoScalingOptions(), _tables.Time, NullLogger<ScalingEvaluator>.Instance);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<JsonObject> CallAsync(string action, string json)
    {
        var request = RequestValidator.Validate(Model, Model.InputOf(action)!, JsonNode.Parse(json)!.AsObject());
        Assert.True(_registry.TryGet($"{ActionRegistry.AutoScalingTargetPrefix}.{action}", out var handler));
        var response = await handler(request, new RequestContext("AKIDTEST"), _token);
        return JsonNode.Parse(response.ToJsonString(AwsJson.Options))!.AsObject();
    }

    private Task<JsonObject> RegisterAsync(int min, int max) => CallAsync("RegisterScalableTarget",
        $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","MinCapacity":{{min}},"MaxCapacity":{{max}}}""");

    private Task<JsonObject> PutAsync(string name, string schedule, string extra = "", string capacity = """{"MinCapacity":4,"MaxCapacity":6}""")
        => CallAsync("PutScheduledAction", $$"""
            {"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount",
             "ScheduledActionName":"{{name}}","Schedule":"{{schedule}}","ScalableTargetAction":{{capacity}}{{extra}}}
            """);

    private async Task<JsonArray> DescribeAsync()
        => (await CallAsync("DescribeScheduledActions", $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}"}"""))["ScheduledActions"]!.AsArray();

    private async Task<(int Min, int Max, int Desired)> StateAsync()
    {
        var (target, _) = await _targets.FindAsync(_tables.Cluster, "web", _token);
        var service = await _tables.Services.FindAsync(_tables.Cluster, "web", _token);
        return (target!.MinCapacity, target.MaxCapacity, service!.DesiredCount);
    }

    [Fact]
    public async Task An_action_on_an_unregistered_target_is_ObjectNotFoundException()
    {
        var error = await Assert.ThrowsAsync<AutoScalingException>(() => PutAsync("up", "rate(5 minutes)"));
        Assert.Equal("ObjectNotFoundException", error.ErrorType);
    }

    [Theory]
    [InlineData("cron(0 9 * * *)", "")]
    [InlineData("rate(5 fortnights)", "")]
    [InlineData("at(2026-12-24T18:00:00)", ""","Timezone":"Nowhere/Else" """)]
    [InlineData("rate(5 minutes)", ""","StartTime":1800000000,"EndTime":1700000000""")]
    public async Task Bad_schedules_are_ValidationException_and_write_nothing(string schedule, string extra)
    {
        await RegisterAsync(1, 3);
        var error = await Assert.ThrowsAsync<AutoScalingException>(() => PutAsync("bad", schedule, extra));
        Assert.Equal("ValidationException", error.ErrorType);
        var minAboveMax = await Assert.ThrowsAsync<AutoScalingException>(() => PutAsync("bad", "rate(1 day)", capacity: """{"MinCapacity":5,"MaxCapacity":2}"""));
        Assert.Equal("ValidationException", minAboveMax.ErrorType);
        Assert.Empty(await DescribeAsync());
    }

    [Fact]
    public async Task Put_describe_and_delete_as_AWS_shows_them()
    {
        await RegisterAsync(1, 3);
        await PutAsync("evening", "cron(0 18 ? * MON-FRI *)", ""","Timezone":"Europe/Paris","StartTime":1800000000""");
        await PutAsync("evening", "cron(0 19 ? * MON-FRI *)", ""","Timezone":"Europe/Paris" """);   // replaces, keeps its ARN
        await PutAsync("once", "at(2026-01-01T00:00:00)");
        var actions = await DescribeAsync();
        Assert.Equal(2, actions.Count);
        var evening = actions.Single(a => a!["ScheduledActionName"]!.GetValue<string>() == "evening")!;
        Assert.Equal("cron(0 19 ? * MON-FRI *)", evening["Schedule"]!.GetValue<string>());
        Assert.Equal("Europe/Paris", evening["Timezone"]!.GetValue<string>());
        Assert.Null(evening["StartTime"]);
        Assert.Equal(4, evening["ScalableTargetAction"]!["MinCapacity"]!.GetValue<int>());
        Assert.Matches($"^arn:aws:autoscaling:us-east-1:000000000000:scheduledAction:[0-9a-f-]{{36}}:resource/ecs/{Resource}:scheduledActionName/evening$",
            evening["ScheduledActionARN"]!.GetValue<string>());

        await CallAsync("DeleteScheduledAction", $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","ScheduledActionName":"evening"}""");
        Assert.Single(await DescribeAsync());
        var missing = await Assert.ThrowsAsync<AutoScalingException>(() => CallAsync("DeleteScheduledAction",
            $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","ScheduledActionName":"evening"}"""));
        Assert.Equal("ObjectNotFoundException", missing.ErrorType);

        await CallAsync("DeregisterScalableTarget", $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount"}""");
        Assert.Empty(await DescribeAsync());
    }

    [Fact]
    public async Task A_due_action_sets_min_and_max_moves_the_desired_count_into_range_and_runs_once_per_occurrence()
    {
        await RegisterAsync(1, 3);
        await PutAsync("up", "rate(10 minutes)");
        await _evaluator.RunScheduledAsync(_token);
        Assert.Equal((1, 3, 2), await StateAsync());          // not due yet

        _tables.Time.Advance(TimeSpan.FromMinutes(10));
        await _evaluator.RunScheduledAsync(_token);
        Assert.Equal((4, 6, 4), await StateAsync());          // min 4: desired 2 moves up to 4
        await _tables.CallAsync("UpdateService", $$"""{"cluster":"{{_tables.Cluster}}","service":"web","desiredCount":5}""", _token);
        await _evaluator.RunScheduledAsync(_token);
        Assert.Equal((4, 6, 5), await StateAsync());          // ran once: the next run is 10 minutes on

        await PutAsync("down", "at(2025-11-25T04:15:00)", capacity: """{"MaxCapacity":4}""");
        _tables.Time.Advance(TimeSpan.FromMinutes(5));
        await _evaluator.RunScheduledAsync(_token);
        Assert.Equal((4, 4, 4), await StateAsync());          // max 4: desired 5 moves down to 4

        var activities = (await CallAsync("DescribeScalingActivities", $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}"}"""))["ScalingActivities"]!.AsArray()
            .Select(a => (a!["Description"]!.GetValue<string>(), a["StatusCode"]!.GetValue<string>())).ToList();
        Assert.Contains(("Setting min capacity to 4 and max capacity to 6.", "Successful"), activities);
        Assert.Contains(("Setting desired count to 4.", "Successful"), activities);
        Assert.Contains(("Setting min capacity to 4 and max capacity to 4.", "Successful"), activities);
        var events = (await _tables.Services.FindAsync(_tables.Cluster, "web", _token))!.Events.Select(e => e.Message).ToList();
        Assert.Contains(events, e => e.Contains("Application Auto Scaling: Setting desired count to 4. Cause: maximum capacity was set to 4", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Suspended_scheduled_scaling_skips_the_run()
    {
        await RegisterAsync(1, 3);
        await CallAsync("RegisterScalableTarget", $$"""{"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","SuspendedState":{"ScheduledScalingSuspended":true} }""");
        await PutAsync("up", "rate(1 minute)");
        _tables.Time.Advance(TimeSpan.FromMinutes(1));
        await _evaluator.RunScheduledAsync(_token);
        Assert.Equal((1, 3, 2), await StateAsync());
    }

    [Fact]
    public async Task Tags_on_a_scalable_target_ARN_with_the_models_limits_and_errors()
    {
        var arn = (await CallAsync("RegisterScalableTarget", $$"""
            {"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","MinCapacity":1,"MaxCapacity":3,"Tags":{"team":"web"} }
            """))["ScalableTargetARN"]!.GetValue<string>();
        await CallAsync("TagResource", $$"""{"ResourceARN":"{{arn}}","Tags":{"env":"prod","team":"api"} }""");
        await CallAsync("UntagResource", $$"""{"ResourceARN":"{{arn}}","TagKeys":["env","absent"]}""");
        var tags = (await CallAsync("ListTagsForResource", $$"""{"ResourceARN":"{{arn}}"}"""))["Tags"]!.AsObject();
        Assert.Equal(["team=api"], tags.Select(t => $"{t.Key}={t.Value}"));

        var reserved = await Assert.ThrowsAsync<AutoScalingException>(() => CallAsync("TagResource", $$"""{"ResourceARN":"{{arn}}","Tags":{"aws:x":"y"} }"""));
        Assert.Equal("ValidationException", reserved.ErrorType);
        var many = string.Join(',', Enumerable.Range(0, 50).Select(i => $"\"k{i}\":\"v\""));
        var tooMany = await Assert.ThrowsAsync<AutoScalingException>(() => CallAsync("TagResource", $$"""{"ResourceARN":"{{arn}}","Tags":{ {{many}} } }"""));
        Assert.Equal("TooManyTagsException", tooMany.ErrorType);
        Assert.Single((await CallAsync("ListTagsForResource", $$"""{"ResourceARN":"{{arn}}"}"""))["Tags"]!.AsObject());
        var missing = await Assert.ThrowsAsync<AutoScalingException>(() => CallAsync("ListTagsForResource",
            """{"ResourceARN":"arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/0ecffffffffffffffffffffffffffffffff"}"""));
        Assert.Equal("ResourceNotFoundException", missing.ErrorType);
    }

    [Fact]
    public async Task A_forecast_without_a_predictive_policy_is_ValidationException()
    {
        Task<JsonObject> Forecast(string policy) => CallAsync("GetPredictiveScalingForecast", $$"""
            {"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","PolicyName":"{{policy}}","StartTime":1800000000,"EndTime":1800086400}
            """);
        Assert.Equal("ValidationException", (await Assert.ThrowsAsync<AutoScalingException>(() => Forecast("cpu"))).ErrorType);
        await RegisterAsync(1, 3);
        await CallAsync("PutScalingPolicy", $$"""
            {"ServiceNamespace":"ecs","ResourceId":"{{Resource}}","ScalableDimension":"ecs:service:DesiredCount","PolicyName":"cpu","PolicyType":"TargetTrackingScaling",
             "TargetTrackingScalingPolicyConfiguration":{"TargetValue":50,"PredefinedMetricSpecification":{"PredefinedMetricType":"ECSServiceAverageCPUUtilization"} } }
            """);
        var error = await Assert.ThrowsAsync<AutoScalingException>(() => Forecast("cpu"));
        Assert.Equal("ValidationException", error.ErrorType);
        Assert.Contains("PredictiveScaling", error.Message, StringComparison.Ordinal);
        Assert.Contains("No scaling policy found", (await Assert.ThrowsAsync<AutoScalingException>(() => Forecast("other"))).Message, StringComparison.Ordinal);
    }
}
