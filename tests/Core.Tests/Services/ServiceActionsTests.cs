using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Services;

/// <summary>The service actions as the API calls them, over real stores: model-validated JSON in, the model's output shape out.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ServiceActionsTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly ServiceTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public Task InitializeAsync() => _tables.InitializeAsync(_token);

    public Task DisposeAsync() => Task.CompletedTask;

    private string Cluster => _tables.Cluster;

    private Task<JsonObject> CallAsync(string action, string json) => _tables.CallAsync(action, json, _token);

    private async Task<JsonObject> CreateAsync(string name = "web", string extra = """, "desiredCount": 2""")
        => (JsonObject)(await CallAsync("CreateService", $$"""{"cluster":"{{Cluster}}","serviceName":"{{name}}","taskDefinition":"web"{{extra}}}"""))["service"]!;

    private async Task<JsonObject> UpdateAsync(string name, string extra)
        => (JsonObject)(await CallAsync("UpdateService", $$"""{"cluster":"{{Cluster}}","service":"{{name}}"{{extra}}}"""))["service"]!;

    private async Task<JsonObject> DescribeAsync(string name, bool tags = false)
    {
        var include = tags ? """, "include": ["TAGS"]""" : "";
        var response = await CallAsync("DescribeServices", $$"""{"cluster":"{{Cluster}}","services":["{{name}}"]{{include}}}""");
        return (JsonObject)response["services"]![0]!;
    }

    private async Task<T> FailsAsync<T>(string action, string json) where T : EcsException
        => await Assert.ThrowsAsync<T>(() => CallAsync(action, json));

    private static string[] Statuses(JsonNode service) => service["deployments"]!.AsArray().Select(d => d!["status"]!.GetValue<string>()).ToArray();

    private static string Str(JsonNode? node) => node!.GetValue<string>();

    private async Task AssertReconciledAsync(params string[] names)
        => Assert.Equal(names.Select(n => new ServiceKey(Cluster, n)), await _tables.ReconcilesAsync(_token));

    [Fact]
    public async Task Creating_a_service_answers_it_as_ecs_describes_it_and_enqueues_a_reconcile()
    {
        var service = await CreateAsync(extra: """, "desiredCount": 2, "tags": [{"key": "team", "value": "web"}]""");

        Assert.Equal(_tables.ServiceArn("web"), Str(service["serviceArn"]));
        Assert.Equal("web", Str(service["serviceName"]));
        Assert.Equal(_tables.Arns.Cluster(Cluster), Str(service["clusterArn"]));
        Assert.Equal("[]", service["loadBalancers"]!.ToJsonString());
        Assert.Equal("[]", service["serviceRegistries"]!.ToJsonString());
        Assert.Equal("ACTIVE", Str(service["status"]));
        Assert.Equal((2, 0, 0), (service["desiredCount"]!.GetValue<int>(), service["runningCount"]!.GetValue<int>(), service["pendingCount"]!.GetValue<int>()));
        Assert.Equal("EC2", Str(service["launchType"]));
        Assert.Equal(_tables.DefinitionArn("web:1"), Str(service["taskDefinition"]));
        Assert.Equal("""{"deploymentCircuitBreaker":{"enable":false,"rollback":false},"maximumPercent":200,"minimumHealthyPercent":100}""",
            service["deploymentConfiguration"]!.ToJsonString());
        Assert.Equal("[]", service["events"]!.ToJsonString());
        Assert.Equal(ServiceTables.Start.ToUnixTimeSeconds(), service["createdAt"]!.GetValue<double>());
        Assert.Equal("[]", service["placementConstraints"]!.ToJsonString());
        Assert.Equal("""[{"type":"spread","field":"attribute:ecs.availability-zone"},{"type":"spread","field":"instanceId"}]""",
            service["placementStrategy"]!.ToJsonString());
        Assert.Equal("REPLICA", Str(service["schedulingStrategy"]));
        Assert.Equal("""{"type":"ECS"}""", service["deploymentController"]!.ToJsonString());
        Assert.Equal("""[{"key":"team","value":"web"}]""", service["tags"]!.ToJsonString());
        Assert.Equal("arn:aws:iam::000000000000:user/AKIDTEST", Str(service["createdBy"]));
        Assert.False(service["enableECSManagedTags"]!.GetValue<bool>());
        Assert.Equal("NONE", Str(service["propagateTags"]));
        Assert.False(service["enableExecuteCommand"]!.GetValue<bool>());
        Assert.False(service.ContainsKey("roleArn"));

        var deployment = service["deployments"]!.AsArray().Single()!.AsObject();
        var id = Str(deployment["id"]);
        Assert.Matches("^ecs-svc/[0-9]{19}$", id);
        Assert.Equal("PRIMARY", Str(deployment["status"]));
        Assert.Equal(_tables.DefinitionArn("web:1"), Str(deployment["taskDefinition"]));
        Assert.Equal((2, 0, 0, 0), (deployment["desiredCount"]!.GetValue<int>(), deployment["pendingCount"]!.GetValue<int>(),
            deployment["runningCount"]!.GetValue<int>(), deployment["failedTasks"]!.GetValue<int>()));
        Assert.Equal(ServiceTables.Start.ToUnixTimeSeconds(), deployment["createdAt"]!.GetValue<double>());
        Assert.Equal(ServiceTables.Start.ToUnixTimeSeconds(), deployment["updatedAt"]!.GetValue<double>());
        Assert.Equal("EC2", Str(deployment["launchType"]));
        Assert.Equal("IN_PROGRESS", Str(deployment["rolloutState"]));
        Assert.Equal($"ECS deployment {id} in progress.", Str(deployment["rolloutStateReason"]));

        var model = ServiceModel.Ecs;
        Assert.All(service, member => Assert.True(model.Shape("Service").Members.ContainsKey(member.Key), member.Key));
        Assert.All(deployment, member => Assert.True(model.Shape("Deployment").Members.ContainsKey(member.Key), member.Key));
        await AssertReconciledAsync("web");
    }

    [Fact]
    public async Task Capacity_that_joins_makes_the_services_it_can_change_reconcile_and_capacity_that_drains_every_service()
    {
        await CreateAsync("web");
        await CreateAsync("agent", extra: """, "schedulingStrategy": "DAEMON" """);
        await CreateAsync("steady");
        // A REPLICA service at rest: one COMPLETED deployment running what it wants.
        await _tables.Services.UpdateAsync(Cluster, "steady", s => s with
        {
            Deployments = [s.Deployments.Single() with { RolloutState = DeploymentRolloutState.Completed, RunningCount = s.DesiredCount, PendingCount = 0 }],
        }, _token);
        await _tables.ReconcilesAsync(_token);

        var registered = await CallAsync("RegisterContainerInstance", $$"""
            {"cluster":"{{Cluster}}","instanceIdentityDocument":"{\"instanceId\":\"i-0123\"}",
             "totalResources":[{"name":"CPU","type":"INTEGER","integerValue":1024},{"name":"MEMORY","type":"INTEGER","integerValue":2048}]}
            """);
        Assert.Equal(["agent", "web"], (await _tables.ReconcilesAsync(_token)).Select(k => k.Name).Order());

        var instance = Str(registered["containerInstance"]!["containerInstanceArn"]);
        await CallAsync("UpdateContainerInstancesState", $$"""{"cluster":"{{Cluster}}","containerInstances":["{{instance}}"],"status":"DRAINING"}""");
        Assert.Equal(["agent", "steady", "web"], (await _tables.ReconcilesAsync(_token)).Select(k => k.Name).Order());

        // Asking for the status it already has changes nothing, and wakes nobody.
        await CallAsync("UpdateContainerInstancesState", $$"""{"cluster":"{{Cluster}}","containerInstances":["{{instance}}"],"status":"DRAINING"}""");
        Assert.Empty(await _tables.ReconcilesAsync(_token));
    }

    [Fact]
    public async Task DescribeServices_answers_what_CreateService_did_with_tags_only_when_asked()
    {
        var created = await CreateAsync(extra: """, "desiredCount": 1, "tags": [{"key": "a", "value": "b"}], "propagateTags": "SERVICE", "enableECSManagedTags": true, "healthCheckGracePeriodSeconds": 30""");

        var withTags = await DescribeAsync("web", tags: true);
        var withoutTags = await DescribeAsync(_tables.ServiceArn("web"));

        Assert.True(JsonNode.DeepEquals(created, withTags), withTags.ToJsonString());
        Assert.False(withoutTags.ContainsKey("tags"));
        withTags.Remove("tags");
        Assert.True(JsonNode.DeepEquals(withTags, withoutTags));
        Assert.Equal("SERVICE", Str(withoutTags["propagateTags"]));
        Assert.True(withoutTags["enableECSManagedTags"]!.GetValue<bool>());
        Assert.Equal(30, withoutTags["healthCheckGracePeriodSeconds"]!.GetValue<int>());
    }

    [Fact]
    public async Task Members_this_control_plane_does_not_act_on_are_answered_as_given()
    {
        var service = await CreateAsync(extra: """
            , "desiredCount": 1,
            "serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-1"}],
            "role": "/ecs/web-role",
            "deploymentConfiguration": {"alarms": {"alarmNames": ["high-5xx"], "enable": true, "rollback": false}, "maximumPercent": 150},
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:stack == prod"}, {"type": "distinctInstance"}]
            """);

        Assert.Equal("""[{"registryArn":"arn:aws:servicediscovery:us-east-1:000000000000:service/srv-1"}]""", service["serviceRegistries"]!.ToJsonString());
        Assert.Equal("arn:aws:iam::000000000000:role/ecs/web-role", Str(service["roleArn"]));
        Assert.Equal("""{"deploymentCircuitBreaker":{"enable":false,"rollback":false},"maximumPercent":150,"minimumHealthyPercent":100,"alarms":{"alarmNames":["high-5xx"],"enable":true,"rollback":false}}""",
            service["deploymentConfiguration"]!.ToJsonString());
        Assert.Equal("""[{"type":"memberOf","expression":"attribute:stack == prod"},{"type":"distinctInstance"}]""", service["placementConstraints"]!.ToJsonString());
        Assert.True(JsonNode.DeepEquals(service, await DescribeAsync("web", tags: true)));
    }

    [Fact]
    public async Task A_family_name_runs_its_latest_active_revision_and_a_revision_or_arn_runs_that_one()
    {
        await _tables.RegisterAsync("web", _token);
        await _tables.RegisterAsync("web", _token);
        await CallAsync("DeregisterTaskDefinition", """{"taskDefinition":"web:3"}""");

        Assert.Equal(_tables.DefinitionArn("web:2"), Str((await CreateAsync("latest"))["taskDefinition"]));
        var byRevision = await CallAsync("CreateService", $$"""{"cluster":"{{Cluster}}","serviceName":"pinned","taskDefinition":"web:1","desiredCount":0}""");
        Assert.Equal(_tables.DefinitionArn("web:1"), Str(byRevision["service"]!["taskDefinition"]));
        var byArn = await CallAsync("CreateService", $$"""{"cluster":"{{Cluster}}","serviceName":"by-arn","taskDefinition":"{{_tables.DefinitionArn("web:2")}}","desiredCount":0}""");
        Assert.Equal(_tables.DefinitionArn("web:2"), Str(byArn["service"]!["taskDefinition"]));

        var inactive = await FailsAsync<ClientException>("CreateService", $$"""{"cluster":"{{Cluster}}","serviceName":"old","taskDefinition":"web:3","desiredCount":1}""");
        Assert.Equal("TaskDefinition is inactive", inactive.Message);
        var missing = await FailsAsync<ClientException>("CreateService", $$"""{"cluster":"{{Cluster}}","serviceName":"none","taskDefinition":"nope","desiredCount":1}""");
        Assert.Equal("TaskDefinition not found.", missing.Message);
        await FailsAsync<ClientException>("CreateService", $$"""{"cluster":"{{Cluster}}","serviceName":"none","taskDefinition":"web:9","desiredCount":1}""");
    }

    [Theory]
    [InlineData("""{"serviceName":"web.v1","taskDefinition":"web","desiredCount":1}""", "Invalid service name")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web"}""", "DesiredCount is missing")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":-1}""", "DesiredCount can not be lesser than 0")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","schedulingStrategy":"DAEMON","desiredCount":1}""", ServiceActions.DaemonDesiredCount)]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","schedulingStrategy":"DAEMON","placementStrategy":[{"type":"random"}]}""", ServiceActions.DaemonPlacementStrategy)]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","schedulingStrategy":"DAEMON","deploymentConfiguration":{"maximumPercent":200}}""", ServiceActions.DaemonMaximumPercent)]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"deploymentConfiguration":{"maximumPercent":50}}""", "maximumPercent must be at least 100.")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"deploymentConfiguration":{"minimumHealthyPercent":101}}""", "minimumHealthyPercent must be between 0 and 100.")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"deploymentConfiguration":{"strategy":"BLUE_GREEN"}}""", "headless BLUE_GREEN deployments are not supported")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"launchType":"FARGATE"}""", "Task definition does not support launch_type FARGATE.")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"capacityProviderStrategy":[{"capacityProvider":"FARGATE","weight":1}]}""", "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster.")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"launchType":"EC2","capacityProviderStrategy":[{"capacityProvider":"cp","weight":1}]}""", "Specifying both a launch type and capacity provider strategy is not supported")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"platformVersion":"LATEST"}""", "The platform version must be null when specifying an EC2 launch type.")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"deploymentController":{"type":"CODE_DEPLOY"}}""", "CODE_DEPLOY deployment controller is not supported")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"enableExecuteCommand":true}""", "enableExecuteCommand")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"placementStrategy":[{"type":"binpack","field":"disk"}]}""", "Invalid field for binpack strategy")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"placementConstraints":[{"type":"memberOf","expression":"attribute:stack =="}]}""", "expected an argument")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"healthCheckGracePeriodSeconds":-5}""", "healthCheckGracePeriodSeconds must be at least 0.")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"clientToken":"0123456789012345678901234567890123456"}""", "idempotency token longer than 36.")]
    [InlineData("""{"serviceName":"web","taskDefinition":"web","desiredCount":1,"networkConfiguration":{"awsvpcConfiguration":{"subnets":["subnet-1"]}}}""", "Network Configuration is not valid for the given networkMode of this task definition.")]
    public async Task CreateService_refuses_what_ecs_refuses(string json, string message)
    {
        var request = JsonNode.Parse(json)!.AsObject();
        request["cluster"] = Cluster;

        var refused = await FailsAsync<InvalidParameterException>("CreateService", request.ToJsonString());

        Assert.Contains(message, refused.Message);
        Assert.Null(await _tables.Services.FindAsync(Cluster, "web", _token));
        Assert.Empty(await _tables.ReconcilesAsync(_token));
    }

    [Fact]
    public async Task An_awsvpc_task_definition_is_refused_as_RunTask_refuses_it()
    {
        await _tables.RegisterAsync("vpc", _token, extra: """, "networkMode": "awsvpc" """);
        var refused = await FailsAsync<InvalidParameterException>("CreateService",
            $$"""{"cluster":"{{Cluster}}","serviceName":"vpc","taskDefinition":"vpc","desiredCount":1}""");
        Assert.Contains("awsvpc", refused.Message);
    }

    [Fact]
    public async Task A_service_needs_an_active_cluster()
    {
        await FailsAsync<ClusterNotFoundException>("CreateService", """{"cluster":"no-such-cluster","serviceName":"web","taskDefinition":"web","desiredCount":1}""");
        await FailsAsync<ClusterNotFoundException>("ListServices", """{"cluster":"no-such-cluster"}""");
    }

    [Fact]
    public async Task A_daemon_service_takes_ecs_daemon_defaults()
    {
        var daemon = await CreateAsync("agent", """, "schedulingStrategy": "DAEMON" """);

        Assert.Equal("DAEMON", Str(daemon["schedulingStrategy"]));
        Assert.Equal(0, daemon["desiredCount"]!.GetValue<int>());
        Assert.Equal("[]", daemon["placementStrategy"]!.ToJsonString());
        Assert.Equal("""{"deploymentCircuitBreaker":{"enable":false,"rollback":false},"maximumPercent":100,"minimumHealthyPercent":0}""",
            daemon["deploymentConfiguration"]!.ToJsonString());
        Assert.Equal("PRIMARY", Statuses(daemon).Single());

        await FailsAsync<InvalidParameterException>("UpdateService", $$"""{"cluster":"{{Cluster}}","service":"agent","desiredCount":3}""");
        // A daemon has no desired count of its own to scale down before deleting it.
        var deleted = await CallAsync("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"agent"}""");
        Assert.Equal("DRAINING", Str(deleted["service"]!["status"]));
    }

    [Fact]
    public async Task A_second_create_of_an_active_name_is_not_idempotent_unless_it_repeats_the_same_client_token()
    {
        const string request = """{"serviceName":"web","taskDefinition":"web","desiredCount":1,"clientToken":"deploy-42"}""";
        var withCluster = JsonNode.Parse(request)!.AsObject();
        withCluster["cluster"] = Cluster;

        var first = await CallAsync("CreateService", withCluster.ToJsonString());
        var retry = await CallAsync("CreateService", withCluster.ToJsonString());
        Assert.True(JsonNode.DeepEquals(first, retry));

        withCluster["desiredCount"] = 2;
        await FailsAsync<InvalidParameterException>("CreateService", withCluster.ToJsonString());

        var again = await FailsAsync<InvalidParameterException>("CreateService",
            $$"""{"cluster":"{{Cluster}}","serviceName":"web","taskDefinition":"web","desiredCount":1}""");
        Assert.Equal(ServiceActions.NotIdempotent, again.Message);
        Assert.Single((await DescribeAsync("web"))["deployments"]!.AsArray());
        await AssertReconciledAsync("web");
    }

    [Fact]
    public async Task Updating_to_a_new_revision_makes_a_new_primary_deployment_and_the_old_one_active()
    {
        var created = await CreateAsync();
        var firstId = Str(created["deployments"]![0]!["id"]);
        await _tables.RegisterAsync("web", _token);
        _tables.Time.Advance(TimeSpan.FromMinutes(1));

        var updated = await UpdateAsync("web", """, "taskDefinition": "web" """);

        Assert.Equal(_tables.DefinitionArn("web:2"), Str(updated["taskDefinition"]));
        Assert.Equal(["PRIMARY", "ACTIVE"], Statuses(updated));
        var primary = updated["deployments"]![0]!;
        var previous = updated["deployments"]![1]!;
        Assert.NotEqual(firstId, Str(primary["id"]));
        Assert.Equal(_tables.DefinitionArn("web:2"), Str(primary["taskDefinition"]));
        Assert.Equal(2, primary["desiredCount"]!.GetValue<int>());
        Assert.Equal("IN_PROGRESS", Str(primary["rolloutState"]));
        Assert.Equal(ServiceTables.Start.AddMinutes(1).ToUnixTimeSeconds(), primary["createdAt"]!.GetValue<double>());
        Assert.Equal(firstId, Str(previous["id"]));
        Assert.Equal(_tables.DefinitionArn("web:1"), Str(previous["taskDefinition"]));
        Assert.Equal(ServiceTables.Start.AddMinutes(1).ToUnixTimeSeconds(), previous["updatedAt"]!.GetValue<double>());
        Assert.False(updated.ContainsKey("tags"));
        Assert.True(JsonNode.DeepEquals(updated, await DescribeAsync("web")));
        await AssertReconciledAsync("web", "web");
    }

    [Fact]
    public async Task Forcing_new_deployments_keeps_the_older_active_ones_until_the_reconciler_retires_them()
    {
        await CreateAsync();

        await UpdateAsync("web", """, "forceNewDeployment": true""");
        var twice = await UpdateAsync("web", """, "forceNewDeployment": true""");

        Assert.Equal(["PRIMARY", "ACTIVE", "ACTIVE"], Statuses(twice));
        Assert.All(twice["deployments"]!.AsArray(), d => Assert.Equal(_tables.DefinitionArn("web:1"), Str(d!["taskDefinition"])));
        Assert.Equal(3, twice["deployments"]!.AsArray().Select(d => Str(d!["id"])).Distinct().Count());
        await AssertReconciledAsync("web", "web", "web");
    }

    [Fact]
    public async Task A_desired_count_change_scales_the_primary_deployment_without_a_new_one()
    {
        await CreateAsync();

        // Naming the revision the service already runs is no change of task definition.
        var scaled = await UpdateAsync("web", """, "desiredCount": 5, "taskDefinition": "web:1" """);

        Assert.Equal(5, scaled["desiredCount"]!.GetValue<int>());
        Assert.Equal(5, scaled["deployments"]!.AsArray().Single()!["desiredCount"]!.GetValue<int>());
        await AssertReconciledAsync("web", "web");
    }

    [Fact]
    public async Task UpdateService_changes_placement_and_deployment_settings_without_a_new_deployment()
    {
        // web:2 maps the port the load balancer below names.
        await _tables.RegisterAsync("web", _token, containerExtra: """, "portMappings": [{"containerPort": 80}]""");
        await CreateAsync();

        var updated = await UpdateAsync("web", """
            , "placementStrategy": [{"type": "binpack", "field": "MEMORY"}],
            "placementConstraints": [{"type": "distinctInstance"}],
            "deploymentConfiguration": {"minimumHealthyPercent": 50, "deploymentCircuitBreaker": {"enable": true, "rollback": true}},
            "healthCheckGracePeriodSeconds": 60,
            "propagateTags": "TASK_DEFINITION"
            """);

        Assert.Equal("""[{"type":"binpack","field":"memory"}]""", updated["placementStrategy"]!.ToJsonString());
        Assert.Equal("""[{"type":"distinctInstance"}]""", updated["placementConstraints"]!.ToJsonString());
        Assert.Equal("""{"deploymentCircuitBreaker":{"enable":true,"rollback":true},"maximumPercent":200,"minimumHealthyPercent":50}""",
            updated["deploymentConfiguration"]!.ToJsonString());
        Assert.Equal(60, updated["healthCheckGracePeriodSeconds"]!.GetValue<int>());
        Assert.Equal("TASK_DEFINITION", Str(updated["propagateTags"]));
        Assert.Single(updated["deployments"]!.AsArray());

        var stored = await _tables.Services.FindAsync(Cluster, "web", _token);
        Assert.True(stored!.PropagateTags);
        Assert.True(stored.DeploymentConfiguration.CircuitBreakerRollback);

        // A load balancer naming a port the container does not map is refused, as on ECS.
        var unmapped = await FailsAsync<InvalidParameterException>("UpdateService", $$"""{"cluster":"{{Cluster}}","service":"web","loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/2", "containerName": "app", "containerPort": 81}]}""");
        Assert.Equal("The container app did not have a container port 81 defined.", unmapped.Message);
        // A new load balancer is a new deployment, as on ECS.
        var balanced = await UpdateAsync("web", """, "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/2", "containerName": "app", "containerPort": 80}]""");
        Assert.Equal(["PRIMARY", "ACTIVE"], Statuses(balanced));
        var cleared = await UpdateAsync("web", """, "placementStrategy": [] """);
        Assert.Equal("""[{"type":"spread","field":"attribute:ecs.availability-zone"},{"type":"spread","field":"instanceId"}]""",
            cleared["placementStrategy"]!.ToJsonString());
    }

    [Fact]
    public async Task UpdateService_needs_an_existing_active_service()
    {
        await CreateAsync(extra: """, "desiredCount": 0""");

        await FailsAsync<ServiceNotFoundException>("UpdateService", $$"""{"cluster":"{{Cluster}}","service":"missing","desiredCount":1}""");
        await FailsAsync<ServiceNotFoundException>("UpdateService",
            $$"""{"cluster":"{{Cluster}}","service":"{{_tables.ServiceArn("web", "other-cluster")}}","desiredCount":1}""");
        await FailsAsync<InvalidParameterException>("UpdateService", $$"""{"cluster":"{{Cluster}}","service":"web","desiredCount":-1}""");
        await FailsAsync<ClientException>("UpdateService", $$"""{"cluster":"{{Cluster}}","service":"web","taskDefinition":"nope"}""");

        await CallAsync("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"web"}""");
        var inactive = await FailsAsync<ServiceNotActiveException>("UpdateService", $$"""{"cluster":"{{Cluster}}","service":"web","desiredCount":1}""");
        Assert.Equal("Service was not ACTIVE.", inactive.Message);
    }

    [Fact]
    public async Task Deleting_a_scaled_service_needs_force_and_leaves_it_draining_to_the_reconciler()
    {
        await CreateAsync();
        await _tables.ReconcilesAsync(_token);

        var refused = await FailsAsync<InvalidParameterException>("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"web"}""");
        Assert.Equal(ServiceActions.ScaledAboveZero, refused.Message);

        var deleted = (JsonObject)(await CallAsync("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"{{_tables.ServiceArn("web")}}","force":true}"""))["service"]!;

        Assert.Equal("DRAINING", Str(deleted["status"]));
        Assert.Equal(0, deleted["desiredCount"]!.GetValue<int>());
        Assert.Equal(0, deleted["deployments"]![0]!["desiredCount"]!.GetValue<int>());
        Assert.Equal("DRAINING", Str((await DescribeAsync("web"))["status"]));
        await AssertReconciledAsync("web");

        // ECS hides a draining service from ListServices, refuses its name, and answers a second delete unchanged.
        Assert.Equal("[]", (await CallAsync("ListServices", $$"""{"cluster":"{{Cluster}}"}"""))["serviceArns"]!.ToJsonString());
        var draining = await FailsAsync<InvalidParameterException>("CreateService",
            $$"""{"cluster":"{{Cluster}}","serviceName":"web","taskDefinition":"web","desiredCount":1}""");
        Assert.Equal(ServiceActions.StillDraining, draining.Message);
        var again = (await CallAsync("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"web"}"""))["service"]!;
        Assert.True(JsonNode.DeepEquals(deleted, again));
        await FailsAsync<ServiceNotFoundException>("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"missing"}""");
    }

    [Fact]
    public async Task An_inactive_service_is_still_described_and_its_name_can_be_created_again()
    {
        await CreateAsync(extra: """, "desiredCount": 0""");
        await CallAsync("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"web"}""");
        // What the reconciler does once the last task has stopped.
        await _tables.Services.UpdateAsync(Cluster, "web", s => s with { Status = ServiceRecord.Inactive }, _token);

        // The services-inactive waiter succeeds on status INACTIVE.
        var inactive = await DescribeAsync("web");
        Assert.Equal("INACTIVE", Str(inactive["status"]));
        var unchanged = (await CallAsync("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"web"}"""))["service"]!;
        Assert.Equal("INACTIVE", Str(unchanged["status"]));

        await _tables.ReconcilesAsync(_token);
        _tables.Time.Advance(TimeSpan.FromHours(1));
        var recreated = await CreateAsync(extra: """, "desiredCount": 3""");

        Assert.Equal("ACTIVE", Str(recreated["status"]));
        Assert.Equal(3, recreated["desiredCount"]!.GetValue<int>());
        Assert.Equal(ServiceTables.Start.AddHours(1).ToUnixTimeSeconds(), recreated["createdAt"]!.GetValue<double>());
        Assert.NotEqual(Str(inactive["deployments"]![0]!["id"]), Str(recreated["deployments"]![0]!["id"]));
        await AssertReconciledAsync("web");
    }

    [Fact]
    public async Task A_new_service_at_zero_is_stable_as_the_services_stable_waiter_reads_it()
    {
        await CreateAsync(extra: """, "desiredCount": 0""");

        var service = await DescribeAsync("web");

        // length(deployments) == 1 && runningCount == desiredCount
        Assert.Single(service["deployments"]!.AsArray());
        Assert.Equal(service["desiredCount"]!.GetValue<int>(), service["runningCount"]!.GetValue<int>());
    }

    [Fact]
    public async Task DescribeServices_reports_missing_services_as_failures()
    {
        await CreateAsync();

        var response = await CallAsync("DescribeServices",
            $$"""{"cluster":"{{Cluster}}","services":["web","gone","{{_tables.ServiceArn("web")}}","{{_tables.ServiceArn("web", "elsewhere")}}"]}""");

        Assert.Equal(["web"], response["services"]!.AsArray().Select(s => Str(s!["serviceName"])));
        Assert.Equal(
            $$"""[{"arn":"{{_tables.ServiceArn("gone")}}","reason":"MISSING"},{"arn":"{{_tables.ServiceArn("web", "elsewhere")}}","reason":"MISSING"}]""",
            response["failures"]!.ToJsonString());

        var eleven = string.Join(",", Enumerable.Range(0, 11).Select(i => $"\"s{i}\""));
        await FailsAsync<InvalidParameterException>("DescribeServices", $$"""{"cluster":"{{Cluster}}","services":[{{eleven}}]}""");
        await FailsAsync<InvalidParameterException>("DescribeServices", $$"""{"cluster":"{{Cluster}}","services":[]}""");
    }

    [Fact]
    public async Task ListServices_pages_ten_at_a_time_by_default_and_filters_by_strategy()
    {
        var names = Enumerable.Range(0, 12).Select(i => $"svc-{i:00}").ToList();
        foreach (var name in names) await CreateAsync(name, """, "desiredCount": 0""");
        await CreateAsync("daemon", """, "schedulingStrategy": "DAEMON" """);

        var first = await CallAsync("ListServices", $$"""{"cluster":"{{Cluster}}"}""");
        Assert.Equal(10, first["serviceArns"]!.AsArray().Count);
        var second = await CallAsync("ListServices", $$"""{"cluster":"{{Cluster}}","nextToken":"{{Str(first["nextToken"])}}"}""");
        Assert.False(second.ContainsKey("nextToken"));
        var all = first["serviceArns"]!.AsArray().Concat(second["serviceArns"]!.AsArray()).Select(Str).ToList();
        Assert.Equal(["daemon", .. names], all.Select(a => a.Split('/')[^1]).Order(StringComparer.Ordinal));
        Assert.All(all, arn => Assert.StartsWith($"arn:aws:ecs:us-east-1:000000000000:service/{Cluster}/", arn));

        var pages = 0;
        var seen = new List<string>();
        string? token = null;
        do
        {
            var next = token is null ? "" : $$""", "nextToken": "{{token}}" """;
            var page = await CallAsync("ListServices", $$"""{"cluster":"{{Cluster}}","maxResults":5,"schedulingStrategy":"REPLICA","launchType":"EC2"{{next}}}""");
            seen.AddRange(page["serviceArns"]!.AsArray().Select(a => Str(a).Split('/')[^1]));
            token = page["nextToken"]?.GetValue<string>();
            pages++;
        }
        while (token is not null);
        Assert.Equal(names, seen);
        Assert.Equal(3, pages);

        var daemons = await CallAsync("ListServices", $$"""{"cluster":"{{Cluster}}","schedulingStrategy":"DAEMON"}""");
        Assert.Equal([_tables.ServiceArn("daemon")], daemons["serviceArns"]!.AsArray().Select(Str));
        await FailsAsync<InvalidParameterException>("ListServices", $$"""{"cluster":"{{Cluster}}","maxResults":101}""");
    }

    [Fact]
    public async Task A_service_is_tagged_untagged_and_listed_by_its_arn()
    {
        await CreateAsync(extra: """, "desiredCount": 0, "tags": [{"key": "env", "value": "test"}]""");
        var arn = _tables.ServiceArn("web");

        await CallAsync("TagResource", $$"""{"resourceArn":"{{arn}}","tags":[{"key":"team","value":"web"},{"key":"env","value":"prod"}]}""");
        await CallAsync("UntagResource", $$"""{"resourceArn":"{{arn}}","tagKeys":["team"]}""");

        Assert.Equal("""{"tags":[{"key":"env","value":"prod"}]}""", (await CallAsync("ListTagsForResource", $$"""{"resourceArn":"{{arn}}"}""")).ToJsonString());
        Assert.Equal("""[{"key":"env","value":"prod"}]""", (await DescribeAsync("web", tags: true))["tags"]!.ToJsonString());
        await FailsAsync<ResourceNotFoundException>("ListTagsForResource", $$"""{"resourceArn":"{{_tables.ServiceArn("nope")}}"}""");
        await FailsAsync<InvalidParameterException>("TagResource",
            $$"""{"resourceArn":"arn:aws:ecs:us-east-1:000000000000:service/web","tags":[{"key":"a","value":"b"}]}""");
    }

    [Fact]
    public async Task A_cluster_counts_its_services_and_cannot_be_deleted_while_one_is_active_or_draining()
    {
        await CreateAsync("a", """, "desiredCount": 0""");
        await CreateAsync("b", """, "desiredCount": 0""");
        await CallAsync("DeleteService", $$"""{"cluster":"{{Cluster}}","service":"b"}""");

        var cluster = (await CallAsync("DescribeClusters", $$"""{"clusters":["{{Cluster}}"],"include":["STATISTICS"]}"""))["clusters"]![0]!;
        Assert.Equal(1, cluster["activeServicesCount"]!.GetValue<int>());
        Assert.Contains(cluster["statistics"]!.AsArray(), s => Str(s!["name"]) == "drainingEC2ServiceCount" && Str(s["value"]) == "1");

        await FailsAsync<ClusterContainsServicesException>("DeleteCluster", $$"""{"cluster":"{{Cluster}}"}""");
    }
}
