using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Serverless.Core.LoadBalancing;

/// <summary>What a request that matched a rule gets: a forward, a fixed response or a redirect.</summary>
public abstract record RouteAction;

public sealed record ForwardAction(IReadOnlyList<(string TargetGroupArn, int Weight)> Groups) : RouteAction;

public sealed record FixedResponseAction(int StatusCode, string? ContentType, string? Body) : RouteAction;

public sealed record RedirectAction(string Protocol, string Port, string Host, string Path, string Query, int StatusCode) : RouteAction;

/// <summary>One condition of a rule; a request matches when any of <see cref="Values"/> matches.</summary>
public sealed record RouteCondition(string Field, string? Name, IReadOnlyList<(string? Key, string Value)> Values);

/// <summary>A listener's rule, by priority (<see cref="int.MaxValue"/> for the default rule).</summary>
public sealed record RouteRule(int Priority, IReadOnlyList<RouteCondition> Conditions, RouteAction Action);

public sealed record RouteListener(string ListenerArn, int Port, IReadOnlyList<RouteRule> Rules);

/// <summary>
/// A target group as the data plane needs it: where its health checks go, how long its targets drain, how long a
/// target that turned healthy ramps up (<see cref="SlowStartSeconds"/>, 0: off) and, with <c>lb_cookie</c> stickiness
/// on, how long a client stays pinned to its target (<see cref="StickySeconds"/>; null: off).
/// </summary>
public sealed record RouteTargetGroup(
    string Arn, string Id, string TargetType, int Port, bool HealthCheckEnabled, string HealthCheckPath, string HealthCheckPort,
    int IntervalSeconds, int TimeoutSeconds, int HealthyThreshold, int UnhealthyThreshold, string Matcher,
    int DeregistrationDelaySeconds, IReadOnlyList<TargetRow> Targets, int SlowStartSeconds = 0, int? StickySeconds = null);

/// <summary>Everything one data plane serves, read at one configuration version. Immutable: swapped whole on a change.</summary>
public sealed record RoutingTable(IReadOnlyList<RouteListener> Listeners, IReadOnlyDictionary<string, RouteTargetGroup> TargetGroups)
{
    public static RoutingTable Empty { get; } = new([], new Dictionary<string, RouteTargetGroup>());
}

/// <summary>The request facts rules look at; headers and the query are read only when a condition asks.</summary>
public sealed record RouteRequest(string Host, string Path, Func<string, IEnumerable<string>> Header, Func<IEnumerable<(string Key, string Value)>> Query);

/// <summary>
/// ALB's routing decisions as pure functions: which rule a request matches (lowest priority first, all of a
/// rule's conditions, any of a condition's values, <c>*</c> and <c>?</c> wildcards; paths case-sensitive,
/// hosts, headers and query strings not), which target group a weighted forward picks, and the configuration
/// as stored turned into a <see cref="RoutingTable"/>.
/// </summary>
public static class Routing
{
    public static RouteRule? Match(RouteListener listener, RouteRequest request)
    {
        foreach (var rule in listener.Rules)
        {
            if (rule.Conditions.All(c => Matches(c, request))) return rule;
        }
        return null;
    }

    public static bool Matches(RouteCondition condition, RouteRequest request) => condition.Field switch
    {
        "path-pattern" => condition.Values.Any(v => Wildcard(v.Value, request.Path, ignoreCase: false)),
        "host-header" => condition.Values.Any(v => Wildcard(v.Value, StripPort(request.Host), ignoreCase: true)),
        "http-header" => request.Header(condition.Name!).Any(h => condition.Values.Any(v => Wildcard(v.Value, h, ignoreCase: true))),
        "query-string" => condition.Values.Any(v => request.Query().Any(q =>
                          (v.Key is null || Wildcard(v.Key, q.Key, ignoreCase: true)) && Wildcard(v.Value, q.Value, ignoreCase: true))),
        _ => false,
    };

    private static string StripPort(string host)
    {
        var colon = host.LastIndexOf(':');
        return colon > 0 && !host.EndsWith(']') ? host[..colon] : host;
    }

    /// <summary>ALB's wildcards: <c>*</c> any run of characters, <c>?</c> exactly one; the whole value must match.</summary>
    public static bool Wildcard(string pattern, string value, bool ignoreCase)
        => Regex.IsMatch(value, "^" + Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$",
            (ignoreCase ? RegexOptions.IgnoreCase : RegexOptions.None) | RegexOptions.CultureInvariant | RegexOptions.Singleline, TimeSpan.FromMilliseconds(50));

    /// <summary>The target group a weighted forward sends this request to; <paramref name="roll"/> is uniform in [0, 1).</summary>
    public static string PickGroup(ForwardAction forward, double roll)
    {
        var total = forward.Groups.Sum(g => g.Weight);
        var point = roll * total;
        foreach (var (arn, weight) in forward.Groups)
        {
            if (point < weight) return arn;
            point -= weight;
        }
        return forward.Groups.Last(g => g.Weight > 0).TargetGroupArn;
    }

    /// <summary>
    /// The targets that may take a new request, as ALB chooses them: never a draining one; the healthy ones;
    /// and when none is healthy, every one that is not draining (ALB fails open rather than refuse all traffic).
    /// </summary>
    public static IReadOnlyList<TargetRow> Eligible(IReadOnlyList<TargetRow> targets, Func<TargetRow, string> health)
    {
        var serving = targets.Where(t => t.DrainingSince is null).ToList();
        var healthy = serving.Where(t => health(t) == "healthy").ToList();
        return healthy.Count > 0 ? healthy : serving;
    }

    /// <summary>
    /// Where a target is reached: an <c>ip</c> target at its id, an <c>instance</c> target at the host address its
    /// container instance registered (carried on the target), else at <paramref name="fallback"/> (a target
    /// registered through the API by instance id, or before the address was carried).
    /// </summary>
    public static string Address(RouteTargetGroup group, TargetRow target, string fallback)
        => group.TargetType == "ip" ? target.Id : target.Address ?? fallback;

    /// <summary>Builds the routing table from the stored configuration rows and each forwarded-to group's targets.</summary>
    public static RoutingTable Build(IReadOnlyList<ElbRow> config, Func<string, IReadOnlyList<TargetRow>> targetsOf)
    {
        var groups = new Dictionary<string, RouteTargetGroup>(StringComparer.Ordinal);
        foreach (var row in config.Where(r => r.RowKey.StartsWith("tg|", StringComparison.Ordinal)))
        {
            var d = row.Doc;
            var id = d[ElbDocs.Id]!.GetValue<string>();
            groups[d["TargetGroupArn"]!.GetValue<string>()] = new RouteTargetGroup(
                d["TargetGroupArn"]!.GetValue<string>(), id, d["TargetType"]!.GetValue<string>(), d["Port"]!.GetValue<int>(),
                d["HealthCheckEnabled"]?.GetValue<bool>() ?? true, d["HealthCheckPath"]!.GetValue<string>(), d["HealthCheckPort"]!.GetValue<string>(),
                d["HealthCheckIntervalSeconds"]!.GetValue<int>(), d["HealthCheckTimeoutSeconds"]!.GetValue<int>(),
                d["HealthyThresholdCount"]!.GetValue<int>(), d["UnhealthyThresholdCount"]!.GetValue<int>(),
                d["Matcher"]?["HttpCode"]?.GetValue<string>() ?? "200", ElbRules.DeregistrationDelaySeconds(d), targetsOf(id),
                ElbRules.SlowStartSeconds(d), ElbRules.LbCookieSeconds(d));
        }

        var rules = config.Where(r => r.RowKey.StartsWith("rule|", StringComparison.Ordinal))
            .GroupBy(r => r.Doc[ElbDocs.ListenerArn]!.GetValue<string>())
            .ToDictionary(g => g.Key, g => g.Select(r => ToRule(r.Doc)).OrderBy(r => r.Priority).ToList());
        var listeners = config.Where(r => r.RowKey.StartsWith("listener|", StringComparison.Ordinal))
            .Select(r => new RouteListener(r.Doc["ListenerArn"]!.GetValue<string>(), r.Doc["Port"]!.GetValue<int>(),
                rules.GetValueOrDefault(r.Doc["ListenerArn"]!.GetValue<string>()) ?? []))
            .ToList();
        return new RoutingTable(listeners, groups);
    }

    private static RouteRule ToRule(JsonObject doc)
    {
        var priority = doc["IsDefault"]!.GetValue<bool>() ? int.MaxValue : int.Parse(doc["Priority"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        var conditions = doc["Conditions"]!.AsArray().Select(c => ToCondition(c!.AsObject())).ToList();
        var action = doc["Actions"]!.AsArray().Select(a => ToAction(a!.AsObject())).Last(a => a is not null)!;
        return new RouteRule(priority, conditions, action);
    }

    private static RouteCondition ToCondition(JsonObject c)
    {
        var field = c["Field"]!.GetValue<string>();
        static List<(string?, string)> Plain(JsonNode? values) => values?.AsArray().Select(v => ((string?)null, v!.GetValue<string>())).ToList() ?? [];
        return field switch
        {
            "path-pattern" => new(field, null, Plain(c["PathPatternConfig"]?["Values"] ?? c["Values"])),
            "host-header" => new(field, null, Plain(c["HostHeaderConfig"]?["Values"] ?? c["Values"])),
            "http-header" => new(field, c["HttpHeaderConfig"]!["HttpHeaderName"]!.GetValue<string>(), Plain(c["HttpHeaderConfig"]!["Values"])),
            "query-string" => new(field, null, c["QueryStringConfig"]!["Values"]!.AsArray()
                .Select(p => (p!["Key"]?.GetValue<string>(), p["Value"]!.GetValue<string>())).ToList()),
            _ => new(field, null, []),
        };
    }

    private static RouteAction? ToAction(JsonObject a) => a["Type"]!.GetValue<string>() switch
    {
        "forward" => new ForwardAction(a["ForwardConfig"]!["TargetGroups"]!.AsArray()
            .Select(g => (g!["TargetGroupArn"]!.GetValue<string>(), g["Weight"]!.GetValue<int>())).ToList()),
        "fixed-response" => new FixedResponseAction(
            int.Parse(a["FixedResponseConfig"]!["StatusCode"]!.GetValue<string>(), CultureInfo.InvariantCulture),
            a["FixedResponseConfig"]!["ContentType"]?.GetValue<string>(), a["FixedResponseConfig"]!["MessageBody"]?.GetValue<string>()),
        "redirect" => new RedirectAction(
            a["RedirectConfig"]!["Protocol"]!.GetValue<string>(), a["RedirectConfig"]!["Port"]!.GetValue<string>(),
            a["RedirectConfig"]!["Host"]!.GetValue<string>(), a["RedirectConfig"]!["Path"]!.GetValue<string>(),
            a["RedirectConfig"]!["Query"]!.GetValue<string>(), a["RedirectConfig"]!["StatusCode"]!.GetValue<string>() == "HTTP_301" ? 301 : 302),
        _ => null,
    };

    /// <summary>The Location of a redirect: <c>#{protocol}</c>, <c>#{host}</c>, <c>#{port}</c>, <c>#{path}</c> (without its leading slash) and <c>#{query}</c> replaced.</summary>
    public static string RedirectLocation(RedirectAction redirect, string scheme, string host, int port, string path, string query)
    {
        string Fill(string template) => template
            .Replace("#{protocol}", scheme.ToLowerInvariant(), StringComparison.Ordinal)
            .Replace("#{host}", StripPort(host), StringComparison.Ordinal)
            .Replace("#{port}", port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("#{path}", path.TrimStart('/'), StringComparison.Ordinal)
            .Replace("#{query}", query.TrimStart('?'), StringComparison.Ordinal);
        var targetScheme = Fill(redirect.Protocol).ToLowerInvariant();
        var targetQuery = Fill(redirect.Query);
        return $"{targetScheme}://{Fill(redirect.Host)}:{Fill(redirect.Port)}{Fill(redirect.Path)}{(targetQuery.Length > 0 ? "?" + targetQuery : "")}";
    }
}
