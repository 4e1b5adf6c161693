using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Serverless.Functions.Standalone;

namespace Serverless.Functions.Tests;

public sealed class TimerScheduleTests
{
    private static readonly DateTimeOffset Noon = new(2026, 3, 14, 12, 0, 10, TimeSpan.Zero);

    private static DateTimeOffset? Next(string schedule, DateTimeOffset after) =>
        TimerSchedule.Parse(schedule).GetNextOccurrence(after, TimeZoneInfo.Utc);

    [Theory]
    [InlineData("*/30 * * * * *", "2026-03-14T12:00:30Z")]
    [InlineData("0 */5 * * * *", "2026-03-14T12:05:00Z")]
    [InlineData("15 0 13 * * *", "2026-03-14T13:00:15Z")]
    [InlineData("0 0 0 * * Sun", "2026-03-15T00:00:00Z")]
    public void An_NCRONTAB_expression_with_seconds_gives_the_next_occurrence(string schedule, string expected)
        => Assert.Equal(DateTimeOffset.Parse(expected), Next(schedule, Noon));

    [Fact]
    public void A_five_field_cron_expression_is_accepted_too()
        => Assert.Equal(DateTimeOffset.Parse("2026-03-14T12:01:00Z"), Next("* * * * *", Noon));

    [Theory]
    [InlineData("00:00:05", 5)]
    [InlineData("00:01:00", 60)]
    [InlineData("1.00:00:00", 86400)]
    public void A_TimeSpan_schedule_recurs_after_its_interval(string schedule, int seconds)
        => Assert.Equal(Noon.AddSeconds(seconds), Next(schedule, Noon));

    [Fact]
    public void A_setting_placeholder_is_resolved_from_configuration()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Timers:Resync"] = "0 */10 * * * *", ["Interval"] = "00:00:07" })
            .Build();

        Assert.Equal(DateTimeOffset.Parse("2026-03-14T12:10:00Z"),
            TimerSchedule.Resolve("%Timers__Resync%", configuration).GetNextOccurrence(Noon, TimeZoneInfo.Utc));
        Assert.Equal(Noon.AddSeconds(7), TimerSchedule.Resolve("%Interval%", configuration).GetNextOccurrence(Noon, TimeZoneInfo.Utc));
    }

    [Fact]
    public void A_placeholder_for_a_missing_setting_names_the_setting()
    {
        var error = Assert.Throws<InvalidOperationException>(
            () => TimerSchedule.Resolve("%NoSuchSchedule%", new ConfigurationBuilder().Build()));

        Assert.Contains("NoSuchSchedule", error.Message);
    }

    [Theory]
    [InlineData("every five minutes")]
    [InlineData("* * * *")]
    [InlineData("61 * * * * *")]
    [InlineData("00:00:00")]
    public void A_malformed_schedule_is_refused(string schedule)
        => Assert.Throws<FormatException>(() => TimerSchedule.Parse(schedule));
}

public sealed class TimerTriggerSchedulerTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 14, 12, 0, 10, TimeSpan.Zero);

    private readonly FakeTimeProvider _time = new(Start);
    private readonly List<TimerInfo> _runs = [];
    private readonly ListLogger _logger = new();

    private TimerTriggerScheduler Scheduler(string schedule, bool runOnStartup, Func<TimerInfo, Task>? body = null)
        => new("Tick", TimerSchedule.Parse(schedule), runOnStartup, async (timer, _) =>
        {
            lock (_runs) _runs.Add(timer);
            if (body is not null) await body(timer);
        }, _time, TimeZoneInfo.Utc, _logger);

    private int Runs
    {
        get
        {
            lock (_runs) return _runs.Count;
        }
    }

    private async Task AdvanceToNextOccurrenceAsync(TimerTriggerScheduler scheduler, DateTimeOffset expected)
    {
        await Eventually.TrueAsync(() => scheduler.NextOccurrence == expected, $"the scheduler to wait for {expected:T}");
        _time.Advance(expected - _time.GetUtcNow());
    }

    [Fact]
    public async Task Each_occurrence_runs_the_function_with_its_schedule_status()
    {
        var scheduler = Scheduler("*/30 * * * * *", runOnStartup: false);
        using var stop = new CancellationTokenSource();
        var running = scheduler.RunAsync(stop.Token);

        await AdvanceToNextOccurrenceAsync(scheduler, Start.AddSeconds(20));
        await Eventually.TrueAsync(() => Runs == 1, "the first run");
        await AdvanceToNextOccurrenceAsync(scheduler, Start.AddSeconds(50));
        await Eventually.TrueAsync(() => Runs == 2, "the second run");
        await stop.CancelAsync();
        await running;

        Assert.False(_runs[0].IsPastDue);
        Assert.Equal(DateTime.MinValue, _runs[0].ScheduleStatus!.Last);
        Assert.Equal(new DateTime(2026, 3, 14, 12, 1, 0), _runs[0].ScheduleStatus!.Next);
        Assert.Equal(new DateTime(2026, 3, 14, 12, 0, 30), _runs[1].ScheduleStatus!.Last);
        Assert.Equal(new DateTime(2026, 3, 14, 12, 1, 0), _runs[1].ScheduleStatus!.LastUpdated);
    }

    [Fact]
    public async Task RunOnStartup_runs_at_once_and_then_on_schedule()
    {
        var scheduler = Scheduler("00:05:00", runOnStartup: true);
        using var stop = new CancellationTokenSource();
        var running = scheduler.RunAsync(stop.Token);

        await Eventually.TrueAsync(() => Runs == 1, "the startup run");
        await AdvanceToNextOccurrenceAsync(scheduler, Start.AddMinutes(5));
        await Eventually.TrueAsync(() => Runs == 2, "the scheduled run");
        await stop.CancelAsync();
        await running;

        Assert.Equal(Start.UtcDateTime, DateTime.SpecifyKind(_runs[0].ScheduleStatus!.LastUpdated, DateTimeKind.Utc));
        Assert.False(_runs[0].IsPastDue);
    }

    [Fact]
    public async Task A_run_that_outlasts_the_interval_is_never_overlapped_and_missed_occurrences_are_skipped()
    {
        var release = new TaskCompletionSource();
        var concurrent = 0;
        var peak = 0;
        var scheduler = Scheduler("*/10 * * * * *", runOnStartup: false, async _ =>
        {
            peak = Math.Max(peak, Interlocked.Increment(ref concurrent));
            if (Runs == 1) await release.Task;
            Interlocked.Decrement(ref concurrent);
        });
        using var stop = new CancellationTokenSource();
        var running = scheduler.RunAsync(stop.Token);

        await AdvanceToNextOccurrenceAsync(scheduler, Start.AddSeconds(10));
        await Eventually.TrueAsync(() => Runs == 1, "the first run");
        _time.Advance(TimeSpan.FromMinutes(1));       // six occurrences pass while it runs
        release.SetResult();
        var resumed = _time.GetUtcNow();
        await AdvanceToNextOccurrenceAsync(scheduler, resumed.AddSeconds(10));
        await Eventually.TrueAsync(() => Runs == 2, "the next run after the slow one");
        await stop.CancelAsync();
        await running;

        Assert.Equal(1, peak);
        Assert.Equal(2, Runs);
    }

    [Fact]
    public async Task A_run_that_starts_after_a_whole_occurrence_was_missed_is_past_due()
    {
        var scheduler = Scheduler("*/30 * * * * *", runOnStartup: false);
        using var stop = new CancellationTokenSource();
        var running = scheduler.RunAsync(stop.Token);

        await Eventually.TrueAsync(() => scheduler.NextOccurrence == Start.AddSeconds(20), "the scheduler to wait");
        _time.Advance(TimeSpan.FromMinutes(2));       // the machine slept through several occurrences
        await Eventually.TrueAsync(() => Runs == 1, "the late run");
        await stop.CancelAsync();
        await running;

        Assert.True(_runs[0].IsPastDue);
    }

    [Fact]
    public async Task A_failing_run_is_logged_and_the_schedule_goes_on()
    {
        var scheduler = Scheduler("*/30 * * * * *", runOnStartup: false, _ => throw new InvalidOperationException("sweep failed"));
        using var stop = new CancellationTokenSource();
        var running = scheduler.RunAsync(stop.Token);

        await AdvanceToNextOccurrenceAsync(scheduler, Start.AddSeconds(20));
        await AdvanceToNextOccurrenceAsync(scheduler, Start.AddSeconds(50));
        await Eventually.TrueAsync(() => Runs == 2, "both runs");
        await stop.CancelAsync();
        await running;

        Assert.Contains(_logger.At(LogLevel.Error), l => l.Contains("Tick") && l.Contains("sweep failed"));
    }
}
