using System.Globalization;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.Metrics;

/// <summary>
/// A busy service's CPU, measured by the worker from Docker's stats, read back with the real
/// <c>aws cloudwatch</c> (botocore 1.43 speaks Smithy RPC v2 CBOR to it). The worker's sample and
/// period are shortened by its settings; the measurement itself is real.
/// </summary>
[Collection("control plane")]
public sealed class CloudWatchMetricsTests(ControlPlaneFixture plane) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => plane.StopWorkersAsync();

    [Fact]
    public async Task A_busy_service_shows_its_CPU_in_get_metric_statistics_get_metric_data_and_list_metrics()
    {
        var cluster = $"cw-{Guid.NewGuid():N}"[..20];
        _ = (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json;
        await plane.StartWorkerAsync(cluster, settings: new Dictionary<string, string>
        {
            ["Worker__MetricsSampleSeconds"] = "1",
            ["Worker__MetricsPeriodSeconds"] = "5",
        });
        // 256 CPU units reserved; the busy loop uses up to a whole core (1024 units).
        var definition = (await plane.EcsAsync("register-task-definition", "--family", "cw-busy", "--cpu", "256", "--memory", "64",
                "--container-definitions", """[{"name":"main","image":"local/busybox:latest","entryPoint":["sh","-c"],"command":["trap 'exit 0' TERM; while :; do :; done"]}]"""))
            .Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "busy", "--task-definition", definition, "--desired-count", "1")).Json;

        var start = DateTime.UtcNow.AddMinutes(-5).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        string End() => DateTime.UtcNow.AddMinutes(2).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        string[] service = ["Name=ClusterName,Value=" + cluster, "Name=ServiceName,Value=busy"];

        JsonArray datapoints = [];
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            datapoints = (await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS", "--metric-name", "CPUUtilization",
                "--dimensions", .. service, "--start-time", start, "--end-time", End(), "--period", "60",
                "--statistics", "Average", "Maximum", "SampleCount"])).Json["Datapoints"]!.AsArray();
            if (datapoints.Any(d => d!["Average"]!.GetValue<double>() > 50)) break;
            await Task.Delay(2000);
        }
        var busiest = datapoints.MaxBy(d => d!["Average"]!.GetValue<double>())!;
        Assert.True(busiest["Average"]!.GetValue<double>() > 50, $"no busy datapoint: {datapoints.ToJsonString()}");
        Assert.Equal("Percent", busiest["Unit"]!.GetValue<string>());
        Assert.True(busiest["SampleCount"]!.GetValue<double>() >= 1);
        Assert.True(busiest["Maximum"]!.GetValue<double>() >= busiest["Average"]!.GetValue<double>() - 1e-9);

        var data = (await plane.AwsAsync(["cloudwatch", "get-metric-data", "--start-time", start, "--end-time", End(), "--metric-data-queries",
            $$$"""[{"Id":"cpu","MetricStat":{"Metric":{"Namespace":"AWS/ECS","MetricName":"CPUUtilization","Dimensions":[{"Name":"ClusterName","Value":"{{{cluster}}}"},{"Name":"ServiceName","Value":"busy"}]},"Period":60,"Stat":"Average"}}]"""])).Json;
        var result = data["MetricDataResults"]![0]!;
        Assert.Equal("Complete", result["StatusCode"]!.GetValue<string>());
        Assert.Contains(result["Values"]!.AsArray(), v => v!.GetValue<double>() > 50);
        Assert.Equal(result["Values"]!.AsArray().Count, result["Timestamps"]!.AsArray().Count);

        var clusterCpu = (await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS", "--metric-name", "CPUReservation",
            "--dimensions", "Name=ClusterName,Value=" + cluster, "--start-time", start, "--end-time", End(), "--period", "60", "--statistics", "Maximum"])).Json;
        // 256 of the worker's 2048 registered units are reserved.
        Assert.Contains(clusterCpu["Datapoints"]!.AsArray(), d => Math.Abs(d!["Maximum"]!.GetValue<double>() - 12.5) < 1e-6);

        var listed = (await plane.AwsAsync(["cloudwatch", "list-metrics", "--namespace", "AWS/ECS", "--dimensions", "Name=ClusterName,Value=" + cluster])).Json["Metrics"]!.AsArray();
        Assert.Contains(listed, m => m!["MetricName"]!.GetValue<string>() == "MemoryUtilization" && m["Dimensions"]!.AsArray().Count == 2);
        Assert.Contains(listed, m => m!["MetricName"]!.GetValue<string>() == "CPUReservation" && m["Dimensions"]!.AsArray().Count == 1);

        // Bad input gets CloudWatch's error, through the CBOR error shape.
        var bad = await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS", "--metric-name", "CPUUtilization",
            "--start-time", start, "--end-time", End(), "--period", "61", "--statistics", "Average"]);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("InvalidParameterValue", bad.Stderr);

        _ = (await plane.EcsAsync("delete-service", "--cluster", cluster, "--service", "busy", "--force")).Json;
    }
}
