using Serverless.Core.AutoScaling;

namespace Serverless.Core.Tests.AutoScaling;

/// <summary>Scheduled actions' expressions: the next run after a time, in a time zone, across daylight saving.</summary>
public sealed class ScheduleTests
{
    private static readonly DateTimeOffset Created = new(2026, 12, 2, 10, 0, 0, TimeSpan.Zero);

    private static DateTimeOffset Utc(int y, int mo, int d, int h, int mi) => new(y, mo, d, h, mi, 0, TimeSpan.Zero);

    private static DateTimeOffset? Next(string expression, DateTimeOffset after, string? zone = null, DateTimeOffset? start = null, DateTimeOffset? end = null)
        => Schedule.Parse(expression, zone, start, end, Created).NextAfter(after);

    /// <summary>The first <paramref name="count"/> runs after <paramref name="after"/>.</summary>
    private static List<DateTimeOffset> Runs(string expression, DateTimeOffset after, int count, string? zone = null)
    {
        var schedule = Schedule.Parse(expression, zone, null, null, Created);
        var runs = new List<DateTimeOffset>();
        for (var t = schedule.NextAfter(after); t is { } run && runs.Count < count; t = schedule.NextAfter(run)) runs.Add(run);
        return runs;
    }

    [Fact]
    public void At_runs_once_at_its_time_in_UTC_or_in_its_time_zone()
    {
        Assert.Equal(Utc(2026, 12, 24, 18, 0), Next("at(2026-12-24T18:00:00)", Created));
        Assert.Null(Next("at(2026-12-24T18:00:00)", Utc(2026, 12, 24, 18, 0)));
        Assert.Equal(Utc(2026, 12, 24, 23, 0), Next("at(2026-12-24T18:00:00)", Created, "America/New_York"));     // EST, UTC-5
        Assert.Equal(Utc(2026, 7, 4, 16, 0), Next("at(2026-07-04T12:00:00)", Utc(2026, 1, 1, 0, 0), "America/New_York")); // EDT, UTC-4
        Assert.Null(Next("at(2025-01-01T00:00:00)", Created));
    }

    [Fact]
    public void At_in_a_daylight_saving_gap_runs_at_the_transition_and_in_a_repeated_hour_at_its_first_occurrence()
    {
        // 2027-03-14 02:00 EST becomes 03:00 EDT: 02:30 does not exist.
        Assert.Equal(Utc(2027, 3, 14, 7, 0), Next("at(2027-03-14T02:30:00)", Created, "America/New_York"));
        // 2027-11-07 02:00 EDT becomes 01:00 EST: 01:30 happens twice, the first time at 05:30 UTC.
        Assert.Equal(Utc(2027, 11, 7, 5, 30), Next("at(2027-11-07T01:30:00)", Created, "America/New_York"));
    }

    [Fact]
    public void Rate_counts_from_the_start_time_or_from_creation()
    {
        Assert.Equal([Utc(2026, 12, 2, 10, 5), Utc(2026, 12, 2, 10, 10), Utc(2026, 12, 2, 10, 15)], Runs("rate(5 minutes)", Created, 3));
        Assert.Equal(Utc(2026, 12, 2, 13, 0), Next("rate(1 hour)", Utc(2026, 12, 2, 12, 30)));
        Assert.Equal(Utc(2026, 12, 4, 10, 0), Next("rate(2 days)", Utc(2026, 12, 3, 0, 0)));
        var start = Utc(2026, 12, 10, 8, 0);
        Assert.Equal(start, Next("rate(1 day)", Created, start: start));
        Assert.Equal(Utc(2026, 12, 11, 8, 0), Next("rate(1 day)", start, start: start));
    }

    [Fact]
    public void Start_and_end_times_bound_every_kind_of_schedule()
    {
        var start = Utc(2027, 1, 1, 0, 0);
        Assert.Equal(Utc(2027, 1, 1, 9, 0), Next("cron(0 9 * * ? *)", Created, start: start));
        Assert.Equal(Utc(2026, 12, 3, 9, 0), Next("cron(0 9 * * ? *)", Created, end: Utc(2026, 12, 3, 9, 0)));
        Assert.Null(Next("cron(0 9 * * ? *)", Utc(2026, 12, 3, 9, 0), end: Utc(2026, 12, 4, 8, 59)));
        Assert.Null(Next("rate(1 day)", Created, end: Utc(2026, 12, 3, 9, 0)));
        Assert.Null(Next("at(2026-12-24T18:00:00)", Created, end: Utc(2026, 12, 24, 17, 0)));
    }

    [Theory]
    [InlineData("cron(0 9 * * ? *)", "2026-12-02T10:00Z", "2026-12-03T09:00Z")]
    [InlineData("cron(15 10 ? * 6L 2027)", "2026-12-02T10:00Z", "2027-01-29T10:15Z")]           // last Friday of the month (6 = FRI)
    [InlineData("cron(0 18 ? * MON-FRI *)", "2026-12-04T18:00Z", "2026-12-07T18:00Z")]          // Friday evening → Monday
    [InlineData("cron(0 8 ? * 2-6 *)", "2026-12-05T00:00Z", "2026-12-07T08:00Z")]               // 2-6 = MON-FRI
    [InlineData("cron(0 8 ? * 1 *)", "2026-12-02T00:00Z", "2026-12-06T08:00Z")]                 // 1 = SUN
    [InlineData("cron(0 8 ? * 7 *)", "2026-12-02T00:00Z", "2026-12-05T08:00Z")]                 // 7 = SAT
    [InlineData("cron(0 8 ? * L *)", "2026-12-02T00:00Z", "2026-12-05T08:00Z")]                 // L alone = SAT
    [InlineData("cron(0 12 ? * 2#1 *)", "2026-12-02T00:00Z", "2026-12-07T12:00Z")]              // first Monday
    [InlineData("cron(0 12 ? * 2#1 *)", "2026-12-07T12:00Z", "2027-01-04T12:00Z")]
    [InlineData("cron(0 12 L * ? *)", "2026-12-02T00:00Z", "2026-12-31T12:00Z")]                // last day of the month
    [InlineData("cron(0 12 15W * ? *)", "2027-05-01T00:00Z", "2027-05-14T12:00Z")]              // 15 May 2027 is a Saturday
    [InlineData("cron(*/20 * * * ? *)", "2026-12-02T10:05Z", "2026-12-02T10:20Z")]
    [InlineData("cron(0 0 1 1 ? 2028-2030/2)", "2026-12-02T00:00Z", "2028-01-01T00:00Z")]
    [InlineData("cron(0 0 1 1 ? 2028-2030/2)", "2028-01-01T00:00Z", "2030-01-01T00:00Z")]
    [InlineData("cron(30 6 1 JAN,JUL ? 2027,2029)", "2027-07-02T00:00Z", "2029-01-01T06:30Z")]
    public void Cron_has_AWS_six_fields(string expression, string after, string expected)
        => Assert.Equal(DateTimeOffset.Parse(expected), Next(expression, DateTimeOffset.Parse(after)));

    [Theory]
    [InlineData("cron(0 0 1 1 ? 2026)", "2026-12-02T00:00Z")]
    [InlineData("cron(0 0 30 2 ? *)", "2026-12-02T00:00Z")]
    public void A_cron_that_never_runs_again_has_no_next_run(string expression, string after)
        => Assert.Null(Next(expression, DateTimeOffset.Parse(after)));

    [Fact]
    public void Cron_in_a_time_zone_keeps_its_local_time_across_daylight_saving()
    {
        // 09:00 in New York: 14:00 UTC in winter, 13:00 UTC in summer.
        Assert.Equal([Utc(2027, 3, 13, 14, 0), Utc(2027, 3, 14, 13, 0), Utc(2027, 3, 15, 13, 0)],
            Runs("cron(0 9 * * ? *)", Utc(2027, 3, 13, 0, 0), 3, "America/New_York"));
        Assert.Equal([Utc(2027, 11, 6, 13, 0), Utc(2027, 11, 7, 14, 0)], Runs("cron(0 9 * * ? *)", Utc(2027, 11, 6, 0, 0), 2, "America/New_York"));
        // Europe/Paris goes to summer time on 2027-03-28 at 02:00 local: 02:30 that day runs at 03:00 CEST (01:00 UTC).
        Assert.Equal([Utc(2027, 3, 27, 1, 30), Utc(2027, 3, 28, 1, 0), Utc(2027, 3, 29, 0, 30)],
            Runs("cron(30 2 * * ? *)", Utc(2027, 3, 27, 0, 0), 3, "Europe/Paris"));
        // It goes back on 2027-10-31 at 03:00 local: 02:30 happens twice and runs once, the first time (00:30 UTC).
        Assert.Equal([Utc(2027, 10, 30, 0, 30), Utc(2027, 10, 31, 0, 30), Utc(2027, 11, 1, 1, 30)],
            Runs("cron(30 2 * * ? *)", Utc(2027, 10, 30, 0, 0), 3, "Europe/Paris"));
        // A zone without daylight saving: Asia/Tokyo is always UTC+9.
        Assert.Equal(Utc(2026, 12, 2, 23, 0), Next("cron(0 8 * * ? *)", Created, "Asia/Tokyo"));
    }

    [Fact]
    public void An_hourly_cron_in_a_daylight_saving_zone_runs_every_real_hour_of_a_whole_year_exactly_once()
    {
        // The spring-forward hour has no local 02:00 and the fall-back hour has two local 01:00s: either way, once an hour.
        var runs = Runs("cron(0 * * * ? *)", Utc(2026, 12, 31, 23, 0), 9000, "America/New_York")
            .TakeWhile(r => r < Utc(2027, 12, 31, 23, 0)).ToList();
        Assert.Equal(Enumerable.Range(1, 364 * 24 + 23).Select(h => Utc(2026, 12, 31, 23, 0).AddHours(h)), runs);
    }

    [Theory]
    [InlineData("cron(0 9 * * *)", null)]                      // five fields
    [InlineData("cron(0 9 * * * *)", null)]                    // neither day field is ?
    [InlineData("cron(0 9 ? * ? *)", null)]                    // both are
    [InlineData("cron(61 9 * * ? *)", null)]
    [InlineData("cron(0 9 ? * 8 *)", null)]                    // days of week are 1-7
    [InlineData("cron(0 9 * * ? 1969)", null)]
    [InlineData("cron(0 9 * * ? 2200)", null)]
    [InlineData("rate(0 minutes)", null)]
    [InlineData("rate(1 minutes)", null)]
    [InlineData("rate(5 minute)", null)]
    [InlineData("rate(5 weeks)", null)]
    [InlineData("at(2026-13-01T00:00:00)", null)]
    [InlineData("at(2026-12-01 00:00:00)", null)]
    [InlineData("every day", null)]
    [InlineData("cron(0 9 * * ? *)", "Mars/Olympus_Mons")]
    public void Bad_expressions_and_time_zones_are_ValidationException(string expression, string? zone)
    {
        var error = Assert.Throws<AutoScalingException>(() => Schedule.Parse(expression, zone, null, null, Created));
        Assert.Equal("ValidationException", error.ErrorType);
    }

    [Fact]
    public void An_end_time_before_the_start_time_is_ValidationException()
        => Assert.Equal("ValidationException", Assert.Throws<AutoScalingException>(
            () => Schedule.Parse("rate(1 day)", null, Utc(2027, 1, 2, 0, 0), Utc(2027, 1, 1, 0, 0), Created)).ErrorType);
}
