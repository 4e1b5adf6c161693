using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Alarms;
using Serverless.Core.AutoScaling;
using Serverless.Core.Metrics;
using Serverless.Core.Storage;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Alarms;

/// <summary>With no alarms, the evaluation reads the alarm table every 5 minutes, and at once after a local put.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AlarmIdleReadTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));
    private readonly EcsOptions _options = new() { Region = "us-east-1", AccountId = "000000000000", StoragePrefix = TestNames.Unique("AlarmIdle") };

    private MetricAlarmStore NewStore() => new(new StorageClients(azurite.ConnectionString, _options));

    /// <summary>An alarm that is in ALARM as soon as it is evaluated: no data, missing data breaching.</summary>
    private MetricAlarmRecord Breaching(string name) => new()
    {
        Name = name,
        Arn = $"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}",
        Namespace = "Test/Idle",
        MetricName = "Nothing",
        Statistic = "Average",
        Period = 60,
        EvaluationPeriods = 1,
        DatapointsToAlarm = 1,
        Threshold = 1,
        ComparisonOperator = "GreaterThanThreshold",
        TreatMissingData = MetricAlarmEvaluation.Breaching,
    };

    [Fact]
    public async Task An_alarm_put_elsewhere_is_evaluated_within_the_idle_interval_and_one_put_here_at_the_next_evaluation()
    {
        var here = NewStore();
        var elsewhere = NewStore();
        var storage = new StorageClients(azurite.ConnectionString, _options);
        var evaluator = new MetricAlarmEvaluator(here, new MetricReader(new MetricStore(storage), new CustomMetricStore(storage)), _time,
            NullLogger<MetricAlarmEvaluator>.Instance);
        Assert.Empty(await evaluator.EvaluateAllAsync(_token));

        // Put through another control plane: not read until the idle interval has passed.
        await elsewhere.SaveAsync(Breaching("elsewhere"), null, _token);
        _time.Advance(MetricAlarmEvaluator.NoAlarmsReadInterval - TimeSpan.FromSeconds(1));
        await evaluator.EvaluateAllAsync(_token);
        Assert.Equal(AlarmState.InsufficientData, (await here.FindAsync("elsewhere", _token))!.State);
        _time.Advance(TimeSpan.FromSeconds(1));
        await evaluator.EvaluateAllAsync(_token);
        Assert.Equal(AlarmState.Alarm, (await here.FindAsync("elsewhere", _token))!.State);

        // None again (deleted here), then one put here: evaluated at the next evaluation, the clock unmoved.
        await here.DeleteAsync(["elsewhere"], _token);
        await evaluator.EvaluateAllAsync(_token);
        await here.SaveAsync(Breaching("here"), null, _token);
        await evaluator.EvaluateAllAsync(_token);
        Assert.Equal(AlarmState.Alarm, (await here.FindAsync("here", _token))!.State);
    }
}
