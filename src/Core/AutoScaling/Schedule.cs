using System.Globalization;
using System.Text.RegularExpressions;
using Cronos;

namespace Serverless.Core.AutoScaling;

/// <summary>
/// A scheduled action's schedule, as Application Auto Scaling reads it: <c>at(yyyy-mm-ddThh:mm:ss)</c>
/// (a local time in <see cref="Zone"/>), <c>rate(N minute|minutes|hour|hours|day|days)</c> (every N units from
/// the action's StartTime, or from its creation when it has none) or <c>cron(minutes hours day-of-month month
/// day-of-week year)</c> (AWS's six fields: day-of-week 1-7 is SUN-SAT, one of the day fields is <c>?</c>,
/// <c>L</c>, <c>W</c> and <c>#</c> as AWS documents them), evaluated in <see cref="Zone"/> so it follows daylight
/// saving, within the optional StartTime and EndTime (UTC). A local time skipped by a spring-forward transition
/// runs at the transition; one repeated by a fall-back runs once, at its first occurrence
/// (a cron whose hours are <c>*</c> or a step runs in both, so an hourly schedule runs every real hour, as Cronos does).
/// </summary>
public sealed partial class Schedule
{
    private enum Kind { At, Rate, Cron }

    private readonly Kind _kind;
    private readonly DateTime _at;
    private readonly TimeSpan _rate;
    private readonly CronExpression? _cron;
    private readonly SortedSet<int> _years = [];

    public TimeZoneInfo Zone { get; }
    public DateTimeOffset? Start { get; }
    public DateTimeOffset? End { get; }
    /// <summary>Where a rate's intervals count from: StartTime, else the action's creation.</summary>
    public DateTimeOffset Anchor { get; }

    private Schedule(Kind kind, TimeZoneInfo zone, DateTimeOffset? start, DateTimeOffset? end, DateTimeOffset created,
        DateTime at = default, TimeSpan rate = default, CronExpression? cron = null)
    {
        (_kind, Zone, Start, End, Anchor, _at, _rate, _cron) = (kind, zone, start, end, start ?? created, at, rate, cron);
    }

    /// <summary>Parses and validates; bad input is the model's <c>ValidationException</c> saying what is wrong.</summary>
    public static Schedule Parse(string expression, string? timezone, DateTimeOffset? start, DateTimeOffset? end, DateTimeOffset created)
    {
        var zone = Zone_(timezone);
        if (start is { } first && end is { } last && last < first)
            throw AutoScalingException.Validation("EndTime cannot be earlier than StartTime.");
        var text = expression.Trim();
        if (AtPattern().Match(text) is { Success: true } at)
        {
            if (!DateTime.TryParseExact(at.Groups[1].Value, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
                throw AutoScalingException.Validation($"Invalid at expression: {expression}. The date and time are yyyy-mm-ddThh:mm:ss.");
            return new Schedule(Kind.At, zone, start, end, created, at: local);
        }
        if (RatePattern().Match(text) is { Success: true } rate)
        {
            if (!int.TryParse(rate.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
                throw AutoScalingException.Validation($"Invalid rate expression: {expression}. The value must be a positive integer.");
            var unit = rate.Groups[2].Value;
            if ((n == 1) != !unit.EndsWith('s'))
                throw AutoScalingException.Validation($"Invalid rate expression: {expression}. Use the singular unit for a value of 1 and the plural otherwise.");
            var period = unit.TrimEnd('s') switch { "minute" => TimeSpan.FromMinutes(n), "hour" => TimeSpan.FromHours(n), _ => TimeSpan.FromDays(n) };
            return new Schedule(Kind.Rate, zone, start, end, created, rate: period);
        }
        if (CronPattern().Match(text) is { Success: true } cron)
        {
            var fields = cron.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != 6)
                throw AutoScalingException.Validation($"Invalid cron expression: {expression}. A cron expression has six fields: minutes hours day-of-month month day-of-week year.");
            if ((fields[2] == "?") == (fields[4] == "?"))
                throw AutoScalingException.Validation($"Invalid cron expression: {expression}. One of day-of-month and day-of-week must be ? and the other not.");
            CronExpression parsed;
            try
            {
                parsed = CronExpression.Parse($"{fields[0]} {fields[1]} {fields[2]} {fields[3]} {DayOfWeek(fields[4])}", CronFormat.Standard);
            }
            catch (CronFormatException e)
            {
                throw AutoScalingException.Validation($"Invalid cron expression: {expression}. {e.Message}");
            }
            var schedule = new Schedule(Kind.Cron, zone, start, end, created, cron: parsed);
            schedule._years.UnionWith(Years(fields[5], expression));
            return schedule;
        }
        throw AutoScalingException.Validation($"Invalid schedule expression: {expression}. Use at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(fields).");
    }

    /// <summary>The first time the action runs strictly after <paramref name="after"/>, or null when it never runs again.</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after)
    {
        // Before StartTime, the first run is the first occurrence at or after it.
        var next = Start is { } start && after < start ? Occurrence(start.AddTicks(-1)) : Occurrence(after);
        return next is { } n && (End is null || n <= End) ? n : null;
    }

    private DateTimeOffset? Occurrence(DateTimeOffset after)
    {
        switch (_kind)
        {
            case Kind.At:
                var at = Instant(_at);
                return at > after ? at : null;
            case Kind.Rate:
                var periods = after < Anchor ? 0 : (after - Anchor).Ticks / _rate.Ticks + 1;
                return Anchor + TimeSpan.FromTicks(periods * _rate.Ticks);
            default:
                var from = after;
                while (true)
                {
                    var next = _cron!.GetNextOccurrence(from.UtcDateTime, Zone);
                    if (next is null) return null;
                    var local = TimeZoneInfo.ConvertTimeFromUtc(next.Value, Zone);
                    if (_years.Contains(local.Year)) return new DateTimeOffset(next.Value, TimeSpan.Zero);
                    if (_years.GetViewBetween(local.Year + 1, int.MaxValue) is not { Count: > 0 } later) return null;
                    // The first minute of the next allowed year, local: the occurrence may be its very first instant.
                    from = Instant(new DateTime(later.Min, 1, 1)).AddTicks(-1);
                }
        }
    }

    /// <summary>A local time in <see cref="Zone"/> as an instant: a skipped time moves past the gap, a repeated one is its first occurrence.</summary>
    private DateTimeOffset Instant(DateTime local)
    {
        // As Cronos does for cron: a time in the gap runs at the first valid local minute after it.
        if (Zone.IsInvalidTime(local)) local = local.AddTicks(-(local.Ticks % TimeSpan.TicksPerMinute));
        while (Zone.IsInvalidTime(local)) local = local.AddMinutes(1);
        var offset = Zone.IsAmbiguousTime(local) ? Zone.GetAmbiguousTimeOffsets(local).Max() : Zone.GetUtcOffset(local);
        return new DateTimeOffset(local, offset);
    }

    private static TimeZoneInfo Zone_(string? timezone)
    {
        if (timezone is null) return TimeZoneInfo.Utc;
        if (TimeZoneInfo.TryFindSystemTimeZoneById(timezone, out var zone) && zone.HasIanaId) return zone;
        throw AutoScalingException.Validation($"Invalid time zone: {timezone}. Use the canonical name of an IANA time zone, such as America/New_York.");
    }

    /// <summary>AWS's day-of-week (1-7 = SUN-SAT, <c>L</c> alone = SAT) in Cronos's (0-6 = SUN-SAT); the n of <c>d#n</c> and a step stay.</summary>
    private static string DayOfWeek(string field)
    {
        if (field == "L") return "6";
        return DayNumber().Replace(field, m =>
            int.Parse(m.Value, CultureInfo.InvariantCulture) is var d and >= 1 and <= 7 ? (d - 1).ToString(CultureInfo.InvariantCulture) : "9");
    }

    /// <summary>The year field: <c>*</c>, <c>Y</c>, <c>Y-Y</c>, each optionally <c>/step</c>, comma-separated, within 1970-2199.</summary>
    private static IEnumerable<int> Years(string field, string expression)
    {
        const int first = 1970, last = 2199;
        var years = new List<int>();
        foreach (var item in field.Split(','))
        {
            var match = YearPattern().Match(item);
            if (!match.Success) throw AutoScalingException.Validation($"Invalid cron expression: {expression}. Invalid year field {field}.");
            int from = first, to = last;
            if (match.Groups[1].Value != "*")
            {
                from = int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
                to = match.Groups[3].Success ? int.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture) : match.Groups[4].Success ? last : from;
            }
            var step = match.Groups[4].Success ? int.Parse(match.Groups[4].Value, CultureInfo.InvariantCulture) : 1;
            if (from < first || to > last || from > to || step < 1)
                throw AutoScalingException.Validation($"Invalid cron expression: {expression}. Years are {first}-{last}.");
            for (var year = from; year <= to; year += step) years.Add(year);
        }
        return years;
    }

    [GeneratedRegex(@"^at\((.*)\)$")]
    private static partial Regex AtPattern();

    [GeneratedRegex(@"^rate\(\s*(\d+)\s+(minutes?|hours?|days?)\s*\)$")]
    private static partial Regex RatePattern();

    [GeneratedRegex(@"^cron\((.*)\)$")]
    private static partial Regex CronPattern();

    [GeneratedRegex(@"(?<![#/])\d+")]
    private static partial Regex DayNumber();

    [GeneratedRegex(@"^(\*|(\d{4})(?:-(\d{4}))?)(?:/(\d+))?$")]
    private static partial Regex YearPattern();
}
