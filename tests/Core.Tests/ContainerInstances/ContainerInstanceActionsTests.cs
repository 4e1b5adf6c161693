using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Tags;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.ContainerInstances;

/// <summary>The container instance and attribute actions as the API calls them: model-validated JSON in, the model's output shape out.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ContainerInstanceActionsTests : IAsyncLifetime
{
    private const string ArnPrefix = "arn:aws:ecs:us-east-1:000000000000:container-instance/";
    private readonly ContainerInstanceTables _tables;
    private readonly ContainerInstanceStore _store;
    private readonly ClusterStore _clusters;
    private readonly ActionRegistry _registry;
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public ContainerInstanceActionsTests(AzuriteFixture azurite)
    {
        _tables = new ContainerInstanceTables(azurite.ConnectionString);
        _store = _tables.NewStore();
        _clusters = _tables.NewClusterStore();
        _registry = new ActionRegistry([
            _tables.NewActions(_store, _clusters), new TagActions([new ContainerInstanceTags(_store, _tables.Arns)]),
            new ClusterActions(_clusters, [new ContainerInstanceUsage(_store)], _tables.Arns, _tables.Time)]);
    }

    public async Task InitializeAsync()
    {
        await _clusters.TryAddAsync(new ClusterRecord { Name = "default" }, _token);
        await _clusters.TryAddAsync(new ClusterRecord { Name = "prod" }, _token);
        await _clusters.TryAddAsync(new ClusterRecord { Name = "gone", Status = ClusterRecord.Inactive }, _token);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    /// <summary>Calls <paramref name="action"/> the way the front end does: validate against the model, then the handler.</summary>
    private async Task<JsonObject> CallAsync(string action, string json)
    {
        var request = RequestValidator.Validate(ServiceModel.Ecs, ServiceModel.Ecs.InputOf(action)!, JsonNode.Parse(json)!.AsObject());
        Assert.True(_registry.TryGet($"{ActionRegistry.EcsTargetPrefix}.{action}", out var handler));
        var response = await handler(request, new RequestContext("AKIDTEST"), _token);
        // The answer must be serialisable exactly as it will be sent.
        return JsonNode.Parse(response.ToJsonString(AwsJson.Options))!.AsObject();
    }

    private const string IdentityDocument = """{\"instanceId\":\"i-0abc\",\"region\":\"us-east-1\",\"availabilityZone\":\"us-east-1b\",\"instanceType\":\"m5.large\",\"imageId\":\"ami-1\",\"architecture\":\"x86_64\",\"accountId\":\"000000000000\"}""";

    private static string Registration(string cluster = "default", int cpu = 2048, int memory = 3840, string extra = "")
        => $$"""
        {
          "cluster": "{{cluster}}",
          "instanceIdentityDocument": "{{IdentityDocument}}",
          "totalResources": [
            { "name": "CPU", "type": "INTEGER", "integerValue": {{cpu}} },
            { "name": "MEMORY", "type": "INTEGER", "integerValue": {{memory}} },
            { "name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375", "2376", "51678", "51679"] },
            { "name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": [] }
          ],
          "versionInfo": { "agentVersion": "1.80.0", "agentHash": "abc123", "dockerVersion": "DockerVersion: 20.10.24" },
          "attributes": [ { "name": "ecs.capability.privileged-container" }, { "name": "stack", "value": "prod" } ]
          {{extra}}
        }
        """;

    private async Task<JsonObject> RegisterAsync(string cluster = "default", int cpu = 2048, int memory = 3840, string extra = "")
        => (JsonObject)(await CallAsync("RegisterContainerInstance", Registration(cluster, cpu, memory, extra)))["containerInstance"]!;

    private static string Id(JsonNode instance) => instance["containerInstanceArn"]!.GetValue<string>().Split('/')[^1];

    [Fact]
    public async Task Registering_answers_the_instance_as_ecs_describes_it()
    {
        var instance = await RegisterAsync(extra: """, "tags": [ { "key": "env", "value": "test" } ]""");

        var id = Id(instance);
        Assert.Matches("^[0-9a-f]{32}$", id);
        Assert.Equal(ArnPrefix + "default/" + id, instance["containerInstanceArn"]!.GetValue<string>());
        Assert.Equal("i-0abc", instance["ec2InstanceId"]!.GetValue<string>());
        Assert.Equal(1, instance["version"]!.GetValue<long>());
        Assert.Equal("""{"agentVersion":"1.80.0","agentHash":"abc123","dockerVersion":"DockerVersion: 20.10.24"}""", instance["versionInfo"]!.ToJsonString());
        const string resources = """
            [{"name":"CPU","type":"INTEGER","doubleValue":0,"longValue":0,"integerValue":2048},{"name":"MEMORY","type":"INTEGER","doubleValue":0,"longValue":0,"integerValue":3840},{"name":"PORTS","type":"STRINGSET","doubleValue":0,"longValue":0,"integerValue":0,"stringSetValue":["22","2375","2376","51678","51679"]},{"name":"PORTS_UDP","type":"STRINGSET","doubleValue":0,"longValue":0,"integerValue":0,"stringSetValue":[]}]
            """;
        Assert.Equal(resources, instance["registeredResources"]!.ToJsonString());
        Assert.Equal(resources, instance["remainingResources"]!.ToJsonString());
        Assert.Equal("ACTIVE", instance["status"]!.GetValue<string>());
        Assert.False(instance.ContainsKey("statusReason"));
        Assert.True(instance["agentConnected"]!.GetValue<bool>());
        Assert.Equal((0, 0), (instance["runningTasksCount"]!.GetValue<int>(), instance["pendingTasksCount"]!.GetValue<int>()));
        Assert.Equal(
            """[{"name":"ecs.capability.privileged-container"},{"name":"stack","value":"prod"},{"name":"ecs.os-type","value":"linux"},{"name":"ecs.os-family","value":"LINUX"},{"name":"ecs.availability-zone","value":"us-east-1b"},{"name":"ecs.instance-type","value":"m5.large"},{"name":"ecs.ami-id","value":"ami-1"},{"name":"ecs.cpu-architecture","value":"x86_64"}]""",
            instance["attributes"]!.ToJsonString());
        Assert.Equal(ContainerInstanceTables.Start.ToUnixTimeSeconds(), instance["registeredAt"]!.GetValue<double>());
        Assert.Equal("[]", instance["attachments"]!.ToJsonString());
        Assert.Equal("""[{"key":"env","value":"test"}]""", instance["tags"]!.ToJsonString());

        var model = ServiceModel.Ecs.Shape("ContainerInstance");
        Assert.All(instance, member => Assert.True(model.Members.ContainsKey(member.Key), member.Key));
    }

    [Fact]
    public async Task A_registration_needs_cpu_and_memory_and_sane_ports()
    {
        var noMemory = """{"totalResources":[{"name":"CPU","type":"INTEGER","integerValue":1024}]}""";
        Assert.Equal("totalResources must include CPU and MEMORY.",
            (await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("RegisterContainerInstance", noMemory))).Message);

        var badPort = """{"totalResources":[{"name":"CPU","integerValue":1},{"name":"MEMORY","integerValue":1},{"name":"PORTS","stringSetValue":["http"]}]}""";
        await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("RegisterContainerInstance", badPort));

        var badDocument = """{"instanceIdentityDocument":"{not json","totalResources":[{"name":"CPU","integerValue":1},{"name":"MEMORY","integerValue":1}]}""";
        await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("RegisterContainerInstance", badDocument));
    }

    [Fact]
    public async Task Without_an_identity_document_the_instance_id_stands_in_for_the_ec2_instance_id()
    {
        var instance = (await CallAsync("RegisterContainerInstance",
            """{"totalResources":[{"name":"CPU","type":"INTEGER","integerValue":512},{"name":"MEMORY","type":"INTEGER","longValue":256}]}"""))["containerInstance"]!;
        Assert.Equal(Id(instance), instance["ec2InstanceId"]!.GetValue<string>());
        Assert.Equal(256, instance["registeredResources"]![1]!["integerValue"]!.GetValue<int>());
        Assert.Equal("""["22","2375","2376","51678","51679"]""", instance["registeredResources"]![2]!["stringSetValue"]!.ToJsonString());
    }

    [Fact]
    public async Task Re_registering_by_arn_keeps_the_instance_and_its_reservations()
    {
        var first = await RegisterAsync();
        var arn = first["containerInstanceArn"]!.GetValue<string>();
        var seen = await _store.FindAsync("default", Id(first), _token);
        await _store.TryReserveAsync(seen!, new Reservation("t1", 512, 1024, [8080], [53]), _token);

        var again = await RegisterAsync(cpu: 4096, extra: $$""", "containerInstanceArn": "{{arn}}" """);

        Assert.Equal(arn, again["containerInstanceArn"]!.GetValue<string>());
        Assert.Equal(3, again["version"]!.GetValue<long>());
        Assert.Equal(4096, again["registeredResources"]![0]!["integerValue"]!.GetValue<int>());
        Assert.Equal(3584, again["remainingResources"]![0]!["integerValue"]!.GetValue<int>());
        Assert.Equal(2816, again["remainingResources"]![1]!["integerValue"]!.GetValue<int>());
        Assert.Equal("""["22","2375","2376","51678","51679","8080"]""", again["remainingResources"]![2]!["stringSetValue"]!.ToJsonString());
        Assert.Equal("""["53"]""", again["remainingResources"]![3]!["stringSetValue"]!.ToJsonString());
    }

    [Fact]
    public async Task A_deregistered_instance_cannot_register_again()
    {
        var first = await RegisterAsync();
        await CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{Id(first)}}"}""");

        var error = await Assert.ThrowsAsync<ClientException>(() => RegisterAsync(extra: $$""", "containerInstanceArn": "{{first["containerInstanceArn"]}}" """));

        Assert.Equal($"Container instance {Id(first)} is inactive.", error.Message);
    }

    [Fact]
    public async Task An_arn_of_another_cluster_cannot_be_re_registered_here()
    {
        var first = await RegisterAsync(cluster: "prod");
        await Assert.ThrowsAsync<InvalidParameterException>(() => RegisterAsync(extra: $$""", "containerInstanceArn": "{{first["containerInstanceArn"]}}" """));
    }

    [Fact]
    public async Task Describing_answers_each_instance_by_id_or_arn_and_the_rest_as_missing()
    {
        var a = await RegisterAsync();
        var b = await RegisterAsync(extra: """, "tags": [ { "key": "k", "value": "v" } ]""");
        var unknown = ContainerInstanceStore.NewId();
        _tables.Time.Advance(TimeSpan.FromSeconds(61));

        var described = await CallAsync("DescribeContainerInstances", $$"""
            {"containerInstances":["{{Id(a)}}","{{b["containerInstanceArn"]}}","{{unknown}}","nonsense","{{ArnPrefix}}prod/{{Id(a)}}"],"include":["TAGS","CONTAINER_INSTANCE_HEALTH"]}
            """);

        var instances = described["containerInstances"]!.AsArray();
        Assert.Equal([a["containerInstanceArn"]!.GetValue<string>(), b["containerInstanceArn"]!.GetValue<string>()],
            instances.Select(i => i!["containerInstanceArn"]!.GetValue<string>()));
        Assert.False(instances[0]!["agentConnected"]!.GetValue<bool>());
        Assert.Equal("""[{"key":"k","value":"v"}]""", instances[1]!["tags"]!.ToJsonString());
        Assert.Equal(
            $$"""{"overallStatus":"INSUFFICIENT_DATA","details":[{"type":"CONTAINER_RUNTIME","status":"INSUFFICIENT_DATA","lastUpdated":{{ContainerInstanceTables.Start.ToUnixTimeSeconds()}}}]}""",
            instances[0]!["healthStatus"]!.ToJsonString());
        Assert.Equal(
            $$"""[{"arn":"{{ArnPrefix}}default/{{unknown}}","reason":"MISSING"},{"arn":"{{ArnPrefix}}default/nonsense","reason":"MISSING"},{"arn":"{{ArnPrefix}}prod/{{Id(a)}}","reason":"MISSING"}]""",
            described["failures"]!.ToJsonString());

        var plain = await CallAsync("DescribeContainerInstances", $$"""{"containerInstances":["{{Id(b)}}"]}""");
        Assert.False(plain["containerInstances"]![0]!.AsObject().ContainsKey("tags"));
        Assert.False(plain["containerInstances"]![0]!.AsObject().ContainsKey("healthStatus"));
    }

    [Fact]
    public async Task A_heartbeat_reconnects_the_agent_and_shows_the_reported_counts()
    {
        var a = await RegisterAsync();
        await ReserveAsync(Id(a), "t1", "t2", "t3");
        _tables.Time.Advance(TimeSpan.FromMinutes(5));
        await _store.HeartbeatAsync("default", Id(a), 2, 1, _token);

        var described = (await CallAsync("DescribeContainerInstances", $$"""{"containerInstances":["{{Id(a)}}"],"include":["CONTAINER_INSTANCE_HEALTH"]}"""))["containerInstances"]![0]!;

        Assert.True(described["agentConnected"]!.GetValue<bool>());
        Assert.Equal((2, 1), (described["runningTasksCount"]!.GetValue<int>(), described["pendingTasksCount"]!.GetValue<int>()));
        Assert.Equal("OK", described["healthStatus"]!["overallStatus"]!.GetValue<string>());
    }

    private async Task ReserveAsync(string id, params string[] taskIds)
    {
        foreach (var taskId in taskIds)
            Assert.NotNull(await _store.TryReserveAsync((await _store.FindAsync("default", id, _token))!, new Reservation(taskId, 1, 1, [], []), _token));
    }

    private async Task<(int Running, int Pending)> InstanceCountsAsync(string id)
    {
        var instance = (await CallAsync("DescribeContainerInstances", $$"""{"containerInstances":["{{id}}"]}"""))["containerInstances"]![0]!;
        return (instance["runningTasksCount"]!.GetValue<int>(), instance["pendingTasksCount"]!.GetValue<int>());
    }

    private async Task<(int Running, int Pending)> ClusterCountsAsync()
    {
        var cluster = (await CallAsync("DescribeClusters", """{"clusters":["default"]}"""))["clusters"]![0]!;
        return (cluster["runningTasksCount"]!.GetValue<int>(), cluster["pendingTasksCount"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_placed_task_counts_as_pending_at_once_without_a_heartbeat_and_as_running_once_the_worker_reports_it()
    {
        var a = await RegisterAsync();
        await ReserveAsync(Id(a), "t1", "t2");

        Assert.Equal((0, 2), await InstanceCountsAsync(Id(a)));
        Assert.Equal((0, 2), await ClusterCountsAsync());

        await _store.HeartbeatAsync("default", Id(a), runningTasksCount: 1, pendingTasksCount: 1, _token);
        Assert.Equal((1, 1), await InstanceCountsAsync(Id(a)));
        Assert.Equal((1, 1), await ClusterCountsAsync());

        // Released (stopped) tasks no longer count, whatever the worker last said.
        await _store.ReleaseAsync("default", Id(a), ["t1", "t2"], _token);
        Assert.Equal((0, 0), await InstanceCountsAsync(Id(a)));
        Assert.Equal((0, 0), await ClusterCountsAsync());
    }

    [Fact]
    public async Task Deregistering_refuses_while_tasks_remain_unless_forced()
    {
        var a = await RegisterAsync();
        var seen = await _store.FindAsync("default", Id(a), _token);
        await _store.TryReserveAsync(seen!, new Reservation("t1", 1, 1, [], []), _token);

        var refused = await Assert.ThrowsAsync<InvalidParameterException>(() =>
            CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{Id(a)}}"}"""));
        Assert.Equal("Found running tasks on the instance.", refused.Message);

        var forced = (await CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{a["containerInstanceArn"]}}","force":true}"""))["containerInstance"]!;
        Assert.Equal("INACTIVE", forced["status"]!.GetValue<string>());
        Assert.False(forced["agentConnected"]!.GetValue<bool>());
        Assert.Equal(3, forced["version"]!.GetValue<long>());

        var again = (await CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{Id(a)}}"}"""))["containerInstance"]!;
        Assert.True(JsonNode.DeepEquals(forced, again), again.ToJsonString());
    }

    [Fact]
    public async Task Deregistering_counts_the_tasks_the_worker_reports()
    {
        var a = await RegisterAsync();
        await _store.HeartbeatAsync("default", Id(a), runningTasksCount: 1, pendingTasksCount: 0, _token);
        await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{Id(a)}}"}"""));
        await _store.HeartbeatAsync("default", Id(a), runningTasksCount: 0, pendingTasksCount: 0, _token);
        var done = await CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{Id(a)}}"}""");
        Assert.Equal("INACTIVE", done["containerInstance"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task Deregistering_an_unknown_instance_is_an_invalid_parameter()
    {
        var error = await Assert.ThrowsAsync<InvalidParameterException>(() =>
            CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{ContainerInstanceStore.NewId()}}"}"""));
        Assert.Contains("was not found", error.Message);
    }

    [Fact]
    public async Task Listing_filters_by_status_and_query_and_pages_in_id_order()
    {
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var stack = i % 2 == 0 ? "prod" : "dev";
            var instance = await RegisterAsync(extra: $$""", "tags": [] """);
            ids.Add(Id(instance));
            await CallAsync("PutAttributes", $$"""{"attributes":[{"name":"stack","value":"{{stack}}","targetId":"{{Id(instance)}}","targetType":"container-instance"}]}""");
        }
        await RegisterAsync(cluster: "prod");
        await CallAsync("UpdateContainerInstancesState", $$"""{"containerInstances":["{{ids[0]}}"],"status":"DRAINING"}""");
        var deregistered = ids[1];
        await CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{deregistered}}"}""");

        var all = await ListAllAsync("", "maxResults", 2);
        Assert.Equal(4, all.Count);
        Assert.Equal(all.Order(StringComparer.Ordinal), all);

        var draining = await CallAsync("ListContainerInstances", """{"status":"DRAINING"}""");
        Assert.Single(draining["containerInstanceArns"]!.AsArray());

        var prod = await ListAllAsync("""  "filter": "attribute:stack == prod and agentConnected == true", """, "maxResults", 1);
        Assert.Equal(3, prod.Count);

        var none = await CallAsync("ListContainerInstances", """{"filter":"attribute:ecs.instance-type =~ t2.*"}""");
        Assert.Empty(none["containerInstanceArns"]!.AsArray());
        Assert.False(none.ContainsKey("nextToken"));

        var registering = await CallAsync("ListContainerInstances", """{"status":"REGISTERING"}""");
        Assert.Empty(registering["containerInstanceArns"]!.AsArray());

        Assert.DoesNotContain(ArnPrefix + "default/" + deregistered, all);
        var error = await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("ListContainerInstances", """{"filter":"attribute:stack = prod"}"""));
        Assert.Contains("Invalid cluster query expression", error.Message);
    }

    private async Task<List<string>> ListAllAsync(string members, string pageMember, int pageSize)
    {
        var arns = new List<string>();
        string? token = null;
        do
        {
            var page = await CallAsync("ListContainerInstances",
                $$"""{ {{members}} "{{pageMember}}": {{pageSize}} {{(token is null ? "" : $", \"nextToken\": \"{token}\"")}} }""");
            var items = page["containerInstanceArns"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
            Assert.True(items.Count <= pageSize);
            arns.AddRange(items);
            token = page["nextToken"]?.GetValue<string>();
        }
        while (token is not null);
        return arns;
    }

    [Fact]
    public async Task Draining_and_reactivating_changes_the_status_and_reports_the_rest_as_failures()
    {
        var a = await RegisterAsync();
        var b = await RegisterAsync();
        await CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{Id(b)}}"}""");
        var unknown = ContainerInstanceStore.NewId();

        var drained = await CallAsync("UpdateContainerInstancesState",
            $$"""{"containerInstances":["{{a["containerInstanceArn"]}}","{{Id(b)}}","{{unknown}}"],"status":"DRAINING"}""");

        Assert.Equal("DRAINING", drained["containerInstances"]![0]!["status"]!.GetValue<string>());
        Assert.Equal(2, drained["containerInstances"]![0]!["version"]!.GetValue<long>());
        Assert.Equal(
            $$"""[{"arn":"{{ArnPrefix}}default/{{Id(b)}}","reason":"INACTIVE","detail":"Only an ACTIVE or DRAINING container instance can change state."},{"arn":"{{ArnPrefix}}default/{{unknown}}","reason":"MISSING"}]""",
            drained["failures"]!.ToJsonString());

        var again = await CallAsync("UpdateContainerInstancesState", $$"""{"containerInstances":["{{Id(a)}}"],"status":"DRAINING"}""");
        Assert.Equal(2, again["containerInstances"]![0]!["version"]!.GetValue<long>());

        var active = await CallAsync("UpdateContainerInstancesState", $$"""{"containerInstances":["{{Id(a)}}"],"status":"ACTIVE"}""");
        Assert.Equal("ACTIVE", active["containerInstances"]![0]!["status"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("REGISTERING")]
    [InlineData("DEREGISTERING")]
    [InlineData("REGISTRATION_FAILED")]
    public async Task Only_active_and_draining_can_be_set(string status)
    {
        var a = await RegisterAsync();
        await Assert.ThrowsAsync<InvalidParameterException>(() =>
            CallAsync("UpdateContainerInstancesState", $$"""{"containerInstances":["{{Id(a)}}"],"status":"{{status}}"}"""));
    }

    [Fact]
    public async Task At_most_ten_instances_change_state_in_one_call()
    {
        var many = string.Join(",", Enumerable.Range(0, 11).Select(_ => $"\"{ContainerInstanceStore.NewId()}\""));
        await Assert.ThrowsAsync<InvalidParameterException>(() =>
            CallAsync("UpdateContainerInstancesState", $$"""{"containerInstances":[{{many}}],"status":"DRAINING"}"""));
    }

    [Fact]
    public async Task Custom_attributes_are_put_listed_and_deleted()
    {
        var a = await RegisterAsync();
        var b = await RegisterAsync();
        var arnA = a["containerInstanceArn"]!.GetValue<string>();
        var arnB = b["containerInstanceArn"]!.GetValue<string>();

        var put = await CallAsync("PutAttributes", $$"""
            {"attributes":[
              {"name":"team","value":"blue","targetId":"{{arnA}}"},
              {"name":"team","value":"red","targetId":"{{Id(b)}}","targetType":"container-instance"},
              {"name":"gpu","targetId":"{{arnB}}"}]}
            """);
        Assert.Equal(
            $$"""[{"name":"team","value":"blue","targetType":"container-instance","targetId":"{{arnA}}"},{"name":"team","value":"red","targetType":"container-instance","targetId":"{{Id(b)}}"},{"name":"gpu","targetType":"container-instance","targetId":"{{arnB}}"}]""",
            put["attributes"]!.ToJsonString());

        var red = await CallAsync("ListAttributes", """{"targetType":"container-instance","attributeName":"team","attributeValue":"red"}""");
        Assert.Equal($$"""[{"name":"team","value":"red","targetType":"container-instance","targetId":"{{arnB}}"}]""", red["attributes"]!.ToJsonString());

        var teams = await CallAsync("ListAttributes", """{"targetType":"container-instance","attributeName":"team"}""");
        Assert.Equal(2, teams["attributes"]!.AsArray().Count);

        var linux = await CallAsync("ListAttributes", """{"targetType":"container-instance","attributeName":"ecs.os-type","attributeValue":"linux"}""");
        Assert.Equal(2, linux["attributes"]!.AsArray().Count);

        // Every attribute of both instances, a page at a time: 10 each (8 from registration, 2 put on b, 1 on a).
        var everything = new List<JsonNode>();
        string? token = null;
        do
        {
            var page = await CallAsync("ListAttributes", $$"""{"targetType":"container-instance","maxResults":3{{(token is null ? "" : $",\"nextToken\":\"{token}\"")}}}""");
            everything.AddRange(page["attributes"]!.AsArray().Select(x => x!));
            token = page["nextToken"]?.GetValue<string>();
        }
        while (token is not null);
        Assert.Equal(19, everything.Count);
        Assert.Equal(19, everything.Select(x => x["targetId"] + "/" + x["name"]).Distinct().Count());

        var deleted = await CallAsync("DeleteAttributes", $$"""{"attributes":[{"name":"team","targetId":"{{arnA}}"},{"name":"never-set","targetId":"{{arnA}}"}]}""");
        Assert.Equal(2, deleted["attributes"]!.AsArray().Count);
        var left = await CallAsync("ListAttributes", """{"targetType":"container-instance","attributeName":"team"}""");
        Assert.Equal($$"""[{"name":"team","value":"red","targetType":"container-instance","targetId":"{{arnB}}"}]""", left["attributes"]!.ToJsonString());

        var described = await CallAsync("DescribeContainerInstances", $$"""{"containerInstances":["{{Id(b)}}"]}""");
        Assert.Contains(described["containerInstances"]![0]!["attributes"]!.AsArray(), x => x!["name"]!.GetValue<string>() == "gpu" && x["value"] is null);
    }

    [Fact]
    public async Task Attributes_put_since_registration_survive_a_worker_restart()
    {
        var a = await RegisterAsync();
        await CallAsync("PutAttributes", $$"""{"attributes":[{"name":"team","value":"blue","targetId":"{{a["containerInstanceArn"]}}"}]}""");

        var again = await RegisterAsync(extra: $$""", "containerInstanceArn": "{{a["containerInstanceArn"]}}" """);

        Assert.Contains(again["attributes"]!.AsArray(), x => x!["name"]!.GetValue<string>() == "team");
    }

    [Fact]
    public async Task An_instance_holds_at_most_ten_custom_attributes()
    {
        var a = await RegisterAsync(); // "stack" is already one
        string Put(int from, int count) => $$"""{"attributes":[{{string.Join(",", Enumerable.Range(from, count).Select(i => $$"""{"name":"a{{i}}","value":"v","targetId":"{{a["containerInstanceArn"]}}"}"""))}}]}""";

        await CallAsync("PutAttributes", Put(0, 9));
        await Assert.ThrowsAsync<AttributeLimitExceededException>(() => CallAsync("PutAttributes", Put(9, 1)));
        await CallAsync("PutAttributes", Put(0, 1));
        await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("PutAttributes", Put(20, 11)));
    }

    [Theory]
    [InlineData("""{"name":"team","value":"x","targetId":"SHORT"}""", typeof(InvalidParameterException))]
    [InlineData("""{"name":"team","value":"x"}""", typeof(InvalidParameterException))]
    [InlineData("""{"name":"ecs.os-type","value":"windows","targetId":"ARN"}""", typeof(InvalidParameterException))]
    [InlineData("""{"name":"bad name","value":"x","targetId":"ARN"}""", typeof(InvalidParameterException))]
    [InlineData("""{"name":"team","value":" padded","targetId":"ARN"}""", typeof(InvalidParameterException))]
    [InlineData("""{"name":"team","value":"x","targetId":"ARN-OF-ANOTHER-CLUSTER"}""", typeof(TargetNotFoundException))]
    [InlineData("""{"name":"team","value":"x","targetId":"UNKNOWN","targetType":"container-instance"}""", typeof(TargetNotFoundException))]
    [InlineData("""{"name":"team","value":"x","targetId":"INACTIVE"}""", typeof(TargetNotFoundException))]
    public async Task Bad_attributes_and_unknown_targets_are_refused_before_anything_is_written(string attribute, Type error)
    {
        var a = await RegisterAsync();
        var gone = await RegisterAsync();
        await CallAsync("DeregisterContainerInstance", $$"""{"containerInstance":"{{Id(gone)}}"}""");
        var other = await RegisterAsync(cluster: "prod");
        var json = attribute
            .Replace("ARN-OF-ANOTHER-CLUSTER", other["containerInstanceArn"]!.GetValue<string>())
            .Replace("UNKNOWN", ContainerInstanceStore.NewId())
            .Replace("INACTIVE", gone["containerInstanceArn"]!.GetValue<string>())
            .Replace("SHORT", Id(a))
            .Replace("\"ARN\"", $"\"{a["containerInstanceArn"]}\"");
        var valid = $$"""{"name":"fine","value":"x","targetId":"{{a["containerInstanceArn"]}}"}""";

        await Assert.ThrowsAsync(error, () => CallAsync("PutAttributes", $$"""{"attributes":[{{valid}},{{json}}]}"""));

        var found = await _store.FindAsync("default", Id(a), _token);
        Assert.DoesNotContain(found!.Attributes, x => x.Name == "fine");
    }

    [Fact]
    public async Task Listing_attributes_by_value_needs_a_name()
    {
        await Assert.ThrowsAsync<InvalidParameterException>(() =>
            CallAsync("ListAttributes", """{"targetType":"container-instance","attributeValue":"linux"}"""));
    }

    [Fact]
    public async Task Tags_of_an_instance_are_managed_with_the_tag_actions()
    {
        var a = await RegisterAsync();
        var arn = a["containerInstanceArn"]!.GetValue<string>();

        await CallAsync("TagResource", $$"""{"resourceArn":"{{arn}}","tags":[{"key":"team","value":"blue"}]}""");

        var tags = await CallAsync("ListTagsForResource", $$"""{"resourceArn":"{{arn}}"}""");
        Assert.Equal("""[{"key":"team","value":"blue"}]""", tags["tags"]!.ToJsonString());
    }

    [Theory]
    [InlineData("RegisterContainerInstance", """{"cluster":"CLUSTER","totalResources":[{"name":"CPU","integerValue":1},{"name":"MEMORY","integerValue":1}]}""")]
    [InlineData("DeregisterContainerInstance", """{"cluster":"CLUSTER","containerInstance":"0123456789abcdef0123456789abcdef"}""")]
    [InlineData("DescribeContainerInstances", """{"cluster":"CLUSTER","containerInstances":["0123456789abcdef0123456789abcdef"]}""")]
    [InlineData("ListContainerInstances", """{"cluster":"CLUSTER"}""")]
    [InlineData("UpdateContainerInstancesState", """{"cluster":"CLUSTER","containerInstances":["0123456789abcdef0123456789abcdef"],"status":"DRAINING"}""")]
    [InlineData("PutAttributes", """{"cluster":"CLUSTER","attributes":[{"name":"a","targetId":"0123456789abcdef0123456789abcdef","targetType":"container-instance"}]}""")]
    [InlineData("DeleteAttributes", """{"cluster":"CLUSTER","attributes":[{"name":"a","targetId":"0123456789abcdef0123456789abcdef","targetType":"container-instance"}]}""")]
    [InlineData("ListAttributes", """{"cluster":"CLUSTER","targetType":"container-instance"}""")]
    public async Task Every_action_needs_an_active_cluster(string action, string json)
    {
        await Assert.ThrowsAsync<ClusterNotFoundException>(() => CallAsync(action, json.Replace("CLUSTER", "gone")));
        await Assert.ThrowsAsync<ClusterNotFoundException>(() => CallAsync(action, json.Replace("CLUSTER", "never-created")));
    }

    [Fact]
    public async Task Instances_register_in_the_default_cluster_when_none_is_named_and_by_cluster_arn()
    {
        var byDefault = (await CallAsync("RegisterContainerInstance", """{"totalResources":[{"name":"CPU","integerValue":1},{"name":"MEMORY","integerValue":1}]}"""))["containerInstance"]!;
        var byArn = await RegisterAsync(cluster: "arn:aws:ecs:us-east-1:000000000000:cluster/prod");

        Assert.StartsWith(ArnPrefix + "default/", byDefault["containerInstanceArn"]!.GetValue<string>());
        Assert.StartsWith(ArnPrefix + "prod/", byArn["containerInstanceArn"]!.GetValue<string>());
    }
}
