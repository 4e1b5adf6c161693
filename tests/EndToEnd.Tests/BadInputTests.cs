using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests;

/// <summary>Bad requests get the AWS error a client expects, and none of them writes anything.</summary>
[Collection("control plane 3")]
public sealed class BadInputTests(ControlPlaneFixture plane)
{
    private const string Ecs = "AmazonEC2ContainerServiceV20141113.";

    private async Task<(int Status, string? Type, string? Message)> RawAsync(string target, string body, params string[] options)
    {
        var result = await plane.PythonAsync("raw_request.py", [target, body, .. options]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        var json = JsonNode.Parse(result.Stdout)!;
        return (json["status"]!.GetValue<int>(), json["body"]?["__type"]?.GetValue<string>(), json["body"]?["message"]?.GetValue<string>());
    }

    [Fact]
    public async Task Malformed_json_is_a_serialization_exception()
    {
        var (status, type, _) = await RawAsync(Ecs + "ListClusters", "{\"maxResults\": ");
        Assert.Equal((400, "SerializationException"), (status, type));
    }

    [Fact]
    public async Task A_member_of_the_wrong_type_is_a_serialization_exception()
    {
        var (status, type, _) = await RawAsync(Ecs + "RegisterTaskDefinition", """{"family":"typed","containerDefinitions":[{"name":"c","image":"i","memory":"lots"}]}""");
        Assert.Equal((400, "SerializationException"), (status, type));
        await AssertFamilyAbsentAsync("typed");
    }

    [Fact]
    public async Task An_unknown_action_is_an_unknown_operation()
    {
        var (status, type, _) = await RawAsync(Ecs + "LaunchRockets", "{}");
        Assert.Equal((400, "UnknownOperationException"), (status, type));
    }

    [Fact]
    public async Task A_missing_required_member_is_named_in_the_error()
    {
        var (status, type, message) = await RawAsync(Ecs + "RegisterTaskDefinition", """{"family":"norequired"}""");
        Assert.Equal((400, "InvalidParameterException"), (status, type));
        Assert.Contains("containerDefinitions", message);
    }

    [Fact]
    public async Task An_oversized_body_is_refused_before_it_is_read()
    {
        var body = "{\"family\":\"" + new string('x', 2 * 1024 * 1024) + "\"}";
        var file = Path.Combine(Path.GetTempPath(), $"big-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, body);
        var (status, type, _) = await RawAsync(Ecs + "RegisterTaskDefinition", file);
        Assert.Equal((413, "RequestEntityTooLargeException"), (status, type));
    }

    [Theory]
    [InlineData("bad family!")]
    [InlineData("")]
    public async Task An_invalid_family_name_is_refused_with_nothing_written(string family)
    {
        var result = await plane.EcsAsync("register-task-definition", "--family", family, "--container-definitions", """[{"name":"c","image":"i","memory":64}]""");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(result.ErrorCode, new[] { "ClientException", "InvalidParameterException" });
    }

    [Fact]
    public async Task An_invalid_cluster_name_is_refused()
    {
        var result = await plane.EcsAsync("create-cluster", "--cluster-name", "no spaces allowed");
        Assert.Equal("InvalidParameterException", result.ErrorCode);
    }

    [Fact]
    public async Task A_request_signed_with_the_wrong_secret_is_an_invalid_signature()
    {
        var result = await plane.AwsAsync(["ecs", "list-clusters"], new Dictionary<string, string> { ["AWS_SECRET_ACCESS_KEY"] = "wrong-secret" });
        Assert.Equal("InvalidSignatureException", result.ErrorCode);
    }

    [Fact]
    public async Task An_unsigned_request_is_missing_its_authentication_token()
    {
        var result = await plane.AwsAsync(["ecs", "list-clusters", "--no-sign-request"]);
        Assert.Equal("MissingAuthenticationTokenException", result.ErrorCode);
    }

    [Fact]
    public async Task An_unknown_access_key_is_an_unrecognized_client()
    {
        var result = await plane.AwsAsync(["ecs", "list-clusters"], new Dictionary<string, string> { ["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNKEY000000" });
        Assert.Equal("UnrecognizedClientException", result.ErrorCode);
    }

    [Fact]
    public async Task A_signature_older_than_five_minutes_has_expired()
    {
        var (status, type, message) = await RawAsync(Ecs + "ListClusters", "{}", "--date-offset-seconds", "-600");
        Assert.Equal((400, "InvalidSignatureException"), (status, type));
        Assert.StartsWith("Signature expired", message);
    }

    [Fact]
    public async Task A_refused_registration_writes_nothing()
    {
        var result = await plane.EcsAsync("register-task-definition", "--family", "halfwritten", "--container-definitions",
            """[{"name":"same","image":"i","memory":64},{"name":"same","image":"i","memory":64}]""");
        Assert.NotEqual(0, result.ExitCode);
        await AssertFamilyAbsentAsync("halfwritten");
    }

    private async Task AssertFamilyAbsentAsync(string family)
    {
        var families = (await plane.EcsAsync("list-task-definition-families", "--family-prefix", family, "--status", "ALL")).Json["families"]!.AsArray();
        Assert.Empty(families);
    }
}
