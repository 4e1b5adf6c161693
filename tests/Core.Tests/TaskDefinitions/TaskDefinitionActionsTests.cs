using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.TaskDefinitions;
using Serverless.TestSupport;
using static Serverless.Core.Tests.TaskDefinitions.TaskDefinitionRequests;

namespace Serverless.Core.Tests.TaskDefinitions;

/// <summary>The six task definition actions as the API calls them: model-validated JSON in, the model's output shape out.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskDefinitionActionsTests
{
    private const string ArnPrefix = "arn:aws:ecs:us-east-1:000000000000:task-definition/";
    private readonly ActionRegistry _registry;
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public TaskDefinitionActionsTests(AzuriteFixture azurite)
    {
        var tables = new TaskDefinitionTables(azurite.ConnectionString);
        _registry = new ActionRegistry([new TaskDefinitionActions(tables.NewStore(), tables.Arns)]);
    }

    /// <summary>Calls <paramref name="action"/> the way the front end does: validate against the model, then the handler.</summary>
    private async Task<JsonObject> CallAsync(string action, string json)
    {
        var request = RequestValidator.Validate(ServiceModel.Ecs, ServiceModel.Ecs.InputOf(action)!, JsonNode.Parse(json)!.AsObject());
        Assert.True(_registry.TryGet($"{ActionRegistry.EcsTargetPrefix}.{action}", out var handler));
        var response = await handler(request, new RequestContext("AKIDTEST"), _token);
        // The answer must be serialisable exactly as it will be sent.
        return JsonNode.Parse(response.ToJsonString(AwsJson.Options))!.AsObject();
    }

    private Task<JsonObject> RegisterAsync(string family, string container = """{"name":"c","image":"i","memory":64}""")
        => CallAsync("RegisterTaskDefinition", $$"""{"family":"{{family}}","containerDefinitions":[{{container}}]}""");

    [Fact]
    public async Task A_realistic_multi_container_definition_round_trips_field_for_field()
    {
        var input = Register(Realistic);
        var registered = await CallAsync("RegisterTaskDefinition", Realistic);
        var described = await CallAsync("DescribeTaskDefinition", """{"taskDefinition":"shop","include":["TAGS"]}""");

        Assert.True(JsonNode.DeepEquals(registered["taskDefinition"], described["taskDefinition"]), described.ToJsonString());
        Assert.True(JsonNode.DeepEquals(input["tags"], described["tags"]));
        Assert.True(JsonNode.DeepEquals(input["tags"], registered["tags"]));

        var definition = described["taskDefinition"]!.AsObject();
        // Every member sent comes back as sent, except what ECS normalises (cpu, memory) and the tags.
        foreach (var (name, value) in input)
        {
            if (name is "tags" or "containerDefinitions" or "volumes" or "cpu" or "memory") continue;
            Assert.True(JsonNode.DeepEquals(value, definition[name]), $"{name}: {definition[name]?.ToJsonString()}");
        }
        Assert.Equal("1024", definition["cpu"]!.GetValue<string>());
        Assert.Equal("2048", definition["memory"]!.GetValue<string>());
        for (var i = 0; i < 3; i++)
        {
            var sent = input.Container(i);
            var back = definition["containerDefinitions"]![i]!.AsObject();
            foreach (var (name, value) in sent)
            {
                if (name is "portMappings" or "healthCheck") continue;
                Assert.True(JsonNode.DeepEquals(value, back[name]), $"container {i} {name}: {back[name]?.ToJsonString()}");
            }
        }

        var web = definition["containerDefinitions"]![0]!;
        Assert.Equal("""[{"containerPort":8080,"hostPort":8080,"protocol":"tcp","name":"http","appProtocol":"http"},{"containerPort":9090,"hostPort":0,"protocol":"tcp"}]""",
            web["portMappings"]!.ToJsonString());
        Assert.Equal("""{"command":["CMD-SHELL","wget -q -O- http://127.0.0.1:8080/ || exit 1"],"interval":10,"timeout":3,"retries":2,"startPeriod":5}""",
            web["healthCheck"]!.ToJsonString());
        var migrate = definition["containerDefinitions"]![1]!;
        Assert.Equal(0, migrate["cpu"]!.GetValue<int>());
        Assert.Equal("""[{"name":"data","dockerVolumeConfiguration":{"scope":"task","driver":"local","labels":{"app":"shop"}}},{"name":"host-logs","host":{"sourcePath":"/var/log"}},{"name":"scratch","host":{}}]""",
            definition["volumes"]!.ToJsonString());

        Assert.Equal(ArnPrefix + "shop:1", definition["taskDefinitionArn"]!.GetValue<string>());
        Assert.Equal(1, definition["revision"]!.GetValue<int>());
        Assert.Equal("ACTIVE", definition["status"]!.GetValue<string>());
        Assert.Equal("""["EXTERNAL","EC2"]""", definition["compatibilities"]!.ToJsonString());
        Assert.Equal("arn:aws:iam::000000000000:user/AKIDTEST", definition["registeredBy"]!.GetValue<string>());
        Assert.Equal(System.Text.Json.JsonValueKind.Number, definition["registeredAt"]!.GetValueKind());
    }

    [Fact]
    public async Task Registering_without_tags_answers_without_tags()
    {
        var registered = await RegisterAsync("plain");
        Assert.False(registered.ContainsKey("tags"));
    }

    [Theory]
    [InlineData("web")]
    [InlineData("web:2")]
    [InlineData(ArnPrefix + "web:2")]
    [InlineData(ArnPrefix + "web")]
    public async Task A_definition_is_described_by_family_family_revision_or_arn(string identifier)
    {
        await RegisterAsync("web");
        await RegisterAsync("web");
        var described = await CallAsync("DescribeTaskDefinition", $$"""{"taskDefinition":"{{identifier}}"}""");
        Assert.Equal(ArnPrefix + "web:2", described["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>());
        Assert.False(described.ContainsKey("tags"));
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("web:3")]
    [InlineData("web:0")]
    [InlineData("bad name")]
    [InlineData("arn:aws:ecs:eu-west-1:000000000000:task-definition/web:1")]
    [InlineData("arn:aws:ecs:us-east-1:000000000000:cluster/web")]
    public async Task An_unknown_definition_cannot_be_described(string identifier)
    {
        await RegisterAsync("web");
        var error = await Assert.ThrowsAsync<ClientException>(() => CallAsync("DescribeTaskDefinition", $$"""{"taskDefinition":"{{identifier}}"}"""));
        Assert.Equal("Unable to describe task definition.", error.Message);
    }

    [Fact]
    public async Task A_revision_that_is_not_a_number_is_an_invalid_parameter()
    {
        var error = await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("DescribeTaskDefinition", """{"taskDefinition":"web:latest"}"""));
        Assert.Equal("Invalid revision number. Number: latest", error.Message);
    }

    [Fact]
    public async Task Describing_a_family_whose_revisions_are_all_inactive_fails_but_a_revision_still_describes()
    {
        await RegisterAsync("web");
        await CallAsync("DeregisterTaskDefinition", """{"taskDefinition":"web:1"}""");

        await Assert.ThrowsAsync<ClientException>(() => CallAsync("DescribeTaskDefinition", """{"taskDefinition":"web"}"""));
        var described = await CallAsync("DescribeTaskDefinition", """{"taskDefinition":"web:1"}""");
        Assert.Equal("INACTIVE", described["taskDefinition"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Deregister_then_delete_walks_a_revision_through_its_statuses()
    {
        await RegisterAsync("web");
        await RegisterAsync("web");

        var deregistered = (await CallAsync("DeregisterTaskDefinition", $$"""{"taskDefinition":"{{ArnPrefix}}web:1"}"""))["taskDefinition"]!;
        Assert.Equal("INACTIVE", deregistered["status"]!.GetValue<string>());
        Assert.NotNull(deregistered["deregisteredAt"]);
        var again = (await CallAsync("DeregisterTaskDefinition", """{"taskDefinition":"web:1"}"""))["taskDefinition"]!;
        Assert.True(JsonNode.DeepEquals(deregistered, again), "deregistering an INACTIVE revision returns it unchanged");

        var deleted = await CallAsync("DeleteTaskDefinitions", $$"""{"taskDefinitions":["web:1","web:2","web:9","nope:1","web","{{ArnPrefix}}web:1"]}""");

        var done = deleted["taskDefinitions"]!.AsArray();
        Assert.Equal(2, done.Count);
        Assert.All(done, d => Assert.Equal("DELETE_IN_PROGRESS", d!["status"]!.GetValue<string>()));
        Assert.NotNull(done[0]!["deleteRequestedAt"]);
        Assert.Equal(
            $$"""
            [{"arn":"{{ArnPrefix}}web:2","reason":"The specified task definition is still in ACTIVE status. Please deregister the target and try again."},{"arn":"{{ArnPrefix}}web:9","reason":"The specified task definition does not exist. Specify a valid account, family, revision and try again."},{"arn":"{{ArnPrefix}}nope:1","reason":"The specified task definition does not exist. Specify a valid account, family, revision and try again."},{"arn":"web","reason":"The specified task definition identifier is invalid. Specify a valid name or ARN and try again."}]
            """,
            deleted["failures"]!.ToJsonString());

        var listed = await CallAsync("ListTaskDefinitions", """{"status":"DELETE_IN_PROGRESS"}""");
        Assert.Equal($$"""["{{ArnPrefix}}web:1"]""", listed["taskDefinitionArns"]!.ToJsonString());
    }

    [Fact]
    public async Task Deregistering_needs_a_revision_that_exists()
    {
        await RegisterAsync("web");
        Assert.Equal("Revision is missing.", (await Assert.ThrowsAsync<ClientException>(() => CallAsync("DeregisterTaskDefinition", """{"taskDefinition":"web"}"""))).Message);
        Assert.Equal("Unable to describe task definition.", (await Assert.ThrowsAsync<ClientException>(() => CallAsync("DeregisterTaskDefinition", """{"taskDefinition":"web:2"}"""))).Message);
    }

    [Theory]
    [InlineData("""{"taskDefinitions":[]}""", "size of TaskDefinition references list must be greater than 0")]
    [InlineData("""{"taskDefinitions":["a:1","a:2","a:3","a:4","a:5","a:6","a:7","a:8","a:9","a:10","a:11"]}""", "Size of TaskDefinition references list cannot exceed 10")]
    public async Task Deleting_takes_one_to_ten_definitions(string json, string message)
        => Assert.Equal(message, (await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("DeleteTaskDefinitions", json))).Message);

    [Fact]
    public async Task The_cli_can_page_through_hundreds_of_definitions_of_one_family_in_descending_order()
    {
        foreach (var family in new[] { "svc", "svc-b", "other" })
            for (var i = 0; i < 100; i++) await RegisterAsync(family);

        // familyPrefix is the whole family name on ECS: "svc" does not list svc-b.
        var descending = await ListAllAsync("ListTaskDefinitions", "taskDefinitionArns", """ "familyPrefix":"svc","sort":"DESC","maxResults":30 """);
        var expected = Enumerable.Range(1, 100).Reverse().Select(r => $"{ArnPrefix}svc:{r}");
        Assert.Equal(expected, descending);

        var ascending = await ListAllAsync("ListTaskDefinitions", "taskDefinitionArns", "");
        Assert.Equal(300, ascending.Count);
        Assert.Equal($"{ArnPrefix}other:1", ascending[0]);
        Assert.Equal($"{ArnPrefix}svc-b:100", ascending[^1]);

        var families = await ListAllAsync("ListTaskDefinitionFamilies", "families", """ "maxResults":1 """);
        Assert.Equal(["other", "svc", "svc-b"], families);
    }

    [Fact]
    public async Task Family_listing_filters_on_whether_a_family_has_an_active_revision()
    {
        await RegisterAsync("alive");
        await RegisterAsync("retired");
        await CallAsync("DeregisterTaskDefinition", """{"taskDefinition":"retired:1"}""");

        Assert.Equal("""["alive","retired"]""", (await CallAsync("ListTaskDefinitionFamilies", "{}"))["families"]!.ToJsonString());
        Assert.Equal("""["alive","retired"]""", (await CallAsync("ListTaskDefinitionFamilies", """{"status":"ALL"}"""))["families"]!.ToJsonString());
        Assert.Equal("""["alive"]""", (await CallAsync("ListTaskDefinitionFamilies", """{"status":"ACTIVE"}"""))["families"]!.ToJsonString());
        Assert.Equal("""["retired"]""", (await CallAsync("ListTaskDefinitionFamilies", """{"status":"INACTIVE","familyPrefix":"re"}"""))["families"]!.ToJsonString());
    }

    [Theory]
    [InlineData("ListTaskDefinitions", """{"maxResults":0}""")]
    [InlineData("ListTaskDefinitions", """{"maxResults":101}""")]
    [InlineData("ListTaskDefinitions", """{"nextToken":"!!not-base64!!"}""")]
    [InlineData("ListTaskDefinitions", """{"nextToken":"bm90LWEta2V5"}""")]
    [InlineData("ListTaskDefinitionFamilies", """{"maxResults":0}""")]
    public async Task Paging_parameters_out_of_range_are_invalid(string action, string json)
        => await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync(action, json));

    [Fact]
    public async Task Invalid_registrations_are_refused_before_anything_is_stored()
    {
        var error = await Assert.ThrowsAsync<ClientException>(() => RegisterAsync("web", """{"name":"c","image":"i"}"""));
        Assert.Equal("Invalid setting for container 'c'. At least one of 'memory' or 'memoryReservation' must be specified.", error.Message);
        Assert.Equal("[]", (await CallAsync("ListTaskDefinitionFamilies", "{}"))["families"]!.ToJsonString());
    }

    [Fact]
    public async Task Ephemeral_storage_is_kept_within_21_to_200_GiB_and_refused_outside_before_anything_is_stored()
    {
        static string Fargate(string storage) => $$"""
            {"family":"big","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512",
             "containerDefinitions":[{"name":"c","image":"i"}],"ephemeralStorage":{{storage}}}
            """;
        Assert.Equal("EphemeralStorage size should be at most 200",
            (await Assert.ThrowsAsync<ClientException>(() => CallAsync("RegisterTaskDefinition", Fargate("""{"sizeInGiB":201}""")))).Message);
        Assert.Equal("EphemeralStorage size should be at least 21",
            (await Assert.ThrowsAsync<ClientException>(() => CallAsync("RegisterTaskDefinition", Fargate("""{"sizeInGiB":20}""")))).Message);
        // sizeInGiB is required by the model: the front end's validation error, before the action.
        await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("RegisterTaskDefinition", Fargate("{}")));
        Assert.Equal("[]", (await CallAsync("ListTaskDefinitionFamilies", "{}"))["families"]!.ToJsonString());

        var registered = await CallAsync("RegisterTaskDefinition", Fargate("""{"sizeInGiB":50}"""));
        Assert.Equal(50, registered["taskDefinition"]!["ephemeralStorage"]!["sizeInGiB"]!.GetValue<int>());
        var described = await CallAsync("DescribeTaskDefinition", """{"taskDefinition":"big"}""");
        Assert.Equal(50, described["taskDefinition"]!["ephemeralStorage"]!["sizeInGiB"]!.GetValue<int>());
    }

    /// <summary>Follows <c>nextToken</c> to the end, as the CLI's auto-pagination does.</summary>
    private async Task<List<string>> ListAllAsync(string action, string resultKey, string members)
    {
        var all = new List<string>();
        string? token = null;
        for (var pages = 0; pages < 1000; pages++)
        {
            var parts = new[] { members.Trim(), token is null ? "" : $"\"nextToken\":\"{token}\"" }.Where(p => p.Length > 0);
            var page = await CallAsync(action, "{" + string.Join(",", parts) + "}");
            all.AddRange(page[resultKey]!.AsArray().Select(a => a!.GetValue<string>()));
            token = page["nextToken"]?.GetValue<string>();
            if (token is null) return all;
        }
        throw new InvalidOperationException("Paging did not end");
    }
}
