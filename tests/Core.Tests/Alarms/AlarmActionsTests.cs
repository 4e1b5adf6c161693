using System.Text.Json.Nodes;
using Serverless.Core.Alarms;
using Serverless.Core.Api;
using Serverless.Core.AutoScaling;
using Serverless.Core.Metrics;
using Serverless.Core.Storage;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Alarms;

[Collection(AzuriteCollection.Name)]
public sealed class AlarmActionsTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
    private readonly AutoScalingStore _store;
    private readonly ActionRegistry _registry;

    public AlarmActionsTests(AzuriteFixture azurite)
    {
        var storage = new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("alm") });
        _store = new AutoScalingStore(storage);
        _registry = new ActionRegistry([new AlarmActions(_store, new MetricAlarmStore(storage), new AutoScalingOptions(), new EcsOptions(), new Microsoft.Extensions.Time.Testing.FakeTimeProvider(Now))]);
    }

    private static readonly ScalableTargetRecord Target = new() { Cluster = "prod", Service = "web", Arn = "arn:target", RoleArn = "arn:role", MinCapacity = 1, MaxCapacity = 4 };

    private static ScalingPolicyRecord Policy(string name = "cpu50") => new()
    {
        Name = name, Arn = $"arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:id:resource/ecs/service/prod/web:policyName/{name}",
        TargetValue = 50, MetricType = "ECSServiceAverageCPUUtilization", CreatedAt = Now,
        HighAlarmName = $"TargetTracking-service/prod/web-AlarmHigh-{name}", LowAlarmName = $"TargetTracking-service/prod/web-AlarmLow-{name}",
    };

    private Task<JsonObject> CallAsync(string action, string json)
    {
        Assert.True(_registry.TryGet($"{CloudWatchActions.Model.TargetPrefix}.{action}", out var handler));
        return handler(JsonNode.Parse(json)!.AsObject(), new RequestContext(null!), CancellationToken.None);
    }

    [Fact]
    public void Alarm_states_follow_the_datapoints_and_keep_their_time_until_they_change()
    {
        var policy = Policy();
        var first = TargetTracking.Alarms(policy, [60, 70, 80], Now);
        Assert.Equal(AlarmState.Alarm, first.High.State);
        Assert.Contains("3 datapoints [60.0, 70.0, 80.0] were greater than the threshold (50.0)", first.High.Reason);
        Assert.Equal(AlarmState.Ok, first.Low.State);

        var same = TargetTracking.Alarms(policy with { Alarms = first }, [60, 70, 80, 90], Now.AddMinutes(1));
        Assert.Equal(first, same);

        var calmer = TargetTracking.Alarms(policy with { Alarms = first }, [60, 70, 80, 40], Now.AddMinutes(2));
        Assert.Equal(AlarmState.Ok, calmer.High.State);
        Assert.Equal(Now.AddMinutes(2), calmer.High.UpdatedAt);
        Assert.Same(first.Low, calmer.Low);

        var none = TargetTracking.Alarms(policy, [], Now);
        Assert.Equal(AlarmState.InsufficientData, none.High.State);
        Assert.Equal(AlarmState.Alarm, TargetTracking.Alarms(policy, [.. Enumerable.Repeat<double?>(10, 15)], Now).Low.State);
    }

    [Fact]
    public async Task DescribeAlarms_shows_each_policys_two_alarms_with_the_recorded_state_and_DeleteAlarms_refuses_them()
    {
        await _store.SaveTargetAsync(Target, CancellationToken.None);
        var target = (await _store.FindAsync("prod", "web", CancellationToken.None)).Target!;
        await _store.SavePolicyAsync(target, Policy(), CancellationToken.None);
        await _store.SavePolicyAsync(target, Policy("mem"), CancellationToken.None);
        await _store.SaveAlarmsAsync(target, "cpu50", TargetTracking.Alarms(Policy(), [60, 70, 80], Now), CancellationToken.None);

        var all = (await CallAsync("DescribeAlarms", "{}"))["MetricAlarms"]!.AsArray().Select(a => a!.AsObject()).ToList();
        Assert.Equal(4, all.Count);
        var high = all.Single(a => a["AlarmName"]!.GetValue<string>() == Policy().HighAlarmName);
        Assert.Equal("ALARM", high["StateValue"]!.GetValue<string>());
        Assert.Equal("CPUUtilization", high["MetricName"]!.GetValue<string>());
        Assert.Equal("AWS/ECS", high["Namespace"]!.GetValue<string>());
        Assert.Equal(["ClusterName=prod", "ServiceName=web"], high["Dimensions"]!.AsArray().Select(d => $"{d!["Name"]}={d["Value"]}"));
        Assert.Equal(50.0, high["Threshold"]!.GetValue<double>());
        Assert.Equal("GreaterThanThreshold", high["ComparisonOperator"]!.GetValue<string>());
        Assert.Equal(3, high["EvaluationPeriods"]!.GetValue<int>());
        Assert.Equal(60, high["Period"]!.GetValue<int>());
        Assert.Equal("Average", high["Statistic"]!.GetValue<string>());
        Assert.Equal(Policy().Arn, high["AlarmActions"]![0]!.GetValue<string>());
        var low = all.Single(a => a["AlarmName"]!.GetValue<string>() == Policy().LowAlarmName);
        Assert.Equal(45.0, low["Threshold"]!.GetValue<double>(), 9);
        Assert.Equal(15, low["EvaluationPeriods"]!.GetValue<int>());
        Assert.Equal("OK", low["StateValue"]!.GetValue<string>());
        Assert.All(all.Where(a => a["AlarmName"]!.GetValue<string>().EndsWith("-mem", StringComparison.Ordinal)),
            a => Assert.Equal("INSUFFICIENT_DATA", a["StateValue"]!.GetValue<string>()));

        Assert.Single((await CallAsync("DescribeAlarms", """{"StateValue":"ALARM"}"""))["MetricAlarms"]!.AsArray());
        Assert.Empty((await CallAsync("DescribeAlarms", """{"AlarmTypes":["CompositeAlarm"]}"""))["MetricAlarms"]!.AsArray());
        var page = await CallAsync("DescribeAlarms", """{"AlarmNamePrefix":"TargetTracking-service/prod/web-AlarmHigh-","MaxRecords":1}""");
        var next = page["NextToken"]!.GetValue<string>();
        var rest = await CallAsync("DescribeAlarms", $$"""{"AlarmNamePrefix":"TargetTracking-service/prod/web-AlarmHigh-","MaxRecords":1,"NextToken":"{{next}}"}""");
        Assert.Single(rest["MetricAlarms"]!.AsArray());
        Assert.Null(rest["NextToken"]);
        Assert.Equal("InvalidNextToken", (await Assert.ThrowsAsync<CloudWatchException>(() => CallAsync("DescribeAlarms", """{"NextToken":"nope"}"""))).QueryCode);

        var refused = await Assert.ThrowsAsync<CloudWatchException>(() => CallAsync("DeleteAlarms", $$"""{"AlarmNames":["{{Policy().HighAlarmName}}"]}"""));
        Assert.Equal("InvalidParameterValue", refused.QueryCode);
        var missing = await Assert.ThrowsAsync<CloudWatchException>(() => CallAsync("DeleteAlarms", """{"AlarmNames":["nope"]}"""));
        Assert.Equal(("ResourceNotFound", 404), (missing.QueryCode, missing.HttpStatus));

        // Deleting the policy deletes its alarms' state with it.
        await _store.DeletePolicyAsync(target, "cpu50", CancellationToken.None);
        Assert.Equal(2, (await CallAsync("DescribeAlarms", "{}"))["MetricAlarms"]!.AsArray().Count);
        await _store.SavePolicyAsync(target, Policy(), CancellationToken.None);
        Assert.Null((await _store.FindAsync("prod", "web", CancellationToken.None)).Policies.Single(p => p.Name == "cpu50").Alarms);
    }
}
