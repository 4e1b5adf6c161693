using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Capacity;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Scheduling;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Core.Tests.Api;
using Serverless.Core.Tests.ContainerInstances;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Capacity;

/// <summary>Tasks of a capacity provider that find no room wait in PROVISIONING, through the whole endpoint over real storage.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class WaitingForCapacityTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _prefix = TestNames.Unique<WaitingForCapacityTests>();
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly List<ApiHarness> _apis = [];

    public void Dispose() => _apis.ForEach(a => a.Dispose());

    private ApiHarness Api(int provisioningTimeoutSeconds = 1800)
    {
        var api = new ApiHarness(azurite, _prefix, services => services.AddSingleton(new CapacityOptions { ProvisioningTimeoutSeconds = provisioningTimeoutSeconds }));
        _apis.Add(api);
        return api;
    }

    private async Task<JsonObject> OkAsync(ApiHarness api, string action, string body)
    {
        var answer = await api.EcsAsync(action, body, _token);
        Assert.True(answer.Status == 200, answer.Raw);
        return answer.Body!;
    }

    private async Task<ApiHarness> ClusterWithProviderAsync()
    {
        var api = Api();
        await OkAsync(api, "CreateCluster", """{"clusterName": "c"}""");
        await OkAsync(api, "CreateCapacityProvider", """{"name": "cp", "autoScalingGroupProvider": {"autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/asg", "managedScaling": {"status": "ENABLED"}}}""");
        await OkAsync(api, "PutClusterCapacityProviders", """{"cluster": "c", "capacityProviders": ["cp"], "defaultCapacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]}""");
        await OkAsync(api, "RegisterTaskDefinition", """{"family": "app", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 200}]}""");
        return api;
    }

    [Fact]
    public async Task A_task_that_finds_no_room_waits_in_PROVISIONING_and_is_placed_when_an_instance_of_its_pool_registers()
    {
        var api = await ClusterWithProviderAsync();
        var run = await OkAsync(api, "RunTask", """{"cluster": "c", "taskDefinition": "app", "count": 2}""");
        Assert.Empty(run["failures"]!.AsArray());
        Assert.All(run["tasks"]!.AsArray(), t =>
        {
            Assert.Equal("PROVISIONING", t!["lastStatus"]!.GetValue<string>());
            Assert.Equal("cp", t["capacityProviderName"]!.GetValue<string>());
            Assert.Null(t["containerInstanceArn"]);
        });

        var loop = api.Get<CapacityLoop>();
        Assert.Equal(2, (await loop.PlaceWaitingAsync(_token)).Count);   // still no room

        // An instance of the pool with room for one task: one is placed on it, the other keeps waiting.
        var instances = api.Get<ContainerInstanceStore>();
        var host = await instances.RegisterAsync(ContainerInstanceTables.Host("c", memory: 256) with { CapacityProviderName = "cp" }, _token);
        var still = await loop.PlaceWaitingAsync(_token);
        Assert.Single(still);
        var arns = run["tasks"]!.AsArray().Select(t => t!["taskArn"]!.GetValue<string>()).ToList();
        var described = (await OkAsync(api, "DescribeTasks", new JsonObject { ["cluster"] = "c", ["tasks"] = new JsonArray([.. arns]) }.ToJsonString()))["tasks"]!.AsArray();
        var placed = described.Single(t => t!["containerInstanceArn"] is not null)!;
        Assert.Equal("PENDING", placed["lastStatus"]!.GetValue<string>());
        Assert.EndsWith(host.Id, placed["containerInstanceArn"]!.GetValue<string>());
        Assert.Single((await instances.FindAsync("c", host.Id, _token))!.Reservations);

        // Stopping a waiting task stops it at once: no worker has it.
        var waitingArn = described.Single(t => t!["containerInstanceArn"] is null)!["taskArn"]!.GetValue<string>();
        await OkAsync(api, "StopTask", new JsonObject { ["cluster"] = "c", ["task"] = waitingArn, ["reason"] = "no longer needed" }.ToJsonString());
        var stopped = (await OkAsync(api, "DescribeTasks", new JsonObject { ["cluster"] = "c", ["tasks"] = new JsonArray(waitingArn) }.ToJsonString()))["tasks"]![0]!;
        Assert.Equal(("STOPPED", "UserInitiated", "no longer needed"),
            (stopped["lastStatus"]!.GetValue<string>(), stopped["stopCode"]!.GetValue<string>(), stopped["stoppedReason"]!.GetValue<string>()));
        Assert.Empty(await loop.PlaceWaitingAsync(_token));
        Assert.Empty(await api.Get<WaitingTaskStore>().ListAsync(10, _token));
    }

    [Fact]
    public async Task A_services_waiting_tasks_are_placed_by_its_constraints_one_per_instance_for_distinctInstance()
    {
        var api = await ClusterWithProviderAsync();
        await OkAsync(api, "CreateService", """{"cluster": "c", "serviceName": "web", "taskDefinition": "app", "desiredCount": 2, "placementConstraints": [{"type": "distinctInstance"}]}""");
        await api.Get<Serverless.Core.Reconciliation.ServiceReconciler>().ReconcileAsync(new Serverless.Core.Services.ServiceKey("c", "web"), _token);
        var loop = api.Get<CapacityLoop>();
        Assert.Equal(2, (await loop.PlaceWaitingAsync(_token)).Count);

        // One instance with room for both: distinctInstance puts one task on it; the other waits for another instance.
        var instances = api.Get<ContainerInstanceStore>();
        var first = await instances.RegisterAsync(ContainerInstanceTables.Host("c", memory: 1024) with { CapacityProviderName = "cp" }, _token);
        Assert.Single(await loop.PlaceWaitingAsync(_token));
        Assert.Single((await instances.FindAsync("c", first.Id, _token))!.Reservations);

        var second = await instances.RegisterAsync(ContainerInstanceTables.Host("c", memory: 1024) with { CapacityProviderName = "cp" }, _token);
        Assert.Empty(await loop.PlaceWaitingAsync(_token));
        Assert.Single((await instances.FindAsync("c", second.Id, _token))!.Reservations);
    }

    [Fact]
    public async Task A_standalone_tasks_own_placement_strategy_and_constraints_place_it_after_waiting_not_RunTasks_default()
    {
        var api = await ClusterWithProviderAsync();
        var run = await OkAsync(api, "RunTask", """
            {"cluster": "c", "taskDefinition": "app", "count": 2,
             "placementConstraints": [{"type": "distinctInstance"}, {"type": "memberOf", "expression": "attribute:color == blue"}],
             "placementStrategy": [{"type": "binpack", "field": "memory"}]}
            """);
        Assert.Equal(2, run["tasks"]!.AsArray().Count);
        var loop = api.Get<CapacityLoop>();
        var instances = api.Get<ContainerInstanceStore>();
        var kept = (await api.Get<WaitingTaskStore>().ListAsync(10, _token)).Select(w => w.Placement).ToList();
        Assert.Equal(2, kept.Count);
        Assert.All(kept, p =>
        {
            Assert.Equal([new PlacementStrategy("binpack", "memory")], p!.Strategies);
            Assert.True(p.DistinctInstance);
            Assert.Equal(["attribute:color == blue"], p.MemberOf);
        });

        // Room for both, but not blue: memberOf keeps both waiting (RunTask's default would place them there).
        var red = await instances.RegisterAsync(ContainerInstanceTables.Host("c", memory: 1024, attributes: [new("color", "red")]) with { CapacityProviderName = "cp" }, _token);
        Assert.Equal(2, (await loop.PlaceWaitingAsync(_token)).Count);
        Assert.Empty((await instances.FindAsync("c", red.Id, _token))!.Reservations);

        // Blue, with room for both: distinctInstance places one there and keeps the other waiting.
        var blue = await instances.RegisterAsync(ContainerInstanceTables.Host("c", memory: 1024, attributes: [new("color", "blue")]) with { CapacityProviderName = "cp" }, _token);
        Assert.Single(await loop.PlaceWaitingAsync(_token));
        Assert.Single((await instances.FindAsync("c", blue.Id, _token))!.Reservations);

        var other = await instances.RegisterAsync(ContainerInstanceTables.Host("c", memory: 1024, attributes: [new("color", "blue")]) with { CapacityProviderName = "cp" }, _token);
        Assert.Empty(await loop.PlaceWaitingAsync(_token));
        Assert.Single((await instances.FindAsync("c", other.Id, _token))!.Reservations);
        Assert.Empty((await instances.FindAsync("c", red.Id, _token))!.Reservations);
    }

    [Fact]
    public async Task A_wake_from_a_registering_worker_places_waiting_tasks_without_waiting_for_the_tick()
    {
        var api = await ClusterWithProviderAsync();
        var wake = api.Get<QueueWake>();
        var endpoint = wake.Listen(0, null);
        Assert.NotNull(endpoint);
        var run = await OkAsync(api, "RunTask", """{"cluster": "c", "taskDefinition": "app"}""");
        var arn = run["tasks"]![0]!["taskArn"]!.GetValue<string>();

        // The waiting row names this control plane: what a worker of the provider reads when it registers.
        var waiting = api.Get<WaitingTaskStore>();
        Assert.Equal([endpoint], await waiting.WakesAsync("c", "cp", _token));
        Assert.Empty(await waiting.WakesAsync("c", "other", _token));

        using var wakes = ActivatorUtilities.CreateInstance<CapacityWakes>(api.Services);
        await wakes.StartAsync(_token);
        try
        {
            var host = await api.Get<ContainerInstanceStore>().RegisterAsync(ContainerInstanceTables.Host("c", memory: 256) with { CapacityProviderName = "cp" }, _token);
            // The worker's wake: a datagram from another process's QueueWake. No tick runs here; the wake alone places the task.
            using var worker = new QueueWake(Microsoft.Extensions.Logging.Abstractions.NullLogger<QueueWake>.Instance);
            worker.Send(endpoint, CapacityLoop.WakeName);
            var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
            while ((await api.Get<TaskStore>().FindAsync("c", Arns.LastSegment(arn), _token))!.ContainerInstanceId != host.Id)
            {
                Assert.True(DateTimeOffset.UtcNow < deadline, "the woken capacity loop did not place the waiting task");
                await Task.Delay(50, _token);
            }
        }
        finally
        {
            await wakes.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_task_that_waits_past_the_provisioning_timeout_is_stopped_and_an_EC2_task_still_fails_at_once()
    {
        var api = await ClusterWithProviderAsync();
        var run = await OkAsync(api, "RunTask", """{"cluster": "c", "taskDefinition": "app"}""");
        var arn = run["tasks"]![0]!["taskArn"]!.GetValue<string>();

        Assert.Empty(await Api(provisioningTimeoutSeconds: 0).Get<CapacityLoop>().PlaceWaitingAsync(_token));
        var task = (await OkAsync(api, "DescribeTasks", new JsonObject { ["cluster"] = "c", ["tasks"] = new JsonArray(arn) }.ToJsonString()))["tasks"]![0]!;
        Assert.Equal(("STOPPED", "TaskFailedToStart", CapacityLoop.ProvisioningTimeoutReason),
            (task["lastStatus"]!.GetValue<string>(), task["stopCode"]!.GetValue<string>(), task["stoppedReason"]!.GetValue<string>()));

        // The EC2 launch type does not wait: a cluster with no EC2 instance refuses it as before.
        var refused = await api.EcsAsync("RunTask", """{"cluster": "c", "taskDefinition": "app", "launchType": "EC2"}""", _token);
        Assert.Equal((400, TaskLauncher.NoInstancesMessage), (refused.Status, refused.Message));
    }
}
