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

namespace Serverless.Core.Tests.AutoScaling;

/// <summary>
/// The target tracking evaluation over real Table Storage: several targets evaluated by one timer, their
/// services read together, each decided from its own metric partition and its own service row.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class TargetTrackingEvaluationTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private static readonly ServiceModel AutoScalingModel = ServiceModel.Load("application-autoscaling");
    private readonly ServiceTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private ActionRegistry _registry = null!;
    private ScalingEvaluator _evaluator = null!;
    private MetricStore _metrics = null!;

    public async Task InitializeAsync()
    {
        await _tables.InitializeAsync(_token);
        var storage = new StorageClients(azurite.ConnectionString, _tables.Options);
        var targets = new AutoScalingStore(storage);
        var scheduled = new ScheduledActionStore(storage);
        var alarms = new MetricAlarmStore(storage);
        _metrics = new MetricStore(storage);
        var reader = new MetricReader(_metrics, new CustomMetricStore(storage));
        _registry = new ActionRegistry([new AutoScalingActions(targets, scheduled, _tables.Services, alarms, _tables.Options, _tables.Time)]);
        _evaluator = new ScalingEvaluator(targets, scheduled, _metrics, _tables.Services,
            new ReconcileQueue(storage, new QueueWake(NullLogger<QueueWake>.Instance)),
            new MetricAlarmEvaluator(alarms, reader, _tables.Time, NullLogger<MetricAlarmEvaluator>.Instance),
            new AutoScalingOptions(), _tables.Time, NullLogger<ScalingEvaluator>.Instance);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<JsonObject> ScalingAsync(string action, string json)
    {
        var request = RequestValidator.Validate(AutoScalingModel, AutoScalingModel.InputOf(action)!, JsonNode.Parse(json)!.AsObject());
        Assert.True(_registry.TryGet($"{ActionRegistry.AutoScalingTargetPrefix}.{action}", out var handler));
        var response = await handler(request, new RequestContext("AKIDTEST"), _token);
        return JsonNode.Parse(response.ToJsonString(AwsJson.Options))!.AsObject();
    }

    private async Task ScaledServiceAsync(string name, int desired, int min, int max)
    {
        await _tables.CallAsync("CreateService", $$"""{"cluster":"{{_tables.Cluster}}","serviceName":"{{name}}","taskDefinition":"web","desiredCount":{{desired}}}""", _token);
        var resource = $"service/{_tables.Cluster}/{name}";
        await ScalingAsync("RegisterScalableTarget",
            $$"""{"ServiceNamespace":"ecs","ResourceId":"{{resource}}","ScalableDimension":"ecs:service:DesiredCount","MinCapacity":{{min}},"MaxCapacity":{{max}}}""");
        await ScalingAsync("PutScalingPolicy", $$"""
            {"ServiceNamespace":"ecs","ResourceId":"{{resource}}","ScalableDimension":"ecs:service:DesiredCount","PolicyName":"cpu50",
             "PolicyType":"TargetTrackingScaling","TargetTrackingScalingPolicyConfiguration":{"TargetValue":50,
             "PredefinedMetricSpecification":{"PredefinedMetricType":"ECSServiceAverageCPUUtilization"} } }
            """);
    }

    /// <summary>One worker's report of one 60 s period: each service's tasks at <paramref name="percent"/> of their 512 CPU units.</summary>
    private Task ReportAsync(DateTimeOffset start, params (string Service, double Percent)[] services) => _metrics.SaveAsync(new MetricsReport
    {
        Cluster = _tables.Cluster,
        InstanceId = "0123456789abcdef",
        Start = start,
        Seconds = 60,
        Instance = new InstanceLoad(4096, 8192, 1024, 256, 1024, 100),
        Services = [.. services.Select(s => new ServiceLoad(s.Service, Ratio.Of(512 * s.Percent / 100, 512), Ratio.Of(10, 128)))],
    }, _token);

    private async Task<int> DesiredAsync(string name) => (await _tables.Services.FindAsync(_tables.Cluster, name, _token))!.DesiredCount;

    [Fact]
    public async Task Each_target_is_decided_from_its_own_metrics_and_its_own_service_row()
    {
        // web: 2 tasks at 200 % of their CPU, out to 2 x 200 / 50 = 8. api: 3 tasks at 10 %, nothing (its low alarm
        // needs 15 datapoints). batch: at its Max of 5 with 6 tasks (desired set before the target): Max holds.
        await ScaledServiceAsync("web", desired: 2, min: 1, max: 10);
        await ScaledServiceAsync("api", desired: 3, min: 1, max: 10);
        await ScaledServiceAsync("batch", desired: 6, min: 1, max: 10);
        await ScalingAsync("RegisterScalableTarget",
            $$"""{"ServiceNamespace":"ecs","ResourceId":"service/{{_tables.Cluster}}/batch","ScalableDimension":"ecs:service:DesiredCount","MaxCapacity":5}""");
        var now = _tables.Time.GetUtcNow();
        var end = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds() / 60 * 60);
        for (var i = 3; i >= 1; i--) await ReportAsync(end.AddMinutes(-i), ("web", 200), ("api", 10), ("batch", 10));

        Assert.Equal(3, await _evaluator.EvaluateAllAsync(_token));

        Assert.Equal((8, 3, 5), (await DesiredAsync("web"), await DesiredAsync("api"), await DesiredAsync("batch")));
        var activity = (await ScalingAsync("DescribeScalingActivities", $$"""{"ServiceNamespace":"ecs","ResourceId":"service/{{_tables.Cluster}}/web"}"""))["ScalingActivities"]![0]!;
        Assert.Equal("Setting desired count to 8.", activity["Description"]!.GetValue<string>());
        Assert.Contains("-AlarmHigh-", activity["Cause"]!.GetValue<string>());
        Assert.Empty((await ScalingAsync("DescribeScalingActivities", $$"""{"ServiceNamespace":"ecs","ResourceId":"service/{{_tables.Cluster}}/api"}"""))["ScalingActivities"]!.AsArray());

        // A deleted service's target is skipped; the others are still evaluated (web, still at 200 % within its
        // scale-out cooldown, goes on only because 8 x 200 / 50 is larger than its last scale-out: to its Max).
        await _tables.CallAsync("DeleteService", $$"""{"cluster":"{{_tables.Cluster}}","service":"api","force":true}""", _token);
        _tables.Time.Advance(TimeSpan.FromMinutes(1));
        await ReportAsync(end, ("web", 200), ("batch", 10));
        Assert.Equal(3, await _evaluator.EvaluateAllAsync(_token));
        Assert.Equal((10, 5), (await DesiredAsync("web"), await DesiredAsync("batch")));
        Assert.Equal(0, await DesiredAsync("api"));
    }
}
