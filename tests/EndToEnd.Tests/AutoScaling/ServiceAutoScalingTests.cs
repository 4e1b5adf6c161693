using System.Globalization;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.AutoScaling;

/// <summary>
/// A control plane whose alarm period and evaluation cadence are 2 s instead of 60 s, so target
/// tracking's 3-of-3 and 15-of-15 datapoints take seconds. What is measured is real: Docker's stats of
/// a busy-looping container.
/// </summary>
public sealed class ScalingPlaneFixture : ControlPlaneFixture
{
    protected override IReadOnlyDictionary<string, string> ControlPlaneSettings => new Dictionary<string, string>
    {
        ["AutoScaling__MetricPeriodSeconds"] = "2",
        ["AutoScaling__EvaluationSeconds"] = "2",
    };
}

[CollectionDefinition("scaling plane")]
public sealed class ScalingPlaneCollection : ICollectionFixture<ScalingPlaneFixture>;

[Collection("scaling plane")]
public sealed class ServiceAutoScalingTests(ScalingPlaneFixture plane) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => plane.StopWorkersAsync();

    [Fact]
    public async Task A_CPU_bound_service_scales_out_by_itself_and_back_in_when_the_load_stops()
    {
        var cluster = $"as-{Guid.NewGuid():N}"[..20];
        _ = (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json;
        await plane.StartWorkerAsync(cluster, settings: new Dictionary<string, string>
        {
            ["Worker__MetricsSampleSeconds"] = "1",
            ["Worker__MetricsPeriodSeconds"] = "2",
        });
        // Busy until a fixed moment, idle after it: the tasks the scale-out adds find the load already gone.
        // The window leaves room for a loaded machine, where the CLI calls before the first task take a while.
        var busyUntil = DateTimeOffset.UtcNow.AddSeconds(80).ToUnixTimeSeconds();
        var definition = (await plane.EcsAsync("register-task-definition", "--family", "as-busy", "--cpu", "128", "--memory", "64",
                "--container-definitions", $$"""[{"name":"main","image":"local/busybox:latest","entryPoint":["sh","-c"],"command":["trap 'exit 0' TERM; while [ $(date +%s) -lt {{busyUntil}} ]; do :; done; sleep 600 & wait"]}]"""))
            .Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        // No task until the target exists: its minimum of 1 starts the first, so the load meets the policy already in place.
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "web", "--task-definition", definition, "--desired-count", "0")).Json;
        var resource = $"service/{cluster}/web";

        var registered = (await plane.AwsAsync(["application-autoscaling", "register-scalable-target", "--service-namespace", "ecs",
            "--scalable-dimension", "ecs:service:DesiredCount", "--resource-id", resource, "--min-capacity", "1", "--max-capacity", "3"])).Json;
        Assert.StartsWith("arn:aws:application-autoscaling:", registered["ScalableTargetARN"]!.GetValue<string>());
        var policy = (await plane.AwsAsync(["application-autoscaling", "put-scaling-policy", "--service-namespace", "ecs",
            "--scalable-dimension", "ecs:service:DesiredCount", "--resource-id", resource, "--policy-name", "cpu10", "--policy-type", "TargetTrackingScaling",
            "--target-tracking-scaling-policy-configuration",
            """{"TargetValue":10,"PredefinedMetricSpecification":{"PredefinedMetricType":"ECSServiceAverageCPUUtilization"},"ScaleOutCooldown":0,"ScaleInCooldown":0}"""])).Json;
        var alarms = policy["Alarms"]!.AsArray().Select(a => a!["AlarmName"]!.GetValue<string>()).ToList();
        Assert.Contains(alarms, a => a.StartsWith($"TargetTracking-{resource}-AlarmHigh-", StringComparison.Ordinal));
        Assert.Contains(alarms, a => a.StartsWith($"TargetTracking-{resource}-AlarmLow-", StringComparison.Ordinal));

        await WaitForDesiredAsync(cluster, d => d == 1, TimeSpan.FromSeconds(30));
        // One busy task uses up to a core (1024 units) of its 128, far above 10 %: the service scales out
        // in proportion (how far depends on how much CPU the shared machine gives the loop). The target is
        // low because the loop's share is small on a loaded machine: Docker's cgroup weighs all containers
        // together against every busy process of the test run (cgroup v1), so the loop may get a few % of a core.
        var scaledTo = await WaitForDesiredAsync(cluster, d => d >= 2, TimeSpan.FromSeconds(90));
        var activities = (await plane.AwsAsync(["application-autoscaling", "describe-scaling-activities", "--service-namespace", "ecs",
            "--resource-id", resource])).Json["ScalingActivities"]!.AsArray();
        var scaledOut = activities.First(a => a!["Cause"]!.GetValue<string>().Contains("-AlarmHigh-", StringComparison.Ordinal))!;
        Assert.StartsWith("Setting desired count to ", scaledOut["Description"]!.GetValue<string>());
        Assert.Equal("Successful", scaledOut["StatusCode"]!.GetValue<string>());
        var events = (await plane.DescribeServiceAsync(cluster, "web"))["events"]!.AsArray();
        Assert.Contains(events, e => e!["message"]!.GetValue<string>().Contains($"Setting desired count to {scaledTo}.", StringComparison.Ordinal));

        // What the scaler saw, as CloudWatch shows it.
        var start = DateTime.UtcNow.AddMinutes(-5).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var end = DateTime.UtcNow.AddMinutes(1).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var datapoints = (await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS", "--metric-name", "CPUUtilization",
            "--dimensions", "Name=ClusterName,Value=" + cluster, "Name=ServiceName,Value=web", "--start-time", start, "--end-time", end,
            "--period", "60", "--statistics", "Maximum"])).Json["Datapoints"]!.AsArray();
        Assert.Contains(datapoints, d => d!["Maximum"]!.GetValue<double>() > 10);
        Assert.All(datapoints, d => Assert.Equal("Percent", d!["Unit"]!.GetValue<string>()));
        var data = (await plane.AwsAsync(["cloudwatch", "get-metric-data", "--start-time", start, "--end-time", end, "--metric-data-queries",
            $$$"""[{"Id":"cpu","MetricStat":{"Metric":{"Namespace":"AWS/ECS","MetricName":"CPUUtilization","Dimensions":[{"Name":"ClusterName","Value":"{{{cluster}}}"},{"Name":"ServiceName","Value":"web"}]},"Period":60,"Stat":"Maximum"}}]"""])).Json;
        var result = data["MetricDataResults"]![0]!;
        Assert.Equal("Complete", result["StatusCode"]!.GetValue<string>());
        Assert.Contains(result["Values"]!.AsArray(), v => v!.GetValue<double>() > 10);
        Assert.Equal(result["Values"]!.AsArray().Count, result["Timestamps"]!.AsArray().Count);
        // 128 of the worker's 2048 registered units per task: the cluster's reservation is 6.25 % a task.
        var reservation = (await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS", "--metric-name", "CPUReservation",
            "--dimensions", "Name=ClusterName,Value=" + cluster, "--start-time", start, "--end-time", end, "--period", "60", "--statistics", "Minimum"])).Json;
        Assert.Contains(reservation["Datapoints"]!.AsArray(), d => Math.Abs(d!["Minimum"]!.GetValue<double>() - 6.25) < 1e-6);
        var listed = (await plane.AwsAsync(["cloudwatch", "list-metrics", "--namespace", "AWS/ECS", "--dimensions", "Name=ClusterName,Value=" + cluster])).Json["Metrics"]!.AsArray();
        Assert.Contains(listed, m => m!["MetricName"]!.GetValue<string>() == "MemoryUtilization" && m["Dimensions"]!.AsArray().Count == 2);
        Assert.Contains(listed, m => m!["MetricName"]!.GetValue<string>() == "CPUReservation" && m["Dimensions"]!.AsArray().Count == 1);
        var bad = await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS", "--metric-name", "CPUUtilization",
            "--start-time", start, "--end-time", end, "--period", "61", "--statistics", "Average"]);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("InvalidParameterValue", bad.Stderr);
        // A custom metric goes in with put-metric-data and comes back as a statistic set; AWS/ namespaces are AWS's own.
        // Its window is taken now: the calls above can outlast the minute `end` allowed on a loaded machine.
        var put = await plane.AwsAsync(["cloudwatch", "put-metric-data", "--namespace", $"E2E/{cluster}", "--metric-data",
            """[{"MetricName":"Queue","Dimensions":[{"Name":"Stage","Value":"prod"}],"Values":[2,6],"Counts":[1,3],"Unit":"Count"}]"""]);
        Assert.True(put.ExitCode == 0, put.Stderr);
        var customStart = DateTime.UtcNow.AddMinutes(-3).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var customEnd = DateTime.UtcNow.AddMinutes(3).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        var custom = (await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", $"E2E/{cluster}", "--metric-name", "Queue",
            "--dimensions", "Name=Stage,Value=prod", "--start-time", customStart, "--end-time", customEnd, "--period", "360",
            "--statistics", "Sum", "SampleCount", "Maximum"])).Json["Datapoints"]!.AsArray();
        var point = Assert.Single(custom)!;
        Assert.Equal(20.0, point["Sum"]!.GetValue<double>());
        Assert.Equal(4.0, point["SampleCount"]!.GetValue<double>());
        Assert.Equal("Count", point["Unit"]!.GetValue<string>());
        // 400 datums make a body past botocore's 10 KiB compression threshold: it arrives gzipped.
        var many = string.Join(',', Enumerable.Range(0, 400).Select(i => $$"""{"MetricName":"Bulk","Dimensions":[{"Name":"Stage","Value":"prod"}],"Value":{{i}} }"""));
        _ = (await plane.AwsAsync(["cloudwatch", "put-metric-data", "--namespace", $"E2E/{cluster}", "--metric-data", $"[{many}]"])).Json;
        var bulk = (await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", $"E2E/{cluster}", "--metric-name", "Bulk",
            "--dimensions", "Name=Stage,Value=prod", "--start-time", customStart, "--end-time", customEnd, "--period", "360", "--statistics", "SampleCount"])).Json;
        Assert.Equal(400.0, Assert.Single(bulk["Datapoints"]!.AsArray())!["SampleCount"]!.GetValue<double>());
        var reserved = await plane.AwsAsync(["cloudwatch", "put-metric-data", "--namespace", "AWS/ECS", "--metric-name", "CPUUtilization", "--value", "1"]);
        Assert.Contains("InvalidParameterValue", reserved.Stderr);

        // The load ends at busyUntil; 15 datapoints below 9 % later the service is back at its minimum.
        await WaitForDesiredAsync(cluster, d => d == 1, TimeSpan.FromSeconds(120));
        activities = (await plane.AwsAsync(["application-autoscaling", "describe-scaling-activities", "--service-namespace", "ecs",
            "--resource-id", resource])).Json["ScalingActivities"]!.AsArray();
        Assert.Contains("-AlarmLow-", activities[0]!["Cause"]!.GetValue<string>());
        Assert.Equal("Setting desired count to 1.", activities[0]!["Description"]!.GetValue<string>());
        // The policy's alarms as the scaler evaluated them: AlarmLow fired the scale-in, AlarmHigh is back to OK.
        var described = (await plane.AwsAsync(["cloudwatch", "describe-alarms", "--alarm-name-prefix", $"TargetTracking-{resource}-"])).Json["MetricAlarms"]!.AsArray();
        Assert.Equal(2, described.Count);
        var low = described.Single(a => a!["AlarmName"]!.GetValue<string>().Contains("-AlarmLow-", StringComparison.Ordinal))!;
        var high = described.Single(a => a!["AlarmName"]!.GetValue<string>().Contains("-AlarmHigh-", StringComparison.Ordinal))!;
        Assert.Equal(("ALARM", 9.0, "LessThanThreshold"), (low["StateValue"]!.GetValue<string>(), low["Threshold"]!.GetValue<double>(), low["ComparisonOperator"]!.GetValue<string>()));
        Assert.Equal(("OK", 10.0, 3), (high["StateValue"]!.GetValue<string>(), high["Threshold"]!.GetValue<double>(), high["EvaluationPeriods"]!.GetValue<int>()));
        Assert.Equal(policy["PolicyARN"]!.GetValue<string>(), high["AlarmActions"]![0]!.GetValue<string>());
        var refusedDelete = await plane.AwsAsync(["cloudwatch", "delete-alarms", "--alarm-names", high["AlarmName"]!.GetValue<string>()]);
        Assert.Contains("InvalidParameterValue", refusedDelete.Stderr);

        // A scheduled action and a tag through the CLI's own serialisation (timestamp, shorthand, map).
        _ = (await plane.AwsAsync(["application-autoscaling", "put-scheduled-action", "--service-namespace", "ecs", "--scalable-dimension", "ecs:service:DesiredCount",
            "--resource-id", resource, "--scheduled-action-name", "weekday-mornings", "--schedule", "cron(0 8 ? * MON-FRI *)", "--timezone", "Europe/Paris",
            "--start-time", "2030-01-01T00:00:00Z", "--scalable-target-action", "MinCapacity=2,MaxCapacity=3"])).Json;
        var scheduled = Assert.Single((await plane.AwsAsync(["application-autoscaling", "describe-scheduled-actions", "--service-namespace", "ecs",
            "--resource-id", resource])).Json["ScheduledActions"]!.AsArray())!;
        Assert.Equal("Europe/Paris", scheduled["Timezone"]!.GetValue<string>());
        Assert.Equal(3, scheduled["ScalableTargetAction"]!["MaxCapacity"]!.GetValue<int>());
        var targetArn = registered["ScalableTargetARN"]!.GetValue<string>();
        _ = (await plane.AwsAsync(["application-autoscaling", "tag-resource", "--resource-arn", targetArn, "--tags", "team=web"])).Json;
        var tags = (await plane.AwsAsync(["application-autoscaling", "list-tags-for-resource", "--resource-arn", targetArn])).Json["Tags"]!;
        Assert.Equal("web", tags["team"]!.GetValue<string>());

        _ = (await plane.AwsAsync(["application-autoscaling", "deregister-scalable-target", "--service-namespace", "ecs",
            "--scalable-dimension", "ecs:service:DesiredCount", "--resource-id", resource])).Json;
        var policies = (await plane.AwsAsync(["application-autoscaling", "describe-scaling-policies", "--service-namespace", "ecs", "--resource-id", resource])).Json;
        Assert.Empty(policies["ScalingPolicies"]!.AsArray());
        _ = (await plane.EcsAsync("delete-service", "--cluster", cluster, "--service", "web", "--force")).Json;
    }

    private async Task<int> WaitForDesiredAsync(string cluster, Func<int, bool> desired, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        JsonNode service;
        do
        {
            service = await plane.DescribeServiceAsync(cluster, "web");
            if (service["desiredCount"]!.GetValue<int>() is var count && desired(count)) return count;
            await Task.Delay(1000);
        }
        while (DateTime.UtcNow < deadline);
        var notable = string.Join('\n', plane.Log.Split('\n').Where(l => !l.Contains("DescribeServices", StringComparison.Ordinal) && (l.Contains("warn", StringComparison.Ordinal) || l.Contains("fail", StringComparison.Ordinal) || l.Contains("Scal", StringComparison.Ordinal) || l.Contains("etric", StringComparison.Ordinal))).TakeLast(60));
        Assert.Fail($"desiredCount did not get where expected: {service.ToJsonString()}\n{notable}\n{plane.WorkerLogTails()}");
        return -1;
    }
}
