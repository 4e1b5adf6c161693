using System.Globalization;
using Cronos;
using Microsoft.Extensions.Configuration;

namespace Serverless.Functions.Standalone;

/// <summary>
/// A timer trigger's schedule as the host reads it: an NCRONTAB expression with seconds
/// (<c>*/30 * * * * *</c>; five fields are accepted too), or a constant interval (<c>hh:mm:ss</c>).
/// </summary>
public abstract class TimerSchedule
{
    /// <summary>The first occurrence strictly after <paramref name="after"/>; null when there is none.</summary>
    public abstract DateTimeOffset? GetNextOccurrence(DateTimeOffset after, TimeZoneInfo zone);

    /// <summary>Resolves <c>%Setting%</c> placeholders, then parses.</summary>
    /// <exception cref="InvalidOperationException">A placeholder's setting is not set.</exception>
    /// <exception cref="FormatException">The schedule is neither a cron expression nor a positive interval.</exception>
    public static TimerSchedule Resolve(string schedule, IConfiguration configuration)
        => Parse(AppSettingResolver.Resolve(schedule, configuration));

    /// <exception cref="FormatException">The schedule is neither a cron expression nor a positive interval.</exception>
    public static TimerSchedule Parse(string schedule)
    {
        var text = schedule.Trim();
        if (!text.Contains(' ') && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var interval))
        {
            return interval > TimeSpan.Zero
                ? new IntervalSchedule(interval)
                : throw new FormatException($"The timer interval '{schedule}' must be positive.");
        }

        var fields = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        var format = fields switch
        {
            6 => CronFormat.IncludeSeconds,
            5 => CronFormat.Standard,
            _ => throw new FormatException(
                $"The timer schedule '{schedule}' is neither an NCRONTAB expression (6 fields, seconds first) nor a TimeSpan (hh:mm:ss)."),
        };
        try
        {
            return new CronSchedule(CronExpression.Parse(text, format), text);
        }
        catch (CronFormatException e)
        {
            throw new FormatException($"The timer schedule '{schedule}' is not a valid NCRONTAB expression: {e.Message}", e);
        }
    }

    public sealed class CronSchedule(CronExpression expression, string text) : TimerSchedule
    {
        public CronExpression Expression { get; } = expression;

        public override DateTimeOffset? GetNextOccurrence(DateTimeOffset after, TimeZoneInfo zone)
            => Expression.GetNextOccurrence(after, zone, inclusive: false);

        public override string ToString() => text;
    }

    /// <summary>Every <see cref="Interval"/>, counted from the end of the previous run, as the host's constant schedule.</summary>
    public sealed class IntervalSchedule(TimeSpan interval) : TimerSchedule
    {
        public TimeSpan Interval { get; } = interval;

        public override DateTimeOffset? GetNextOccurrence(DateTimeOffset after, TimeZoneInfo zone) => after + Interval;

        public override string ToString() => Interval.ToString("c", CultureInfo.InvariantCulture);
    }
}
