using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests;

/// <summary>The README's tour, command for command, with the AWS CLI.</summary>
[Collection("control plane 3")]
public sealed class ClusterAndTaskDefinitionTourTests(ControlPlaneFixture plane)
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    [Fact]
    public async Task The_readme_tour_works_as_printed()
    {
        var created = (await plane.EcsAsync("create-cluster", "--cluster-name", "tour")).Json["cluster"]!;
        Assert.Equal("arn:aws:ecs:us-east-1:000000000000:cluster/tour", created["clusterArn"]!.GetValue<string>());
        Assert.Equal("ACTIVE", created["status"]!.GetValue<string>());

        var described = (await plane.EcsAsync("describe-clusters", "--clusters", "tour", "--include", "TAGS", "SETTINGS")).Json;
        Assert.Equal("tour", described["clusters"]![0]!["clusterName"]!.GetValue<string>());
        Assert.Empty(described["failures"]!.AsArray());

        var listed = (await plane.EcsAsync("list-clusters")).Json["clusterArns"]!.AsArray().Select(a => a!.GetValue<string>());
        Assert.Contains("arn:aws:ecs:us-east-1:000000000000:cluster/tour", listed);

        var registered = (await plane.EcsAsync("register-task-definition", "--cli-input-json", $"file://{Fixture("web-taskdef.json")}")).Json["taskDefinition"]!;
        var revision = registered["revision"]!.GetValue<int>();
        Assert.Equal($"arn:aws:ecs:us-east-1:000000000000:task-definition/web:{revision}", registered["taskDefinitionArn"]!.GetValue<string>());

        var definition = (await plane.EcsAsync("describe-task-definition", "--task-definition", "web")).Json["taskDefinition"]!;
        Assert.Equal(revision, definition["revision"]!.GetValue<int>());

        var arns = (await plane.EcsAsync("list-task-definitions", "--family-prefix", "web")).Json["taskDefinitionArns"]!.AsArray();
        Assert.Contains(arns, a => a!.GetValue<string>().EndsWith($"web:{revision}", StringComparison.Ordinal));

        var deregistered = (await plane.EcsAsync("deregister-task-definition", "--task-definition", $"web:{revision}")).Json["taskDefinition"]!;
        Assert.Equal("INACTIVE", deregistered["status"]!.GetValue<string>());

        var deleted = (await plane.EcsAsync("delete-cluster", "--cluster", "tour")).Json["cluster"]!;
        Assert.Equal("INACTIVE", deleted["status"]!.GetValue<string>());
        var after = (await plane.EcsAsync("describe-clusters", "--clusters", "tour")).Json["clusters"]![0]!;
        Assert.Equal("INACTIVE", after["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_realistic_multi_container_definition_round_trips_field_for_field()
    {
        var input = JsonNode.Parse(await File.ReadAllTextAsync(Fixture("web-taskdef.json")))!.AsObject();
        input["family"] = "roundtrip";
        var file = Path.Combine(Path.GetTempPath(), $"roundtrip-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, input.ToJsonString());

        var registered = (await plane.EcsAsync("register-task-definition", "--cli-input-json", $"file://{file}")).Json;
        var described = (await plane.EcsAsync("describe-task-definition", "--task-definition", "roundtrip", "--include", "TAGS")).Json;

        var tags = input["tags"]!.DeepClone();
        input.Remove("tags");
        JsonAssert.Contains(input, described["taskDefinition"]);
        JsonAssert.Contains(tags, described["tags"]);
        Assert.True(JsonNode.DeepEquals(registered["taskDefinition"], described["taskDefinition"]),
            "RegisterTaskDefinition and DescribeTaskDefinition return the same task definition");
    }

    [Fact]
    public async Task Twenty_concurrent_registrations_yield_revisions_one_to_twenty()
    {
        var result = await plane.PythonAsync("concurrent_register.py", "concurrent", "20");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var outcome = JsonNode.Parse(result.Stdout)!;
        Assert.Empty(outcome["errors"]!.AsArray());
        Assert.Equal(Enumerable.Range(1, 20), outcome["revisions"]!.AsArray().Select(r => r!.GetValue<int>()));
    }

    [Fact]
    public async Task The_cli_pages_through_hundreds_of_items()
    {
        var script = string.Join(";", Enumerable.Range(0, 120).Select(i => $"c.register_task_definition(family='paged{i % 3}', containerDefinitions=[{{'name':'c','image':'i','memory':64}}])"));
        var seed = await plane.PythonAsync("exec.py", $"import boto3,os;c=boto3.client('ecs',endpoint_url=os.environ['ECS_ENDPOINT']);{script}");
        Assert.True(seed.ExitCode == 0, seed.Stderr);

        var all = (await plane.EcsAsync("list-task-definitions", "--page-size", "7")).Json["taskDefinitionArns"]!.AsArray();
        Assert.Equal(120, all.Count(a => a!.GetValue<string>().Contains("task-definition/paged", StringComparison.Ordinal)));
        var one = (await plane.EcsAsync("list-task-definitions", "--family-prefix", "paged1", "--page-size", "7")).Json["taskDefinitionArns"]!.AsArray();
        Assert.Equal(40, one.Count);
        var families = (await plane.EcsAsync("list-task-definition-families", "--family-prefix", "paged", "--page-size", "1")).Json["families"]!.AsArray();
        Assert.Equal(["paged0", "paged1", "paged2"], families.Select(f => f!.GetValue<string>()));

        var limited = (await plane.EcsAsync("list-task-definitions", "--family-prefix", "paged2", "--max-items", "10", "--sort", "DESC")).Json;
        Assert.Equal(10, limited["taskDefinitionArns"]!.AsArray().Count);
        Assert.EndsWith("paged2:40", limited["taskDefinitionArns"]![0]!.GetValue<string>());
        Assert.NotNull(limited["NextToken"]);
    }

    [Fact]
    public async Task Clusters_and_task_definitions_take_tags()
    {
        var cluster = (await plane.EcsAsync("create-cluster", "--cluster-name", "tagged", "--tags", "key=team,value=a")).Json["cluster"]!["clusterArn"]!.GetValue<string>();
        await plane.EcsAsync("tag-resource", "--resource-arn", cluster, "--tags", "key=env,value=dev", "key=team,value=b");
        await plane.EcsAsync("untag-resource", "--resource-arn", cluster, "--tag-keys", "env");
        var tags = (await plane.EcsAsync("list-tags-for-resource", "--resource-arn", cluster)).Json["tags"]!;
        Assert.Equal("""[{"key":"team","value":"b"}]""", tags.ToJsonString());

        var definition = (await plane.EcsAsync("register-task-definition", "--family", "tagged", "--container-definitions",
            """[{"name":"c","image":"i","memory":64}]""")).Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        await plane.EcsAsync("tag-resource", "--resource-arn", definition, "--tags", "key=k,value=v");
        var definitionTags = (await plane.EcsAsync("list-tags-for-resource", "--resource-arn", definition)).Json["tags"]!;
        Assert.Equal("""[{"key":"k","value":"v"}]""", definitionTags.ToJsonString());

        var missing = await plane.EcsAsync("list-tags-for-resource", "--resource-arn", "arn:aws:ecs:us-east-1:000000000000:cluster/nope");
        Assert.Equal("ResourceNotFoundException", missing.ErrorCode);
    }

    [Fact]
    public async Task Describing_a_missing_cluster_reports_a_failure_not_an_error()
    {
        var described = (await plane.EcsAsync("describe-clusters", "--clusters", "missing-one")).Json;
        Assert.Empty(described["clusters"]!.AsArray());
        Assert.Equal("MISSING", described["failures"]![0]!["reason"]!.GetValue<string>());
    }
}
