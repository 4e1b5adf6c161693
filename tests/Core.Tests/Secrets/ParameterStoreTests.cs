using System.Text;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using Serverless.Core.Tests.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Secrets;

/// <summary>The SSM Parameter Store through the whole endpoint, over real Table Storage: one fresh account per test.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ParameterStoreTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _prefix = TestNames.Unique<ParameterStoreTests>();
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private ApiHarness? _api;

    private ApiHarness Api => _api ??= new ApiHarness(azurite, _prefix);

    public void Dispose() => _api?.Dispose();

    private Task<ApiHarness.Answer> SendAsync(string action, JsonObject body)
        => Api.SendAsync($"AmazonSSM.{action}", Encoding.UTF8.GetBytes(body.ToJsonString()), _token);

    private async Task<JsonObject> OkAsync(string action, JsonObject body)
    {
        var answer = await SendAsync(action, body);
        Assert.True(answer.Status == 200, answer.Raw);
        return answer.Body!;
    }

    private async Task<string?> RefusedAsync(string action, JsonObject body)
    {
        var answer = await SendAsync(action, body);
        Assert.True(answer.Status == 400, answer.Raw);
        return answer.Type;
    }

    private Task<JsonObject> PutAsync(string name, string value, string type = "String", bool overwrite = false)
        => OkAsync("PutParameter", new() { ["Name"] = name, ["Value"] = value, ["Type"] = type, ["Overwrite"] = overwrite });

    [Fact]
    public async Task A_SecureString_is_answered_encrypted_unless_WithDecryption_and_is_never_stored_plain()
    {
        const string secret = "s3cr3t-plaintext-marker";
        Assert.Equal(1, (await PutAsync("/app/db/password", secret, "SecureString"))["Version"]!.GetValue<long>());

        var encrypted = (await OkAsync("GetParameter", new() { ["Name"] = "/app/db/password" }))["Parameter"]!;
        Assert.Equal("SecureString", encrypted["Type"]!.GetValue<string>());
        Assert.NotEqual(secret, encrypted["Value"]!.GetValue<string>());
        Assert.DoesNotContain("s3cr3t", encrypted.ToJsonString());

        var decrypted = (await OkAsync("GetParameter", new() { ["Name"] = "arn:aws:ssm:us-east-1:000000000000:parameter/app/db/password", ["WithDecryption"] = true }))["Parameter"]!;
        Assert.Equal(secret, decrypted["Value"]!.GetValue<string>());
        Assert.Equal("arn:aws:ssm:us-east-1:000000000000:parameter/app/db/password", decrypted["ARN"]!.GetValue<string>());

        var described = (await OkAsync("DescribeParameters", new()))["Parameters"]![0]!;
        Assert.Equal("alias/aws/ssm", described["KeyId"]!.GetValue<string>());

        var table = azurite.CreateTableServiceClient().GetTableClient(_prefix + "Parameters");
        await foreach (var entity in table.QueryAsync<TableEntity>(cancellationToken: _token))
        {
            foreach (var (_, property) in entity)
            {
                var text = property is byte[] b ? Encoding.UTF8.GetString(b) + Encoding.Unicode.GetString(b) : property?.ToString() ?? "";
                Assert.DoesNotContain("s3cr3t", text);
            }
        }
    }

    [Fact]
    public async Task Versions_overwrite_history_and_selectors_behave_as_on_AWS()
    {
        await PutAsync("/svc/url", "one");
        Assert.Equal("ParameterAlreadyExists", await RefusedAsync("PutParameter", new() { ["Name"] = "/svc/url", ["Value"] = "two", ["Type"] = "String" }));
        Assert.Equal(2, (await PutAsync("/svc/url", "two", overwrite: true))["Version"]!.GetValue<long>());
        await PutAsync("/svc/url", "three", "SecureString", overwrite: true);

        Assert.Equal("one", (await OkAsync("GetParameter", new() { ["Name"] = "/svc/url:1" }))["Parameter"]!["Value"]!.GetValue<string>());
        Assert.Equal("ParameterVersionNotFound", await RefusedAsync("GetParameter", new() { ["Name"] = "/svc/url:9" }));

        var history = (await OkAsync("GetParameterHistory", new() { ["Name"] = "/svc/url", ["WithDecryption"] = true }))["Parameters"]!.AsArray();
        Assert.Equal(["one", "two", "three"], history.Select(h => h!["Value"]!.GetValue<string>()));
        Assert.Equal(["String", "String", "SecureString"], history.Select(h => h!["Type"]!.GetValue<string>()));

        await OkAsync("DeleteParameter", new() { ["Name"] = "/svc/url" });
        Assert.Equal("ParameterNotFound", await RefusedAsync("GetParameter", new() { ["Name"] = "/svc/url" }));
        Assert.Equal("ParameterNotFound", await RefusedAsync("DeleteParameter", new() { ["Name"] = "/svc/url" }));
        Assert.Equal(1, (await PutAsync("/svc/url", "again"))["Version"]!.GetValue<long>());
    }

    [Fact]
    public async Task Paths_are_read_one_level_or_recursively_in_pages_and_missing_names_are_reported()
    {
        await PutAsync("/a/x", "1");
        await PutAsync("/a/y", "2", "StringList");
        await PutAsync("/a/b/z", "3");
        await PutAsync("/ab", "not under /a/");
        await PutAsync("top", "4");

        var level = (await OkAsync("GetParametersByPath", new() { ["Path"] = "/a" }))["Parameters"]!.AsArray();
        Assert.Equal(["/a/x", "/a/y"], level.Select(p => p!["Name"]!.GetValue<string>()));

        var names = new List<string>();
        string? token = null;
        do
        {
            var request = new JsonObject { ["Path"] = "/a/", ["Recursive"] = true, ["MaxResults"] = 2 };
            if (token is not null) request["NextToken"] = token;
            var page = await OkAsync("GetParametersByPath", request);
            names.AddRange(page["Parameters"]!.AsArray().Select(p => p!["Name"]!.GetValue<string>()));
            token = page["NextToken"]?.GetValue<string>();
        }
        while (token is not null);
        Assert.Equal(["/a/b/z", "/a/x", "/a/y"], names);

        var many = await OkAsync("GetParameters", new() { ["Names"] = new JsonArray("top", "/a/x", "/nope") });
        Assert.Equal(["/a/x", "top"], many["Parameters"]!.AsArray().Select(p => p!["Name"]!.GetValue<string>()).Order());
        Assert.Equal("""["/nope"]""", many["InvalidParameters"]!.ToJsonString());

        var filtered = await OkAsync("DescribeParameters", new() { ["ParameterFilters"] = new JsonArray(new JsonObject { ["Key"] = "Type", ["Values"] = new JsonArray("StringList") }) });
        Assert.Equal("/a/y", filtered["Parameters"]![0]!["Name"]!.GetValue<string>());

        var deleted = await OkAsync("DeleteParameters", new() { ["Names"] = new JsonArray("/a/x", "/nope") });
        Assert.Equal("""["/a/x"]""", deleted["DeletedParameters"]!.ToJsonString());
        Assert.Equal("""["/nope"]""", deleted["InvalidParameters"]!.ToJsonString());
    }

    [Fact]
    public async Task Bad_names_and_values_are_refused_with_Systems_Managers_errors()
    {
        Assert.Equal("ValidationException", await RefusedAsync("PutParameter", new() { ["Name"] = "/aws/mine", ["Value"] = "x", ["Type"] = "String" }));
        Assert.Equal("ValidationException", await RefusedAsync("PutParameter", new() { ["Name"] = "a/b", ["Value"] = "x", ["Type"] = "String" }));
        Assert.Equal("ValidationException", await RefusedAsync("PutParameter", new() { ["Name"] = "/bad name", ["Value"] = "x", ["Type"] = "String" }));
        Assert.Equal("HierarchyLevelLimitExceededException", await RefusedAsync("PutParameter", new() { ["Name"] = string.Concat(Enumerable.Repeat("/l", 16)), ["Value"] = "x", ["Type"] = "String" }));
        Assert.Equal("ValidationException", await RefusedAsync("PutParameter", new() { ["Name"] = "/big", ["Value"] = new string('x', 4097), ["Type"] = "String" }));
        Assert.Equal("ValidationException", await RefusedAsync("PutParameter", new() { ["Name"] = "/untyped", ["Value"] = "x" }));
        // The model's own constraints (Coral's "validation error detected") are Systems Manager's ValidationException too.
        Assert.Equal("ValidationException", await RefusedAsync("GetParameters", new() { ["Names"] = new JsonArray([.. Enumerable.Range(0, 11).Select(i => (JsonNode)$"/p{i}")]) }));
        Assert.Equal("ValidationException", await RefusedAsync("GetParameter", new() { ["Name"] = "" }));
        var mismatch = await SendAsync("PutParameter", new() { ["Name"] = "/p", ["Value"] = "letters-secret", ["Type"] = "SecureString", ["AllowedPattern"] = "^[0-9]+$" });
        Assert.Equal("ParameterPatternMismatchException", mismatch.Type);
        Assert.DoesNotContain("letters-secret", mismatch.Raw);
        Assert.Empty((await OkAsync("DescribeParameters", new()))["Parameters"]!.AsArray());
    }
}
