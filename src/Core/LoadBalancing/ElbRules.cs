using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Serverless.Core.LoadBalancing;

/// <summary>
/// ELBv2's pure checks and defaults: names, target group settings and attributes, actions and
/// conditions as AWS normalizes and echoes them, and a target's reported health.
/// </summary>
public static partial class ElbRules
{
    public const int DefaultDeregistrationDelaySeconds = 300;
    public const int MaxTargetGroupsPerForward = 5;
    public const int MaxWeight = 999;
    public const int MaxTags = 50;

    [GeneratedRegex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")]
    private static partial Regex NamePattern();

    /// <summary>Load balancer and target group names: 1-32 alphanumerics or hyphens, not at either end.</summary>
    public static void CheckName(string name, string what)
    {
        if (name.Length > 32) throw ElbException.Validation($"{what} name '{name}' cannot be longer than '32' characters");
        if (!NamePattern().IsMatch(name))
            throw ElbException.Validation($"{what} name '{name}' can only contain characters that are alphanumeric characters or hyphens(-) and must not begin or end with a hyphen");
        if (what == "Load balancer" && name.StartsWith("internal-", StringComparison.OrdinalIgnoreCase))
            throw ElbException.Validation($"Load balancer name '{name}' cannot begin with 'internal-'");
    }

    /// <summary>The target group settings AWS fills in for an HTTP group, over what the request gave.</summary>
    public static void ApplyHealthCheck(JsonObject group, JsonObject request, bool creating)
    {
        void Set(string name, JsonNode? fallback)
        {
            if (request[name] is { } given) group[name] = given.DeepClone();
            else if (creating && fallback is not null) group[name] = fallback;
        }
        Set("HealthCheckProtocol", "HTTP");
        Set("HealthCheckPort", "traffic-port");
        Set("HealthCheckEnabled", true);
        Set("HealthCheckIntervalSeconds", 30);
        Set("HealthCheckTimeoutSeconds", 5);
        Set("HealthyThresholdCount", 5);
        Set("UnhealthyThresholdCount", 2);
        Set("HealthCheckPath", "/");
        Set("Matcher", new JsonObject { ["HttpCode"] = "200" });

        if (group["HealthCheckProtocol"]?.GetValue<string>() is not ("HTTP" or "HTTPS"))
            throw ElbException.Validation("Health check protocol must be HTTP or HTTPS for a target group with protocol HTTP");
        if (group["HealthCheckProtocol"]!.GetValue<string>() == "HTTPS")
            throw ElbException.InvalidConfiguration("HTTPS health checks are not supported here: targets serve plain HTTP");
        var port = group["HealthCheckPort"]!.GetValue<string>();
        if (port != "traffic-port" && !(int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 1 and <= 65535))
            throw ElbException.Validation($"Health check port '{port}' must be 'traffic-port' or a number from 1 to 65535");
        var interval = group["HealthCheckIntervalSeconds"]!.GetValue<int>();
        var timeout = group["HealthCheckTimeoutSeconds"]!.GetValue<int>();
        if (timeout >= interval)
            throw ElbException.Validation("Health check interval must be greater than the timeout.");
        if (group["HealthCheckPath"]!.GetValue<string>() is var path && !path.StartsWith('/'))
            throw ElbException.Validation("Health check path must begin with a '/' character");
        var code = group["Matcher"]?["HttpCode"]?.GetValue<string>();
        if (code is null || ParseMatcher(code) is null)
            throw ElbException.Validation($"Health check matcher HTTP code '{code}' must be a code from 200 to 499, a list (200,202) or a range (200-299)");
    }

    /// <summary>HTTP codes a health check accepts: "200", "200,202", "200-299" (200 to 499), or null when malformed.</summary>
    public static Func<int, bool>? ParseMatcher(string code)
    {
        var accepted = new List<(int From, int To)>();
        foreach (var part in code.Split(','))
        {
            var range = part.Split('-');
            if (range.Length > 2 || !range.All(r => int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out var c) && c is >= 200 and <= 499)) return null;
            var from = int.Parse(range[0], CultureInfo.InvariantCulture);
            var to = range.Length == 2 ? int.Parse(range[1], CultureInfo.InvariantCulture) : from;
            if (to < from) return null;
            accepted.Add((from, to));
        }
        return status => accepted.Exists(r => status >= r.From && status <= r.To);
    }

    /// <summary>The attributes of a new HTTP target group, as DescribeTargetGroupAttributes reports them.</summary>
    public static JsonObject DefaultAttributes() => new()
    {
        ["deregistration_delay.timeout_seconds"] = DefaultDeregistrationDelaySeconds.ToString(CultureInfo.InvariantCulture),
        ["slow_start.duration_seconds"] = "0",
        ["stickiness.enabled"] = "false",
        ["stickiness.type"] = "lb_cookie",
        ["stickiness.lb_cookie.duration_seconds"] = "86400",
        ["load_balancing.algorithm.type"] = "round_robin",
    };

    /// <summary>Checks one attribute as AWS does for an HTTP target group; unknown keys are refused.</summary>
    public static void CheckAttribute(string key, string value)
    {
        bool Int(int min, int max) => int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max;
        var valid = key switch
        {
            "deregistration_delay.timeout_seconds" => Int(0, 3600),
            "slow_start.duration_seconds" => value == "0" || Int(30, 900),
            "stickiness.enabled" => value is "true" or "false",
            "stickiness.type" => value == "lb_cookie",
            "stickiness.lb_cookie.duration_seconds" => Int(1, 604800),
            "load_balancing.algorithm.type" => value is "round_robin" or "least_outstanding_requests",
            _ => throw ElbException.Validation($"Target group attribute key '{key}' is not recognized"),
        };
        if (!valid) throw ElbException.Validation($"'{value}' is not a valid value for target group attribute '{key}'");
    }

    public static int DeregistrationDelaySeconds(JsonObject targetGroup)
        => int.TryParse(targetGroup[ElbDocs.Attributes]?["deregistration_delay.timeout_seconds"]?.GetValue<string>(), CultureInfo.InvariantCulture, out var d)
            ? d : DefaultDeregistrationDelaySeconds;

    /// <summary><c>slow_start.duration_seconds</c>; 0 (the default) is off.</summary>
    public static int SlowStartSeconds(JsonObject targetGroup)
        => int.TryParse(targetGroup[ElbDocs.Attributes]?["slow_start.duration_seconds"]?.GetValue<string>(), CultureInfo.InvariantCulture, out var d) ? d : 0;

    /// <summary><c>stickiness.lb_cookie.duration_seconds</c> when <c>stickiness.enabled</c> is true with type <c>lb_cookie</c>; else null (no stickiness).</summary>
    public static int? LbCookieSeconds(JsonObject targetGroup)
    {
        var attributes = targetGroup[ElbDocs.Attributes];
        if (attributes?["stickiness.enabled"]?.GetValue<string>() != "true" || (attributes["stickiness.type"]?.GetValue<string>() ?? "lb_cookie") != "lb_cookie") return null;
        return int.TryParse(attributes["stickiness.lb_cookie.duration_seconds"]?.GetValue<string>(), CultureInfo.InvariantCulture, out var d) ? d : 86400;
    }

    private static readonly HashSet<string> ContentTypes = ["text/plain", "text/css", "text/html", "application/javascript", "application/json"];

    /// <summary>
    /// Checks a listener's or rule's actions and returns them as AWS echoes them: a forward to one group
    /// carries both <c>TargetGroupArn</c> and a <c>ForwardConfig</c> with weight 1. Returns the target group
    /// ARNs the actions forward to, for the caller to resolve.
    /// </summary>
    public static (JsonArray Actions, List<string> TargetGroupArns) NormalizeActions(JsonArray actions)
    {
        if (actions.Count == 0) throw ElbException.Validation("At least one action must be specified");
        var normalized = new JsonArray();
        var arns = new List<string>();
        var terminal = 0;
        foreach (var node in actions)
        {
            var action = node!.AsObject().DeepClone().AsObject();
            var type = action["Type"]!.GetValue<string>();
            switch (type)
            {
                case "forward":
                    terminal++;
                    var groups = action["ForwardConfig"]?["TargetGroups"]?.AsArray() ?? [];
                    var single = action["TargetGroupArn"]?.GetValue<string>();
                    if (single is null && groups.Count == 0)
                        throw ElbException.Validation("A target group ARN must be specified for a forward action");
                    if (single is not null && groups.Count > 0 && (groups.Count > 1 || groups[0]!["TargetGroupArn"]?.GetValue<string>() != single))
                        throw ElbException.Validation("You cannot specify both a top-level target group ARN and a different target group in the forward config");
                    var tuples = new JsonArray();
                    var sum = 0;
                    if (groups.Count == 0) tuples.Add(new JsonObject { ["TargetGroupArn"] = single, ["Weight"] = 1 });
                    foreach (var g in groups)
                    {
                        var arn = g!["TargetGroupArn"]?.GetValue<string>() ?? throw ElbException.Validation("A target group ARN must be specified for each target group of a forward config");
                        var weight = g["Weight"]?.GetValue<int>() ?? 1;
                        if (weight is < 0 or > MaxWeight) throw ElbException.Validation($"Target group weight '{weight}' must be from 0 to {MaxWeight}");
                        tuples.Add(new JsonObject { ["TargetGroupArn"] = arn, ["Weight"] = weight });
                    }
                    foreach (var t in tuples)
                    {
                        sum += t!["Weight"]!.GetValue<int>();
                        var arn = t["TargetGroupArn"]!.GetValue<string>();
                        if (arns.Contains(arn)) throw ElbException.Validation($"Target group '{arn}' is specified more than once");
                        arns.Add(arn);
                    }
                    if (tuples.Count > MaxTargetGroupsPerForward)
                        throw new ElbException("TooManyTargetGroups", $"A forward action can have at most {MaxTargetGroupsPerForward} target groups");
                    if (sum == 0) throw new ElbException("InvalidLoadBalancerAction", "The sum of the target group weights in a forward action must be greater than 0");
                    var stickiness = action["ForwardConfig"]?["TargetGroupStickinessConfig"]?.DeepClone() ?? new JsonObject { ["Enabled"] = false };
                    if (stickiness["Enabled"]?.GetValue<bool>() == true)
                        throw new ElbException("InvalidLoadBalancerAction", "Target group stickiness is not supported here");
                    if (tuples.Count == 1) action["TargetGroupArn"] = tuples[0]!["TargetGroupArn"]!.GetValue<string>();
                    else action.Remove("TargetGroupArn");
                    action["ForwardConfig"] = new JsonObject { ["TargetGroups"] = tuples, ["TargetGroupStickinessConfig"] = stickiness };
                    break;
                case "fixed-response":
                    terminal++;
                    var fixedConfig = action["FixedResponseConfig"]?.AsObject()
                        ?? throw ElbException.Validation("A fixed-response action must have a fixed-response config");
                    if (fixedConfig["ContentType"]?.GetValue<string>() is { } contentType && !ContentTypes.Contains(contentType))
                        throw ElbException.Validation($"Content type '{contentType}' must be one of {string.Join(", ", ContentTypes)}");
                    if ((fixedConfig["MessageBody"]?.GetValue<string>().Length ?? 0) > 1024)
                        throw ElbException.Validation("A fixed-response message body cannot be longer than 1024 characters");
                    action.Remove("TargetGroupArn");
                    break;
                case "redirect":
                    terminal++;
                    var redirect = action["RedirectConfig"]?.AsObject()
                        ?? throw ElbException.Validation("A redirect action must have a redirect config");
                    redirect["Protocol"] ??= "#{protocol}";
                    redirect["Port"] ??= "#{port}";
                    redirect["Host"] ??= "#{host}";
                    redirect["Path"] ??= "/#{path}";
                    redirect["Query"] ??= "#{query}";
                    if (redirect["Protocol"]!.GetValue<string>() is not ("HTTP" or "HTTPS" or "#{protocol}"))
                        throw ElbException.Validation("Redirect protocol must be HTTP, HTTPS or #{protocol}");
                    action.Remove("TargetGroupArn");
                    break;
                default:
                    throw new ElbException("InvalidLoadBalancerAction", $"Action type '{type}' is not supported here: there is no identity provider or token validation in this deployment");
            }
            normalized.Add(action);
        }
        if (terminal != 1) throw new ElbException("InvalidLoadBalancerAction", "Exactly one forward, redirect or fixed-response action must be specified");
        return (normalized, arns);
    }

    private static readonly string[] SupportedFields = ["path-pattern", "host-header", "http-header", "query-string"];

    /// <summary>Checks a rule's conditions and echoes them as AWS does (values also in the field's config).</summary>
    public static JsonArray NormalizeConditions(JsonArray conditions)
    {
        if (conditions.Count == 0) throw ElbException.Validation("A rule must have at least one condition");
        var normalized = new JsonArray();
        var seen = new HashSet<string>();
        var valueCount = 0;
        foreach (var node in conditions)
        {
            var condition = node!.AsObject();
            var field = condition["Field"]?.GetValue<string>() ?? throw ElbException.Validation("A condition field must be specified");
            if (!SupportedFields.Contains(field))
                throw ElbException.Validation($"Condition field '{field}' is not supported here; use one of {string.Join(", ", SupportedFields)}");
            if (field != "http-header" && !seen.Add(field))
                throw ElbException.Validation($"A rule can have only one '{field}' condition");
            var result = new JsonObject { ["Field"] = field };
            switch (field)
            {
                case "path-pattern" or "host-header":
                    var configName = field == "path-pattern" ? "PathPatternConfig" : "HostHeaderConfig";
                    var values = condition["Values"]?.AsArray() is { Count: > 0 } v ? v : condition[configName]?["Values"]?.AsArray() ?? [];
                    if (values.Count == 0) throw ElbException.Validation($"A '{field}' condition must have at least one value");
                    foreach (var value in values)
                    {
                        if (value!.GetValue<string>().Length is 0 or > 128) throw ElbException.Validation($"A '{field}' condition value must be 1 to 128 characters");
                    }
                    valueCount += values.Count;
                    result["Values"] = values.DeepClone();
                    result[configName] = new JsonObject { ["Values"] = values.DeepClone() };
                    break;
                case "http-header":
                    var header = condition["HttpHeaderConfig"]?.AsObject() ?? throw ElbException.Validation("An 'http-header' condition must have an HTTP header config");
                    if (header["HttpHeaderName"]?.GetValue<string>() is not { Length: > 0 }) throw ElbException.Validation("An 'http-header' condition must name a header");
                    if (header["Values"]?.AsArray() is not { Count: > 0 } headerValues) throw ElbException.Validation("An 'http-header' condition must have at least one value");
                    valueCount += headerValues.Count;
                    result["HttpHeaderConfig"] = new JsonObject { ["HttpHeaderName"] = header["HttpHeaderName"]!.DeepClone(), ["Values"] = headerValues.DeepClone() };
                    break;
                case "query-string":
                    if (condition["QueryStringConfig"]?["Values"]?.AsArray() is not { Count: > 0 } pairs)
                        throw ElbException.Validation("A 'query-string' condition must have at least one key/value pair");
                    foreach (var pair in pairs)
                    {
                        if (pair!["Value"]?.GetValue<string>() is not { Length: > 0 }) throw ElbException.Validation("A 'query-string' condition value must be specified");
                    }
                    valueCount += pairs.Count;
                    result["QueryStringConfig"] = new JsonObject { ["Values"] = pairs.DeepClone() };
                    break;
            }
            normalized.Add(result);
        }
        if (valueCount > 5) throw ElbException.Validation("A rule can have at most 5 condition values");
        return normalized;
    }

    /// <summary>
    /// What DescribeTargetHealth reports for a registered target, in ELBv2's order of precedence: draining,
    /// then not in use, then health checks disabled, then the data plane's last verdict (initial until it has one).
    /// </summary>
    public static (string State, string? Reason, string? Description) Health(TargetRow target, bool inUse, bool healthCheckEnabled)
    {
        if (target.DrainingSince is not null) return ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress");
        if (!inUse) return ("unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer");
        if (!healthCheckEnabled) return ("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled for the target group");
        if (target.Health is null) return ("initial", "Elb.RegistrationInProgress", "Target registration is in progress");
        return (target.Health, target.Reason, target.Description);
    }

    /// <summary>Whether a draining target's delay is over, so it is gone from the group.</summary>
    public static bool DrainingOver(TargetRow target, int delaySeconds, DateTimeOffset now)
        => target.DrainingSince is { } since && since.AddSeconds(delaySeconds) <= now;

    public static bool IsIpAddress(string id) => IPAddress.TryParse(id, out _);
}

/// <summary>Fields stored beside a resource's output shape; the XML writer leaves them out (they are no model members).</summary>
public static class ElbDocs
{
    public const string Id = "_Id";
    public const string Attributes = "_Attributes";
    public const string ListenerArn = "_ListenerArn";
    public const string LoadBalancerArn = "_LoadBalancerArn";
    public const string TargetGroupArns = "_TargetGroupArns";
}
