namespace Serverless.Core.AccountSettings;

/// <summary>
/// The account settings ECS knows (botocore's <c>SettingName</c>), the values each takes and the value
/// an account has before anyone sets it. Pure data and decisions; <see cref="AccountSettingsActions"/>
/// does the I/O.
/// </summary>
public static class AccountSettingRules
{
    public sealed record Rule(string Name, string AwsDefault, IReadOnlyList<string> Values, bool DefaultOnly = false, bool ReadOnly = false);

    /// <summary>In the model's order, which is the order ListAccountSettings answers in.</summary>
    public static readonly IReadOnlyList<Rule> All =
    [
        // Long ARNs are the only format left in ECS (and the only one this system issues).
        new("serviceLongArnFormat", "enabled", ["enabled"]),
        new("taskLongArnFormat", "enabled", ["enabled"]),
        new("containerInstanceLongArnFormat", "enabled", ["enabled"]),
        new("awsvpcTrunking", "disabled", ["enabled", "disabled"]),
        // The default cluster setting of new clusters (CreateCluster).
        new("containerInsights", "disabled", ["enabled", "disabled", "enhanced"]),
        new("fargateFIPSMode", "disabled", ["enabled", "disabled"], DefaultOnly: true),
        new("tagResourceAuthorization", "on", ["on", "off"]),
        new("fargateTaskRetirementWaitPeriod", "7", ["0", "7", "14"], DefaultOnly: true),
        // Set by a security administrator in GuardDuty, never through ECS.
        new("guardDutyActivate", "disabled", ["enabled", "disabled"], ReadOnly: true),
        new("defaultLogDriverMode", "non-blocking", ["blocking", "non-blocking"]),
        new("fargateEventWindows", "disabled", ["enabled", "disabled"], DefaultOnly: true),
    ];

    public static Rule Of(string name) => All.First(r => r.Name == name);

    /// <summary>Why <paramref name="value"/> cannot be set for <paramref name="name"/>, or null when it can.</summary>
    public static string? Refusal(string name, string value, bool asDefault)
    {
        var rule = Of(name);
        if (rule.ReadOnly) return $"The {name} account setting is read only and cannot be changed in Amazon ECS.";
        if (rule.DefaultOnly && !asDefault) return $"The {name} account setting can only be set as the account default (PutAccountSettingDefault).";
        return rule.Values.Contains(value)
            ? null
            : $"Invalid value '{value}' for account setting {name}. Valid values are: {string.Join(", ", rule.Values)}.";
    }

    /// <summary>
    /// What applies to a principal: its own setting, else the account default, else ECS's default
    /// (<c>aws_managed</c>), per setting name in the model's order.
    /// </summary>
    public static IReadOnlyList<AccountSetting> Effective(
        string principalArn, IReadOnlyList<AccountSetting> own, IReadOnlyList<AccountSetting> defaults)
        => [.. All.Select(rule =>
            own.FirstOrDefault(s => s.Name == rule.Name)
            ?? defaults.FirstOrDefault(s => s.Name == rule.Name)
            ?? new AccountSetting(rule.Name, rule.AwsDefault, principalArn, AccountSetting.AwsManaged))];
}

/// <summary>One setting as ECS describes it (<c>Setting</c>): <c>type</c> is <c>user</c> or <c>aws_managed</c>.</summary>
public sealed record AccountSetting(string Name, string Value, string PrincipalArn, string Type = AccountSetting.User)
{
    public const string User = "user";
    public const string AwsManaged = "aws_managed";
}
