using System.Text.Json.Nodes;
using Serverless.Core.AccountSettings;
using Serverless.Core.Tests.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.AccountSettings;

/// <summary>The account-settings actions through the whole endpoint, over real Table Storage: one fresh account per test.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AccountSettingsTests(AzuriteFixture azurite) : IDisposable
{
    private const string Caller = "arn:aws:iam::000000000000:user/" + ApiHarness.AccessKeyId;
    private const string Root = "arn:aws:iam::000000000000:root";
    private const string Role = "arn:aws:iam::000000000000:role/deployer";

    private readonly ApiHarness _api = new(azurite, TestNames.Unique<AccountSettingsTests>());
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public void Dispose() => _api.Dispose();

    private async Task<JsonObject> OkAsync(string action, string body)
    {
        var answer = await _api.EcsAsync(action, body, _token);
        Assert.True(answer.Status == 200, answer.Raw);
        return answer.Body!;
    }

    private async Task<(string? Type, string? Message)> RefusedAsync(string action, string body)
    {
        var answer = await _api.EcsAsync(action, body, _token);
        Assert.Equal(400, answer.Status);
        return (answer.Type, answer.Message);
    }

    private static string Setting(JsonNode? setting)
        => $"{setting!["name"]}={setting["value"]} {setting["principalArn"]} {setting["type"]}";

    private async Task<Dictionary<string, string>> EffectiveAsync(string principal)
    {
        var first = await OkAsync("ListAccountSettings", $$"""{"effectiveSettings":true,"principalArn":"{{principal}}"}""");
        var settings = first["settings"]!.AsArray().ToList();
        var second = await OkAsync("ListAccountSettings", $$"""{"effectiveSettings":true,"principalArn":"{{principal}}","nextToken":"{{first["nextToken"]}}"}""");
        settings.AddRange(second["settings"]!.AsArray());
        return settings.ToDictionary(s => s!["name"]!.GetValue<string>(), s => Setting(s));
    }

    [Fact]
    public async Task A_setting_is_put_for_the_caller_and_listed_as_the_callers_own()
    {
        var put = await OkAsync("PutAccountSetting", """{"name":"containerInsights","value":"enabled"}""");

        Assert.Equal($"containerInsights=enabled {Caller} user", Setting(put["setting"]));
        var listed = await OkAsync("ListAccountSettings", "{}");
        Assert.Equal([$"containerInsights=enabled {Caller} user"], listed["settings"]!.AsArray().Select(Setting));
        Assert.Null(listed["nextToken"]);
    }

    [Fact]
    public async Task Effective_settings_name_every_setting_in_the_models_order_in_pages_of_ten()
    {
        await OkAsync("PutAccountSetting", """{"name":"awsvpcTrunking","value":"enabled"}""");

        var first = await OkAsync("ListAccountSettings", """{"effectiveSettings":true}""");
        var page = first["settings"]!.AsArray();

        Assert.Equal(10, page.Count);
        Assert.Equal(["serviceLongArnFormat", "taskLongArnFormat", "containerInstanceLongArnFormat", "awsvpcTrunking", "containerInsights"],
            page.Take(5).Select(s => s!["name"]!.GetValue<string>()));
        Assert.Equal($"awsvpcTrunking=enabled {Caller} user", Setting(page[3]));
        Assert.Equal($"containerInsights=disabled {Caller} aws_managed", Setting(page[4]));
        var rest = await OkAsync("ListAccountSettings", $$"""{"effectiveSettings":true,"nextToken":"{{first["nextToken"]}}"}""");
        Assert.Equal(["fargateEventWindows"], rest["settings"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()));
        Assert.Null(rest["nextToken"]);
    }

    [Fact]
    public async Task The_account_default_applies_to_every_principal_without_its_own_setting()
    {
        var put = await OkAsync("PutAccountSettingDefault", """{"name":"containerInsights","value":"enhanced"}""");
        await OkAsync("PutAccountSetting", $$"""{"name":"containerInsights","value":"disabled","principalArn":"{{Role}}"}""");

        Assert.Equal($"containerInsights=enhanced {Root} user", Setting(put["setting"]));
        Assert.Equal($"containerInsights=enhanced {Root} user", (await EffectiveAsync(Caller))["containerInsights"]);
        Assert.Equal($"containerInsights=disabled {Role} user", (await EffectiveAsync(Role))["containerInsights"]);
    }

    [Fact]
    public async Task The_root_principal_sets_the_account_default()
    {
        await OkAsync("PutAccountSetting", $$"""{"name":"tagResourceAuthorization","value":"off","principalArn":"{{Root}}"}""");

        Assert.Equal($"tagResourceAuthorization=off {Root} user", (await EffectiveAsync(Caller))["tagResourceAuthorization"]);
    }

    [Fact]
    public async Task A_new_cluster_takes_container_insights_from_the_callers_account_setting()
    {
        await OkAsync("PutAccountSetting", """{"name":"containerInsights","value":"enabled"}""");

        var created = await OkAsync("CreateCluster", """{"clusterName":"insights"}""");
        var explicitly = await OkAsync("CreateCluster", """{"clusterName":"explicit","settings":[{"name":"containerInsights","value":"disabled"}]}""");

        Assert.Equal("""[{"name":"containerInsights","value":"enabled"}]""", created["cluster"]!["settings"]!.ToJsonString());
        Assert.Equal("""[{"name":"containerInsights","value":"disabled"}]""", explicitly["cluster"]!["settings"]!.ToJsonString());
    }

    [Fact]
    public async Task Deleting_a_setting_answers_it_and_the_default_applies_again()
    {
        await OkAsync("PutAccountSettingDefault", """{"name":"defaultLogDriverMode","value":"blocking"}""");
        await OkAsync("PutAccountSetting", """{"name":"defaultLogDriverMode","value":"non-blocking"}""");

        var deleted = await OkAsync("DeleteAccountSetting", """{"name":"defaultLogDriverMode"}""");

        Assert.Equal($"defaultLogDriverMode=non-blocking {Caller} user", Setting(deleted["setting"]));
        Assert.Equal($"defaultLogDriverMode=blocking {Root} user", (await EffectiveAsync(Caller))["defaultLogDriverMode"]);
        Assert.Equal("InvalidParameterException", (await RefusedAsync("DeleteAccountSetting", """{"name":"defaultLogDriverMode"}""")).Type);
    }

    [Fact]
    public async Task Listing_filters_by_name_and_value()
    {
        await OkAsync("PutAccountSetting", """{"name":"awsvpcTrunking","value":"enabled"}""");
        await OkAsync("PutAccountSetting", """{"name":"containerInsights","value":"enabled"}""");

        var byName = await OkAsync("ListAccountSettings", """{"name":"containerInsights"}""");
        var byValue = await OkAsync("ListAccountSettings", """{"effectiveSettings":true,"value":"enabled","maxResults":10}""");

        Assert.Equal([$"containerInsights=enabled {Caller} user"], byName["settings"]!.AsArray().Select(Setting));
        Assert.Equal(["serviceLongArnFormat", "taskLongArnFormat", "containerInstanceLongArnFormat", "awsvpcTrunking", "containerInsights"],
            byValue["settings"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("PutAccountSetting", """{"name":"containerInsights","value":"maybe"}""", "Invalid value 'maybe' for account setting containerInsights. Valid values are: enabled, disabled, enhanced.")]
    [InlineData("PutAccountSetting", """{"name":"taskLongArnFormat","value":"disabled"}""", "Invalid value 'disabled' for account setting taskLongArnFormat. Valid values are: enabled.")]
    [InlineData("PutAccountSetting", """{"name":"guardDutyActivate","value":"enabled"}""", "The guardDutyActivate account setting is read only and cannot be changed in Amazon ECS.")]
    [InlineData("PutAccountSetting", """{"name":"fargateTaskRetirementWaitPeriod","value":"14"}""", "The fargateTaskRetirementWaitPeriod account setting can only be set as the account default (PutAccountSettingDefault).")]
    [InlineData("PutAccountSetting", """{"name":"containerInsights","value":"enabled","principalArn":"arn:aws:iam::111111111111:user/other"}""", "principalArn must be the ARN of an IAM user or role of this account, or of its root user.")]
    [InlineData("ListAccountSettings", """{"maxResults":11}""", "maxResults must be between 1 and 10.")]
    public async Task What_ecs_refuses_is_an_invalid_parameter(string action, string body, string message)
        => Assert.Equal(("InvalidParameterException", message), await RefusedAsync(action, body));

    [Fact]
    public async Task A_setting_name_outside_the_model_is_refused_by_validation()
    {
        var (type, message) = await RefusedAsync("PutAccountSetting", """{"name":"nonsense","value":"enabled"}""");
        Assert.Equal("InvalidParameterException", type);
        Assert.Contains("Member must satisfy enum value set", message);
    }

    [Fact]
    public void Every_setting_of_the_model_has_a_rule()
        => Assert.Equal(
            Serverless.Core.Api.ServiceModel.Ecs.Shape("SettingName").EnumInOrder,
            AccountSettingRules.All.Select(r => r.Name));
}
