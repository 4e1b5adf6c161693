using System.Globalization;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.AutoScaling;

/// <summary>
/// With the aws CLI on real Docker, on the scaling plane (2 s evaluation): an alarm created with put-metric-alarm on a
/// custom metric drives a step scaling policy, and a task under scale-in protection survives a scale-in.
/// </summary>
[Collection("scaling plane")]
public sealed class StepScalingAndProtectionTests(ScalingPlaneFixture plane) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => plane.StopWorkersAsync();

    [Fact]
    public async Task An_alarm_adds_its_steps_capacity_and_a_protected_task_survives_the_scale_in()
    {
        var cluster = $"st-{Guid.NewGuid():N}"[..20];
        _ = (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json;
        // No task metadata is needed here, so the worker does not depend on Docker reporting its bridge gateway.
        await plane.StartWorkerAsync(cluster, settings: new Dictionary<string, string> { ["Worker__MetadataPort"] = "-1" });
        var definition = (await plane.EcsAsync("register-task-definition", "--family", "st-sleep", "--memory", "32",
                "--container-definitions", """[{"name":"main","image":"local/busybox:latest","command":["sleep","600"]}]"""))
            .Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", definition, "--desired-count", "1")).Json;
        var resource = $"service/{cluster}/web";
        _ = (await plane.AwsAsync(["application-autoscaling", "register-scalable-target", "--service-namespace", "ecs",
            "--scalable-dimension", "ecs:service:DesiredCount", "--resource-id", resource, "--min-capacity", "1", "--max-capacity", "5"])).Json;
        var policyArn = (await plane.AwsAsync(["application-autoscaling", "put-scaling-policy", "--service-namespace", "ecs",
            "--scalable-dimension", "ecs:service:DesiredCount", "--resource-id", resource, "--policy-name", "backlog-out", "--policy-type", "StepScaling",
            "--step-scaling-policy-configuration",
            """{"AdjustmentType":"ChangeInCapacity","Cooldown":300,"StepAdjustments":[{"MetricIntervalLowerBound":0,"MetricIntervalUpperBound":50,"ScalingAdjustment":1},{"MetricIntervalLowerBound":50,"ScalingAdjustment":2}]}"""]))
            .Json["PolicyARN"]!.GetValue<string>();
        var ns = $"E2E/{cluster}";
        _ = (await plane.AwsAsync(["cloudwatch", "put-metric-alarm", "--alarm-name", $"{cluster}-backlog", "--namespace", ns, "--metric-name", "Backlog",
            "--statistic", "Maximum", "--period", "10", "--evaluation-periods", "1", "--threshold", "100",
            "--comparison-operator", "GreaterThanOrEqualToThreshold", "--alarm-actions", policyArn])).Json;

        // 160 is 60 above the threshold: the +2 step. Datapoints around now keep the alarm fed for half a minute.
        var now = DateTimeOffset.UtcNow;
        var data = string.Join(',', new[] { -15, -5, 5, 15 }.Select(s =>
            $$"""{"MetricName":"Backlog","Timestamp":"{{now.AddSeconds(s).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}}","Value":160}"""));
        _ = (await plane.AwsAsync(["cloudwatch", "put-metric-data", "--namespace", ns, "--metric-data", $"[{data}]"])).Json;
        await WaitForAsync(cluster, s => s["desiredCount"]!.GetValue<int>() == 3, TimeSpan.FromSeconds(60));
        var alarm = Assert.Single((await plane.AwsAsync(["cloudwatch", "describe-alarms", "--alarm-names", $"{cluster}-backlog"])).Json["MetricAlarms"]!.AsArray())!;
        Assert.Equal(policyArn, alarm["AlarmActions"]![0]!.GetValue<string>());
        var activity = (await plane.AwsAsync(["application-autoscaling", "describe-scaling-activities", "--service-namespace", "ecs",
            "--resource-id", resource])).Json["ScalingActivities"]![0]!;
        Assert.Equal("Setting desired count to 3.", activity["Description"]!.GetValue<string>());
        Assert.Contains($"monitor alarm {cluster}-backlog in state ALARM triggered policy backlog-out", activity["Cause"]!.GetValue<string>());
        var history = (await plane.AwsAsync(["cloudwatch", "describe-alarm-history", "--alarm-name", $"{cluster}-backlog", "--history-item-type", "StateUpdate"])).Json;
        Assert.Contains(history["AlarmHistoryItems"]!.AsArray(), h => h!["HistorySummary"]!.GetValue<string>().EndsWith("to ALARM", StringComparison.Ordinal));

        // Three tasks running; one is protected, then the service scales in to one: the protected task is the one left.
        await WaitForAsync(cluster, s => s["runningCount"]!.GetValue<int>() == 3, TimeSpan.FromSeconds(90));
        var tasks = await plane.ListTaskArnsAsync(cluster, "web");
        var guarded = tasks.OrderBy(t => t, StringComparer.Ordinal).Last();
        var protectedTask = Assert.Single((await plane.EcsAsync("update-task-protection", "--cluster", cluster, "--tasks", guarded,
            "--protection-enabled", "--expires-in-minutes", "5")).Json["protectedTasks"]!.AsArray())!;
        Assert.True(protectedTask["protectionEnabled"]!.GetValue<bool>());
        Assert.True((await plane.EcsAsync("get-task-protection", "--cluster", cluster, "--tasks", guarded)).Json["protectedTasks"]![0]!["protectionEnabled"]!.GetValue<bool>());
        _ = (await plane.EcsAsync("update-service", "--cluster", cluster, "--service", "web", "--desired-count", "1")).Json;
        await WaitForAsync(cluster, s => s["runningCount"]!.GetValue<int>() == 1, TimeSpan.FromSeconds(90));
        Assert.Equal([guarded], await plane.ListTaskArnsAsync(cluster, "web"));

        _ = (await plane.AwsAsync(["cloudwatch", "delete-alarms", "--alarm-names", $"{cluster}-backlog"])).Json;
        _ = (await plane.EcsAsync("delete-service", "--cluster", cluster, "--service", "web", "--force")).Json;
    }

    private async Task WaitForAsync(string cluster, Func<JsonNode, bool> ready, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        JsonNode service;
        do
        {
            service = await plane.DescribeServiceAsync(cluster, "web");
            if (ready(service)) return;
            await Task.Delay(1000);
        }
        while (DateTime.UtcNow < deadline);
        var notable = string.Join('\n', plane.Log.Split('\n').Where(l => !l.Contains("DescribeServices", StringComparison.Ordinal)
            && (l.Contains("warn", StringComparison.Ordinal) || l.Contains("fail", StringComparison.Ordinal) || l.Contains("larm", StringComparison.Ordinal) || l.Contains("Scal", StringComparison.Ordinal))).TakeLast(60));
        Assert.Fail($"the service did not get where expected: {service.ToJsonString()}\n{notable}");
    }
}
