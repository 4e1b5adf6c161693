using Serverless.Core.Api;
using Serverless.Core.Logs;

namespace Serverless.Core.Tests.Logs;

public sealed class LogEventRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
    private static long Ago(TimeSpan span) => (Now - span).ToUnixTimeMilliseconds();

    [Fact]
    public void Events_too_old_expired_and_too_new_are_reported_and_the_rest_kept()
    {
        var events = new List<(long, string)>
        {
            (Ago(TimeSpan.FromDays(15)), "too old"),
            (Ago(TimeSpan.FromDays(2)), "expired"),
            (Ago(TimeSpan.FromHours(1)), "kept"),
            (Ago(TimeSpan.FromHours(-3)), "too new"),
        };
        var (rejected, start, end) = LogEventRules.Check(events, Now, retentionInDays: 1);
        Assert.Equal(new LogEventRules.Rejected(3, 0, 1), rejected);
        Assert.Equal((2, 3), (start, end));
    }

    [Fact]
    public void A_batch_out_of_chronological_order_is_refused_whole()
    {
        var e = Assert.Throws<InvalidParameterException>(() => LogEventRules.Check([(Ago(TimeSpan.Zero), "b"), (Ago(TimeSpan.FromSeconds(1)), "a")], Now, null));
        Assert.Contains("chronological order", e.Message);
    }

    [Fact]
    public void A_batch_over_a_mebibyte_counting_26_bytes_per_event_is_refused()
    {
        var message = new string('x', 1000);
        var events = Enumerable.Range(0, 1022).Select(_ => (Ago(TimeSpan.Zero), message)).ToList();
        LogEventRules.Check(events, Now, null);
        events.Add((Ago(TimeSpan.Zero), message));
        Assert.Throws<InvalidParameterException>(() => LogEventRules.Check(events, Now, null));
    }

    [Fact]
    public void An_event_over_256_KiB_is_refused()
        => Assert.Throws<InvalidParameterException>(() => LogEventRules.Check([(Ago(TimeSpan.Zero), new string('x', 256 * 1024 - 25))], Now, null));

    [Fact]
    public void A_batch_spanning_more_than_a_day_is_refused()
        => Assert.Throws<InvalidParameterException>(() => LogEventRules.Check([(Ago(TimeSpan.FromHours(25)), "a"), (Ago(TimeSpan.Zero), "b")], Now, null));

    [Fact]
    public void Stream_bounds_widen_to_whole_minutes_and_only_when_a_batch_passes_them()
    {
        var stream = new LogStream("g", "s", "id", "00000001", Now, null, null, null, null, null);
        var widened = LogEventRules.Widen(stream, 61_000, 62_000, 70_000)!;
        Assert.Equal((60_000L, 120_000L, 61_000L, 62_000L), (widened.FirstBound!.Value, widened.LastBound!.Value, widened.FirstEventTimestamp!.Value, widened.LastEventTimestamp!.Value));
        Assert.Null(LogEventRules.Widen(widened, 63_000, 120_000, 80_000));
        Assert.Equal(180_000L, LogEventRules.Widen(widened, 63_000, 120_001, 80_000)!.LastBound);
    }

    [Fact]
    public void Group_keys_sort_as_group_names_do()
    {
        string[] names = ["#a", "-a", ".a", "/a", "/ecs/web", "/ecs-web", "0", "A", "_", "a", "a/b", "a.b", "a-b"];
        Assert.Equal(names.Order(StringComparer.Ordinal), names.OrderBy(LogKeys.Group, StringComparer.Ordinal));
        Assert.DoesNotContain(names.Select(LogKeys.Group), k => k.IndexOfAny(['/', '#', '\\', '?']) >= 0);
    }

    [Fact]
    public void Stream_keys_hold_no_forbidden_character_and_keep_prefixes()
    {
        var key = LogKeys.Stream("web/app\\x#y?z\u0001\uE001");
        Assert.DoesNotContain(key, c => c is '/' or '\\' or '#' or '?' || char.IsControl(c));
        Assert.StartsWith(LogKeys.Stream("web/app"), key);
        Assert.NotEqual(LogKeys.Stream("\uE02F"), LogKeys.Stream("/"));
    }
}
