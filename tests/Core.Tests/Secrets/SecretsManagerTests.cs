using System.Text;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Secrets;
using Serverless.Core.Tests.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Secrets;

/// <summary>Secrets Manager through the whole endpoint, over real Table Storage: one fresh account per test.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class SecretsManagerTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _prefix = TestNames.Unique<SecretsManagerTests>();
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private ApiHarness? _api;

    private ApiHarness Api => _api ??= new ApiHarness(azurite, _prefix);

    public void Dispose() => _api?.Dispose();

    private static Task<ApiHarness.Answer> SendAsync(ApiHarness api, string action, JsonObject body, CancellationToken token)
        => api.SendAsync($"secretsmanager.{action}", Encoding.UTF8.GetBytes(body.ToJsonString()), token);

    private async Task<JsonObject> OkAsync(string action, JsonObject body, ApiHarness? api = null)
    {
        var answer = await SendAsync(api ?? Api, action, body, _token);
        Assert.True(answer.Status == 200, answer.Raw);
        return answer.Body!;
    }

    private async Task<ApiHarness.Answer> RefusedAsync(string action, JsonObject body)
    {
        var answer = await SendAsync(Api, action, body, _token);
        Assert.True(answer.Status == 400, answer.Raw);
        return answer;
    }

    private async Task<string> ValueAsync(string id, string? stage = null, string? versionId = null)
    {
        var request = new JsonObject { ["SecretId"] = id };
        if (stage is not null) request["VersionStage"] = stage;
        if (versionId is not null) request["VersionId"] = versionId;
        return (await OkAsync("GetSecretValue", request))["SecretString"]!.GetValue<string>();
    }

    [Fact]
    public async Task Putting_a_value_moves_AWSCURRENT_and_AWSPREVIOUS_as_AWS_does()
    {
        var created = await OkAsync("CreateSecret", new() { ["Name"] = "prod/db", ["SecretString"] = "one", ["ClientRequestToken"] = new string('1', 32) });
        var arn = created["ARN"]!.GetValue<string>();
        Assert.Matches(@"^arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-[a-zA-Z0-9]{6}$", arn);
        Assert.Equal(new string('1', 32), created["VersionId"]!.GetValue<string>());

        var second = await OkAsync("PutSecretValue", new() { ["SecretId"] = "prod/db", ["SecretString"] = "two" });
        Assert.Equal("""["AWSCURRENT"]""", second["VersionStages"]!.ToJsonString());
        await OkAsync("PutSecretValue", new() { ["SecretId"] = arn, ["SecretString"] = "three" });

        Assert.Equal("three", await ValueAsync("prod/db"));
        Assert.Equal("three", await ValueAsync(arn));
        Assert.Equal("three", await ValueAsync(arn[..^7])); // a partial ARN, without the random suffix
        Assert.Equal("two", await ValueAsync("prod/db", stage: "AWSPREVIOUS"));
        Assert.Equal("one", await ValueAsync("prod/db", versionId: new string('1', 32)));

        var listed = await OkAsync("ListSecretVersionIds", new() { ["SecretId"] = "prod/db" });
        Assert.Equal(2, listed["Versions"]!.AsArray().Count); // the first is deprecated now: no stages
        var all = await OkAsync("ListSecretVersionIds", new() { ["SecretId"] = "prod/db", ["IncludeDeprecated"] = true });
        Assert.Equal(3, all["Versions"]!.AsArray().Count);

        // Rolling back: AWSCURRENT moves to the previous version, and the one it left becomes AWSPREVIOUS.
        var previousId = second["VersionId"]!.GetValue<string>();
        var describe = await OkAsync("DescribeSecret", new() { ["SecretId"] = "prod/db" });
        var currentId = describe["VersionIdsToStages"]!.AsObject().First(p => p.Value!.ToJsonString().Contains("AWSCURRENT")).Key;
        await OkAsync("UpdateSecretVersionStage", new() { ["SecretId"] = "prod/db", ["VersionStage"] = "AWSCURRENT", ["MoveToVersionId"] = previousId, ["RemoveFromVersionId"] = currentId });
        Assert.Equal("two", await ValueAsync("prod/db"));
        Assert.Equal("three", await ValueAsync("prod/db", stage: "AWSPREVIOUS"));

        var unlabelled = await RefusedAsync("UpdateSecretVersionStage", new() { ["SecretId"] = "prod/db", ["VersionStage"] = "AWSCURRENT", ["MoveToVersionId"] = currentId });
        Assert.Equal("InvalidParameterException", unlabelled.Type);
        var missing = await RefusedAsync("GetSecretValue", new() { ["SecretId"] = "prod/db", ["VersionStage"] = "NOPE" });
        Assert.Equal("ResourceNotFoundException", missing.Type);
    }

    [Fact]
    public async Task A_retried_create_with_its_token_succeeds_and_another_value_is_refused()
    {
        var token = Guid.NewGuid().ToString();
        var first = await OkAsync("CreateSecret", new() { ["Name"] = "retry", ["SecretString"] = "v", ["ClientRequestToken"] = token });
        var again = await OkAsync("CreateSecret", new() { ["Name"] = "retry", ["SecretString"] = "v", ["ClientRequestToken"] = token });
        Assert.Equal(first["ARN"]!.ToJsonString(), again["ARN"]!.ToJsonString());
        Assert.Equal("ResourceExistsException", (await RefusedAsync("CreateSecret", new() { ["Name"] = "retry", ["SecretString"] = "w" })).Type);
        var changed = await RefusedAsync("PutSecretValue", new() { ["SecretId"] = "retry", ["SecretString"] = "w", ["ClientRequestToken"] = token });
        Assert.Equal("ResourceExistsException", changed.Type);
    }

    [Fact]
    public async Task Deletion_waits_out_its_recovery_window_and_restore_brings_the_secret_back()
    {
        await OkAsync("CreateSecret", new() { ["Name"] = "gone", ["SecretString"] = "x" });
        var deleted = await OkAsync("DeleteSecret", new() { ["SecretId"] = "gone", ["RecoveryWindowInDays"] = 7 });
        Assert.NotNull(deleted["DeletionDate"]);

        Assert.Equal("InvalidRequestException", (await RefusedAsync("GetSecretValue", new() { ["SecretId"] = "gone" })).Type);
        Assert.Empty((await OkAsync("ListSecrets", new()))["SecretList"]!.AsArray());
        Assert.Single((await OkAsync("ListSecrets", new() { ["IncludePlannedDeletion"] = true }))["SecretList"]!.AsArray());
        Assert.Equal("InvalidRequestException", (await RefusedAsync("CreateSecret", new() { ["Name"] = "gone", ["SecretString"] = "y" })).Type);

        await OkAsync("RestoreSecret", new() { ["SecretId"] = "gone" });
        Assert.Equal("x", await ValueAsync("gone"));

        var both = await RefusedAsync("DeleteSecret", new() { ["SecretId"] = "gone", ["RecoveryWindowInDays"] = 7, ["ForceDeleteWithoutRecovery"] = true });
        Assert.Equal("InvalidParameterException", both.Type);
        await OkAsync("DeleteSecret", new() { ["SecretId"] = "gone", ["ForceDeleteWithoutRecovery"] = true });
        Assert.Equal("ResourceNotFoundException", (await RefusedAsync("GetSecretValue", new() { ["SecretId"] = "gone" })).Type);
        await OkAsync("CreateSecret", new() { ["Name"] = "gone", ["SecretString"] = "new life" });
        Assert.Equal("new life", await ValueAsync("gone"));
    }

    [Fact]
    public async Task Bad_input_gets_the_models_errors_and_writes_nothing()
    {
        Assert.Equal("ValidationException", (await RefusedAsync("CreateSecret", new() { ["Name"] = "no spaces", ["SecretString"] = "x" })).Type);
        // A model constraint is Coral's ValidationException, and its message never quotes a (sensitive) value.
        var oversized = await RefusedAsync("CreateSecret", new() { ["Name"] = "big", ["SecretString"] = "secret-" + new string('x', 65530) });
        Assert.Equal("ValidationException", oversized.Type);
        Assert.Contains("1 validation error detected: Value at 'SecretString' failed to satisfy constraint: Member must have length less than or equal to 65536", oversized.Raw);
        Assert.DoesNotContain("secret-", oversized.Raw);
        Assert.Equal("ValidationException", (await RefusedAsync("ListSecrets", new() { ["MaxResults"] = 101 })).Type);
        Assert.Equal("InvalidParameterException", (await RefusedAsync("CreateSecret", new() { ["Name"] = "both", ["SecretString"] = "x", ["SecretBinary"] = "eA==" })).Type);
        Assert.Equal("InvalidParameterException", (await RefusedAsync("DeleteSecret", new() { ["SecretId"] = "x", ["RecoveryWindowInDays"] = 3 })).Type);
        Assert.Equal("ResourceNotFoundException", (await RefusedAsync("DescribeSecret", new() { ["SecretId"] = "arn:aws:secretsmanager:us-east-1:000000000000:secret:none-abcdef" })).Type);
        Assert.Empty((await OkAsync("ListSecrets", new()))["SecretList"]!.AsArray());

        // The largest value AWS takes is stored and read back whole.
        var largest = new string('é', 65536);
        await OkAsync("CreateSecret", new() { ["Name"] = "largest", ["SecretString"] = largest });
        Assert.Equal(largest, await ValueAsync("largest"));
    }

    [Fact]
    public async Task Binary_values_tags_filters_paging_and_batch_reads_work_together()
    {
        await OkAsync("CreateSecret", new() { ["Name"] = "app/a", ["SecretBinary"] = Convert.ToBase64String([0, 1, 2, 255]), ["Tags"] = new JsonArray(new JsonObject { ["Key"] = "team", ["Value"] = "blue" }) });
        await OkAsync("CreateSecret", new() { ["Name"] = "app/b", ["SecretString"] = "b", ["Description"] = "second" });
        await OkAsync("CreateSecret", new() { ["Name"] = "other", ["SecretString"] = "c" });

        var binary = await OkAsync("GetSecretValue", new() { ["SecretId"] = "app/a" });
        Assert.Equal(Convert.ToBase64String([0, 1, 2, 255]), binary["SecretBinary"]!.GetValue<string>());
        Assert.Null(binary["SecretString"]);

        var byName = await OkAsync("ListSecrets", new() { ["Filters"] = new JsonArray(new JsonObject { ["Key"] = "name", ["Values"] = new JsonArray("app/") }) });
        Assert.Equal(2, byName["SecretList"]!.AsArray().Count);
        var byTag = await OkAsync("ListSecrets", new() { ["Filters"] = new JsonArray(new JsonObject { ["Key"] = "tag-value", ["Values"] = new JsonArray("blue") }) });
        Assert.Equal("app/a", byTag["SecretList"]![0]!["Name"]!.GetValue<string>());

        var names = new List<string>();
        string? token = null;
        do
        {
            var request = new JsonObject { ["MaxResults"] = 2, ["SortBy"] = "name", ["SortOrder"] = "asc" };
            if (token is not null) request["NextToken"] = token;
            var page = await OkAsync("ListSecrets", request);
            names.AddRange(page["SecretList"]!.AsArray().Select(s => s!["Name"]!.GetValue<string>()));
            token = page["NextToken"]?.GetValue<string>();
        }
        while (token is not null);
        Assert.Equal(["app/a", "app/b", "other"], names);

        await OkAsync("UntagResource", new() { ["SecretId"] = "app/a", ["TagKeys"] = new JsonArray("team") });
        await OkAsync("TagResource", new() { ["SecretId"] = "other", ["Tags"] = new JsonArray(new JsonObject { ["Key"] = "env", ["Value"] = "prod" }) });
        Assert.Equal("env", (await OkAsync("DescribeSecret", new() { ["SecretId"] = "other" }))["Tags"]![0]!["Key"]!.GetValue<string>());

        var batch = await OkAsync("BatchGetSecretValue", new() { ["SecretIdList"] = new JsonArray("app/b", "other", "missing") });
        Assert.Equal(["app/b", "other"], batch["SecretValues"]!.AsArray().Select(v => v!["Name"]!.GetValue<string>()).Order());
        Assert.Equal("ResourceNotFoundException", batch["Errors"]![0]!["ErrorCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Values_are_stored_only_encrypted_and_survive_a_key_rotation()
    {
        const string value = "hunter2-plaintext-marker";
        await OkAsync("CreateSecret", new() { ["Name"] = "rotated", ["SecretString"] = value });
        await OkAsync("PutSecretValue", new() { ["SecretId"] = "rotated", ["SecretString"] = value + "-v2" });

        var table = azurite.CreateTableServiceClient().GetTableClient(_prefix + "Secrets");
        var rows = 0;
        await foreach (var entity in table.QueryAsync<TableEntity>(cancellationToken: _token))
        {
            rows++;
            foreach (var (_, property) in entity)
            {
                var text = property switch
                {
                    string s => s,
                    byte[] b => Encoding.UTF8.GetString(b) + Encoding.Unicode.GetString(b),
                    _ => "",
                };
                Assert.DoesNotContain("hunter2", text);
            }
        }
        Assert.Equal(3, rows); // the metadata and two versions

        // A new key first, the old one kept: old values open, new ones are wrapped by the new key.
        using var rotated = new ApiHarness(azurite, _prefix, services =>
            services.AddSingleton(new SecretsOptions { KeyEncryptionKeys = $"{KeyEncryptionKeys.Generate("next")};{ApiHarness.KeyEncryptionKey}" }));
        Assert.Equal(value + "-v2", (await OkAsync("GetSecretValue", new() { ["SecretId"] = "rotated" }, rotated))["SecretString"]!.GetValue<string>());
        await OkAsync("PutSecretValue", new() { ["SecretId"] = "rotated", ["SecretString"] = value + "-v3" }, rotated);
        var current = await table.GetEntityAsync<TableEntity>("rotated", "secret", cancellationToken: _token);
        Assert.Equal("next", current.Value.GetString("CurKek"));

        // Without the key a value does not open, and the error says nothing of it.
        using var keyless = new ApiHarness(azurite, _prefix, services =>
            services.AddSingleton(new SecretsOptions { KeyEncryptionKeys = KeyEncryptionKeys.Generate("other") }));
        var refused = await SendAsync(keyless, "GetSecretValue", new() { ["SecretId"] = "rotated" }, _token);
        Assert.Equal("DecryptionFailure", refused.Type);
        Assert.DoesNotContain("hunter2", refused.Raw);
    }
}
