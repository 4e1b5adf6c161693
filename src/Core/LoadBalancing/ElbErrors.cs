using Serverless.Core.Api;

namespace Serverless.Core.LoadBalancing;

/// <summary>An ELBv2 error: <see cref="Code"/> is the model's error code (<c>TargetGroupNotFound</c>, ...).</summary>
public sealed class ElbException(string code, string message, int httpStatus = 400) : EcsException(message)
{
    public string Code => code;
    public override string ErrorType => code;
    public override int HttpStatus => httpStatus;

    public static ElbException Validation(string message) => new("ValidationError", message);
    public static ElbException InvalidConfiguration(string message) => new("InvalidConfigurationRequest", message);
    public static ElbException LoadBalancerNotFound(string message = "One or more load balancers not found") => new("LoadBalancerNotFound", message);
    public static ElbException TargetGroupNotFound(string message = "One or more target groups not found") => new("TargetGroupNotFound", message);
    public static ElbException ListenerNotFound(string message = "One or more listeners not found") => new("ListenerNotFound", message);
    public static ElbException RuleNotFound(string message = "One or more rules not found") => new("RuleNotFound", message);
}

/// <summary>ELBv2's ARNs, with region and account from settings; ids are 16 hex digits as AWS's are.</summary>
public sealed class ElbArns(EcsOptions options)
{
    private string Prefix => $"arn:aws:elasticloadbalancing:{options.Region}:{options.AccountId}:";

    public static string NewId() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

    public string LoadBalancer(string name, string id) => $"{Prefix}loadbalancer/app/{name}/{id}";
    public string TargetGroup(string name, string id) => $"{Prefix}targetgroup/{name}/{id}";
    public string Listener(string lbName, string lbId, string id) => $"{Prefix}listener/app/{lbName}/{lbId}/{id}";
    public string Rule(string lbName, string lbId, string listenerId, string id) => $"{Prefix}listener-rule/app/{lbName}/{lbId}/{listenerId}/{id}";

    /// <summary>
    /// The resource type (<c>loadbalancer</c>, <c>targetgroup</c>, <c>listener</c>, <c>listener-rule</c>) and the
    /// segments after it (<c>app</c> dropped), or null when <paramref name="arn"/> is no ELBv2 ARN of this
    /// region and account.
    /// </summary>
    public (string Type, string[] Parts)? Parse(string arn)
    {
        if (!arn.StartsWith(Prefix, StringComparison.Ordinal)) return null;
        var segments = arn[Prefix.Length..].Split('/');
        var type = segments[0];
        var parts = type == "targetgroup" ? segments[1..] : segments.Length > 1 && segments[1] == "app" ? segments[2..] : null;
        var expected = type switch { "loadbalancer" or "targetgroup" => 2, "listener" => 3, "listener-rule" => 4, _ => -1 };
        return parts is not null && parts.Length == expected && parts.All(p => p.Length > 0) ? (type, parts) : null;
    }
}
