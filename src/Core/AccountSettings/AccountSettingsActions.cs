using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serverless.Core.Api;

namespace Serverless.Core.AccountSettings;

/// <summary>
/// PutAccountSetting, PutAccountSettingDefault, ListAccountSettings, DeleteAccountSetting, as the ECS
/// model defines them. A setting applies to one principal (by default the caller) or, set by the root
/// user or as the default, to every principal without its own. Of the effects, this system has
/// <c>containerInsights</c> (the setting new clusters start with); long ARNs are always on; the rest
/// are kept and answered as ECS answers them.
/// </summary>
public sealed partial class AccountSettingsActions(AccountSettingsStore store, Arns arns, EcsOptions options) : IActionSource
{
    /// <summary>ListAccountSettings answers at most this many per page (ECS: 1 to 10).</summary>
    public const int MaxResults = 10;

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("PutAccountSetting", PutAsync);
        registry.Map("PutAccountSettingDefault", PutDefaultAsync);
        registry.Map("ListAccountSettings", ListAsync);
        registry.Map("DeleteAccountSetting", DeleteAsync);
    }

    /// <summary>The account's root principal, whose settings are every principal's defaults.</summary>
    public string RootArn => $"arn:aws:iam::{options.AccountId}:root";

    /// <summary>The value of <paramref name="name"/> that applies to the caller.</summary>
    public async Task<string> EffectiveValueAsync(string name, RequestContext context, CancellationToken cancellationToken)
        => (await EffectiveAsync(arns.Caller(context.AccessKeyId), cancellationToken)).First(s => s.Name == name).Value;

    private async Task<JsonObject> PutAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var principal = Principal(request, context);
        return await SetAsync(request, principal, asDefault: principal == RootArn, cancellationToken);
    }

    private Task<JsonObject> PutDefaultAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
        => SetAsync(request, RootArn, asDefault: true, cancellationToken);

    private async Task<JsonObject> SetAsync(JsonObject request, string principal, bool asDefault, CancellationToken cancellationToken)
    {
        var setting = new AccountSetting(request.String("name")!, request.String("value")!, principal);
        if (AccountSettingRules.Refusal(setting.Name, setting.Value, asDefault) is { } refusal)
            throw new InvalidParameterException(refusal);
        await store.PutAsync(setting, cancellationToken);
        return new JsonObject { ["setting"] = ToJson(setting) };
    }

    private async Task<JsonObject> DeleteAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var principal = Principal(request, context);
        var name = request.String("name")!;
        if (AccountSettingRules.Of(name).ReadOnly)
            throw new InvalidParameterException($"The {name} account setting is read only and cannot be changed in Amazon ECS.");
        var current = (await store.ListAsync(principal, cancellationToken)).FirstOrDefault(s => s.Name == name)
            ?? throw new InvalidParameterException($"The account setting {name} is not set for {principal}.");
        await store.DeleteAsync(principal, name, cancellationToken);
        return new JsonObject { ["setting"] = ToJson(current) };
    }

    /// <summary>
    /// The principal's own settings, or with <c>effectiveSettings</c> every setting as it applies to
    /// the principal; filtered by <c>name</c> and <c>value</c>, in the model's order, paged by name.
    /// </summary>
    private async Task<JsonObject> ListAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var principal = Principal(request, context);
        var take = Paging.MaxResults(request, @default: MaxResults, max: MaxResults);
        var after = Paging.AfterKey(request);
        var settings = request.Bool("effectiveSettings") == true
            ? await EffectiveAsync(principal, cancellationToken)
            : Ordered(await store.ListAsync(principal, cancellationToken));

        var name = request.String("name");
        var value = request.String("value");
        var matching = settings
            .Where(s => (name is null || s.Name == name) && (value is null || s.Value == value))
            .SkipWhile(s => after is not null && Order(s.Name) <= Order(after))
            .ToList();
        var page = matching.Take(take).ToList();
        var response = new JsonObject { ["settings"] = page.Select(s => (JsonNode?)ToJson(s)).ToJsonArray() };
        Paging.AddNextToken(response, matching.Count > take, page.LastOrDefault()?.Name);
        return response;
    }

    private async Task<IReadOnlyList<AccountSetting>> EffectiveAsync(string principal, CancellationToken cancellationToken)
    {
        var defaults = store.ListAsync(RootArn, cancellationToken);
        var own = principal == RootArn ? defaults : store.ListAsync(principal, cancellationToken);
        return AccountSettingRules.Effective(principal, await own, await defaults);
    }

    private static List<AccountSetting> Ordered(List<AccountSetting> settings) => [.. settings.OrderBy(s => Order(s.Name))];

    private static int Order(string name)
    {
        for (var i = 0; i < AccountSettingRules.All.Count; i++)
            if (AccountSettingRules.All[i].Name == name) return i;
        return int.MaxValue;
    }

    /// <summary><c>principalArn</c>, or the caller: an IAM user or role of this account, or its root.</summary>
    private string Principal(JsonObject request, RequestContext context)
    {
        var given = request.String("principalArn");
        if (string.IsNullOrEmpty(given)) return arns.Caller(context.AccessKeyId);
        if (!PrincipalArn().IsMatch(given) || Arn.Parse(given)?.Account != options.AccountId)
            throw new InvalidParameterException("principalArn must be the ARN of an IAM user or role of this account, or of its root user.");
        return given;
    }

    // IAM names and paths: up to 512 characters of letters, digits and + = , . @ _ - and '/'.
    [GeneratedRegex(@"^arn:aws[a-z-]*:iam::[0-9]{12}:(root|(user|role)/[\w+=,.@/-]{1,512})$", RegexOptions.CultureInvariant)]
    private static partial Regex PrincipalArn();

    private static JsonObject ToJson(AccountSetting setting) => new()
    {
        ["name"] = setting.Name,
        ["value"] = setting.Value,
        ["principalArn"] = setting.PrincipalArn,
        ["type"] = setting.Type,
    };
}
