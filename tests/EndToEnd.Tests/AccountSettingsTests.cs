using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests;

/// <summary>The account-settings actions with the AWS CLI, as a user would drive them.</summary>
[Collection("control plane 3")]
public sealed class AccountSettingsTests(ControlPlaneFixture plane)
{
    private static string Names(JsonNode settings)
        => string.Join(',', settings.AsArray().Select(s => $"{s!["name"]}={s["value"]}:{s["type"]}"));

    [Fact]
    public async Task The_cli_puts_lists_applies_and_deletes_account_settings()
    {
        // The caller's own setting: other tests' clusters (made by other callers' defaults) are not touched.
        var put = (await plane.EcsAsync("put-account-setting", "--name", "containerInsights", "--value", "enabled")).Json["setting"]!;
        var caller = put["principalArn"]!.GetValue<string>();
        Assert.StartsWith("arn:aws:iam::000000000000:user/", caller);
        Assert.Equal("user", put["type"]!.GetValue<string>());
        try
        {
            var own = (await plane.EcsAsync("list-account-settings")).Json["settings"]!;
            Assert.Contains("containerInsights=enabled:user", Names(own));

            // The CLI pages through every effective setting (ten to a page) on its own.
            var effective = (await plane.EcsAsync("list-account-settings", "--effective-settings")).Json["settings"]!;
            Assert.Equal(11, effective.AsArray().Count);
            Assert.Contains("serviceLongArnFormat=enabled:aws_managed", Names(effective));

            var cluster = (await plane.EcsAsync("create-cluster", "--cluster-name", "insightful")).Json["cluster"]!;
            Assert.Equal("""[{"name":"containerInsights","value":"enabled"}]""", cluster["settings"]!.ToJsonString());

            var refused = await plane.EcsAsync("put-account-setting", "--name", "containerInsights", "--value", "sometimes");
            Assert.Equal("InvalidParameterException", refused.ErrorCode);
        }
        finally
        {
            var deleted = (await plane.EcsAsync("delete-account-setting", "--name", "containerInsights")).Json["setting"]!;
            Assert.Equal(caller, deleted["principalArn"]!.GetValue<string>());
            await plane.EcsAsync("delete-cluster", "--cluster", "insightful");
        }

        var after = (await plane.EcsAsync("list-account-settings", "--effective-settings", "--name", "containerInsights")).Json["settings"]!;
        Assert.Equal("containerInsights=disabled:aws_managed", Names(after));
    }

    [Fact]
    public async Task The_account_default_is_set_with_put_account_setting_default()
    {
        var put = (await plane.EcsAsync("put-account-setting-default", "--name", "awsvpcTrunking", "--value", "enabled")).Json["setting"]!;
        Assert.Equal("arn:aws:iam::000000000000:root", put["principalArn"]!.GetValue<string>());
        try
        {
            var effective = (await plane.EcsAsync("list-account-settings", "--effective-settings", "--name", "awsvpcTrunking")).Json["settings"]!;
            Assert.Equal("awsvpcTrunking=enabled:user", Names(effective));
        }
        finally
        {
            await plane.EcsAsync("delete-account-setting", "--name", "awsvpcTrunking", "--principal-arn", "arn:aws:iam::000000000000:root");
        }
    }
}
