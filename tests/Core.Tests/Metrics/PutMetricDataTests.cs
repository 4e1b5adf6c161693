using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Api;
using Serverless.Core.Metrics;
using Serverless.Core.Storage;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Metrics;

[Collection(AzuriteCollection.Name)]
public sealed class PutMetricDataTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
    private readonly ActionRegistry _registry;

    public PutMetricDataTests(AzuriteFixture azurite)
    {
        var storage = new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("pmd") });
        _registry = new ActionRegistry([new CloudWatchActions(new MetricStore(storage), new CustomMetricStore(storage), new MetricReader(new MetricStore(storage), new CustomMetricStore(storage)), new MetricsOptions(), new FakeTimeProvider(Now))]);
    }

    private Task<JsonObject> CallAsync(string action, string json)
    {
        Assert.True(_registry.TryGet($"{CloudWatchActions.Model.TargetPrefix}.{action}", out var handler));
        return handler(JsonNode.Parse(json)!.AsObject(), new RequestContext(null!), CancellationToken.None);
    }

    private static double At(int minute, int second = 0) => Now.AddMinutes(minute).AddSeconds(second).ToUnixTimeSeconds();

    [Fact]
    public async Task Values_counts_and_statistic_sets_are_one_metric_per_dimension_set_read_back_per_period()
    {
        await CallAsync("PutMetricData", $$"""
            {"Namespace":"MyApp/Web","MetricData":[
              {"MetricName":"Latency","Dimensions":[{"Name":"Stage","Value":"prod"},{"Name":"Api","Value":"a/b#?"}],"Timestamp":{{At(-5, 10)}},"Value":10,"Unit":"Milliseconds"},
              {"MetricName":"Latency","Dimensions":[{"Name":"Api","Value":"a/b#?"},{"Name":"Stage","Value":"prod"}],"Timestamp":{{At(-5, 20)}},"Values":[1,100],"Counts":[3,1],"Unit":"Milliseconds"},
              {"MetricName":"Latency","Dimensions":[{"Name":"Api","Value":"a/b#?"},{"Name":"Stage","Value":"prod"}],"Timestamp":{{At(-4)}},"StatisticValues":{"SampleCount":2,"Sum":8,"Minimum":3,"Maximum":5},"Unit":"Milliseconds"},
              {"MetricName":"Latency","Dimensions":[{"Name":"Stage","Value":"test"}],"Timestamp":{{At(-4)}},"Value":1000}]}
            """);

        var stats = await CallAsync("GetMetricStatistics", $$"""
            {"Namespace":"MyApp/Web","MetricName":"Latency","Dimensions":[{"Name":"Stage","Value":"prod"},{"Name":"Api","Value":"a/b#?"}],
             "StartTime":{{At(-10)}},"EndTime":{{At(0)}},"Period":60,"Statistics":["SampleCount","Sum","Average","Minimum","Maximum"]}
            """);
        var points = stats["Datapoints"]!.AsArray().Select(p => p!.AsObject()).ToList();
        Assert.Equal(2, points.Count);
        var first = points[0];
        Assert.Equal(5.0, first["SampleCount"]!.GetValue<double>());
        Assert.Equal(113.0, first["Sum"]!.GetValue<double>());
        Assert.Equal(113.0 / 5, first["Average"]!.GetValue<double>(), 9);
        Assert.Equal(1.0, first["Minimum"]!.GetValue<double>());
        Assert.Equal(100.0, first["Maximum"]!.GetValue<double>());
        Assert.Equal("Milliseconds", first["Unit"]!.GetValue<string>());
        Assert.Equal(4.0, points[1]["Average"]!.GetValue<double>());

        var other = await CallAsync("GetMetricStatistics", $$"""
            {"Namespace":"MyApp/Web","MetricName":"Latency","Dimensions":[{"Name":"Stage","Value":"prod"},{"Name":"Api","Value":"a/b#?"}],
             "StartTime":{{At(-10)}},"EndTime":{{At(0)}},"Period":60,"Statistics":["Sum"],"Unit":"Seconds"}
            """);
        Assert.Empty(other["Datapoints"]!.AsArray());

        var data = await CallAsync("GetMetricData", $$"""
            {"StartTime":{{At(-10)}},"EndTime":{{At(0)}},"MetricDataQueries":[{"Id":"m1","MetricStat":{"Metric":{"Namespace":"MyApp/Web","MetricName":"Latency",
              "Dimensions":[{"Name":"Stage","Value":"test"}]},"Period":300,"Stat":"Maximum"} }]}
            """);
        Assert.Equal([1000.0], data["MetricDataResults"]![0]!["Values"]!.AsArray().Select(v => v!.GetValue<double>()));

        var listed = await CallAsync("ListMetrics", """{"Namespace":"MyApp/Web","Dimensions":[{"Name":"Api"}]}""");
        var metric = Assert.Single(listed["Metrics"]!.AsArray())!;
        Assert.Equal("Latency", metric["MetricName"]!.GetValue<string>());
        Assert.Equal(["Api", "Stage"], metric["Dimensions"]!.AsArray().Select(d => d!["Name"]!.GetValue<string>()));
        Assert.Equal(2, (await CallAsync("ListMetrics", """{"MetricName":"Latency"}"""))["Metrics"]!.AsArray().Count);
    }

    [Fact]
    public async Task A_thousand_datums_are_accepted_and_one_more_is_refused()
    {
        string Datums(int n) => string.Join(',', Enumerable.Range(0, n).Select(i => $$"""{"MetricName":"M{{i % 3}}","Timestamp":{{At(-1)}},"Value":{{i}} }"""));
        await CallAsync("PutMetricData", $$"""{"Namespace":"Bulk","MetricData":[{{Datums(PutMetricData.MaxDatums)}}]}""");
        var sum = await CallAsync("GetMetricStatistics", $$"""{"Namespace":"Bulk","MetricName":"M0","StartTime":{{At(-10)}},"EndTime":{{At(0)}},"Period":60,"Statistics":["SampleCount"]}""");
        Assert.Equal(334.0, sum["Datapoints"]![0]!["SampleCount"]!.GetValue<double>());

        var e = await Assert.ThrowsAsync<CloudWatchException>(() => CallAsync("PutMetricData", $$"""{"Namespace":"Bulk","MetricData":[{{Datums(PutMetricData.MaxDatums + 1)}}]}"""));
        Assert.Equal("InvalidParameterValue", e.QueryCode);
    }

    [Theory]
    [InlineData("AWS/ECS", """{"MetricName":"M","Value":1}""", "InvalidParameterValue")]
    [InlineData("App", """{"MetricName":"M","Value":1,"StatisticValues":{"SampleCount":1,"Sum":1,"Minimum":1,"Maximum":1}}""", "InvalidParameterCombination")]
    [InlineData("App", """{"MetricName":"M","Value":1,"Values":[1]}""", "InvalidParameterCombination")]
    [InlineData("App", """{"MetricName":"M"}""", "MissingParameter")]
    [InlineData("App", """{"MetricName":"M","Values":[1,2],"Counts":[1]}""", "InvalidParameterValue")]
    [InlineData("App", """{"MetricName":"M","Value":1e200}""", "InvalidParameterValue")]
    [InlineData("App", """{"MetricName":"M","StatisticValues":{"SampleCount":0,"Sum":1,"Minimum":1,"Maximum":1}}""", "InvalidParameterValue")]
    [InlineData("App", """{"MetricName":"M","StatisticValues":{"SampleCount":2,"Sum":1,"Minimum":3,"Maximum":1}}""", "InvalidParameterValue")]
    [InlineData("App", """{"MetricName":"M","Value":1,"Timestamp":1700000000}""", "InvalidParameterValue")]
    [InlineData("App", """{"MetricName":"M","Value":1,"Dimensions":[{"Name":"A","Value":"1"},{"Name":"A","Value":"2"}]}""", "InvalidParameterValue")]
    public async Task Bad_datums_get_the_models_errors_and_nothing_is_written(string ns, string datum, string code)
    {
        var e = await Assert.ThrowsAsync<CloudWatchException>(() => CallAsync("PutMetricData", $$"""{"Namespace":"{{ns}}","MetricData":[{"MetricName":"M","Value":5},{{datum}}]}"""));
        Assert.Equal(code, e.QueryCode);
        var listed = await CallAsync("ListMetrics", $$"""{"Namespace":"{{ns}}"}""");
        Assert.Empty(listed["Metrics"]!.AsArray());
    }

    [Fact]
    public void Values_beyond_150_are_refused()
        => Assert.Equal("InvalidParameterValue", Assert.Throws<CloudWatchException>(() => PutMetricData.Read(JsonNode.Parse(
            $$"""{"Namespace":"App","MetricData":[{"MetricName":"M","Values":[{{string.Join(',', Enumerable.Range(0, 151))}}]}]}""")!.AsObject(), Now)).QueryCode);
}
