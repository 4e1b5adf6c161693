using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Serverless.Core.LoadBalancing;

/// <summary>
/// How ALB picks the target of a new request among a group's eligible ones (<see cref="Routing.Eligible"/>), as pure
/// functions. Round robin; a target in slow start (<c>slow_start.duration_seconds</c>) takes a share that grows
/// linearly from nothing to a full one over the duration; with <c>lb_cookie</c> stickiness
/// (<c>stickiness.enabled</c>, <c>stickiness.type</c>) the target the client's <c>AWSALB</c> cookie names, as long as
/// it may take new requests, and otherwise a new pick that the next response's cookie names.
/// </summary>
public static class TargetSelection
{
    /// <summary>ALB's duration-based stickiness cookie, and its copy for cross-origin requests.</summary>
    public const string StickyCookie = "AWSALB";
    public const string StickyCorsCookie = "AWSALBCORS";

    /// <summary>
    /// Whether a target that turned healthy enters slow start, as ALB decides: the group has slow start on, and another
    /// healthy target already takes a full share. So targets registered together into a group with none serving take
    /// full shares at once, and a target that was serving before (<paramref name="wasServing"/>: the stored verdict is
    /// healthy, e.g. the data plane restarted) does not start over.
    /// </summary>
    public static bool EntersSlowStart(int durationSeconds, bool anotherTakesFullShare, bool wasServing)
        => durationSeconds > 0 && anotherTakesFullShare && !wasServing;

    /// <summary>
    /// The share of new requests a target in slow start since <paramref name="since"/> takes, relative to a full one:
    /// linear from 0 to 1 over <paramref name="durationSeconds"/>, then 1 (it has left slow start).
    /// </summary>
    public static double Share(DateTimeOffset since, int durationSeconds, DateTimeOffset now)
        => durationSeconds <= 0 ? 1 : Math.Clamp((now - since).TotalSeconds / durationSeconds, 0, 1);

    /// <summary>
    /// The target of a new request. With every share full, round robin (<paramref name="next"/>, a counter per group);
    /// otherwise at random in proportion to the shares, <paramref name="roll"/> uniform in [0, 1).
    /// </summary>
    public static TargetRow Pick(IReadOnlyList<TargetRow> eligible, IReadOnlyList<double> shares, int next, double roll)
    {
        var total = 0.0;
        var full = true;
        for (var i = 0; i < shares.Count; i++)
        {
            total += shares[i];
            full &= shares[i] >= 1;
        }
        if (full || total <= 0) return eligible[next % eligible.Count];
        var point = roll * total;
        for (var i = 0; i < eligible.Count; i++)
        {
            if (point < shares[i]) return eligible[i];
            point -= shares[i];
        }
        // Rounding left the point past the end: the last target with a share.
        for (var i = eligible.Count - 1; ; i--)
        {
            if (shares[i] > 0) return eligible[i];
        }
    }

    /// <summary>
    /// The cookie value that names <paramref name="target"/> of group <paramref name="groupId"/>: opaque (a digest, so no
    /// address of the group's targets reaches the client), stable for the target's registration in that group.
    /// </summary>
    public static string CookieValue(string groupId, TargetRow target)
    {
        var bytes = SHA256.HashData(Encoding.UTF8.GetBytes($"{groupId}|{target.Id}|{target.Port.ToString(CultureInfo.InvariantCulture)}"));
        return Convert.ToBase64String(bytes, 0, 18).Replace('+', '-').Replace('/', '_');
    }

    /// <summary>The eligible target <paramref name="cookie"/> names, or null: no cookie, another group's, or a target that may no longer take requests.</summary>
    public static TargetRow? Sticky(string? cookie, string groupId, IReadOnlyList<TargetRow> eligible)
    {
        if (string.IsNullOrEmpty(cookie)) return null;
        foreach (var target in eligible)
        {
            if (CookieValue(groupId, target) == cookie) return target;
        }
        return null;
    }

    /// <summary>The <c>Set-Cookie</c> values that pin a client to <paramref name="target"/> for <paramref name="durationSeconds"/>, as ALB sends them on each response.</summary>
    public static string[] SetCookies(string groupId, TargetRow target, int durationSeconds, DateTimeOffset now)
    {
        var value = CookieValue(groupId, target);
        var expires = now.AddSeconds(durationSeconds).UtcDateTime.ToString("R", CultureInfo.InvariantCulture);
        return [$"{StickyCookie}={value}; Expires={expires}; Path=/", $"{StickyCorsCookie}={value}; Expires={expires}; Path=/; SameSite=None; Secure"];
    }
}
