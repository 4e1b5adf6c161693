using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Capacity;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Storage;
using Serverless.Core.Tests.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Capacity;

/// <summary>
/// A worker pool that is a VM scale set. No Azure Resource Manager runs here, so its REST API for one
/// scale set is played by <see cref="FakeArm"/> (the scale set's capacity, its VMs with their computer
/// names, PATCH of the capacity, POST delete of instances, the bearer token checked); the pool and
/// container instance tables are real (Azurite behind the limits proxy).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ScaleSetPoolsTests(AzuriteFixture azurite)
{
    private const string ResourceId = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-ecs";
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly StorageClients _storage = new(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("vmss") });
    private readonly FakeArm _arm = new();
    private readonly string _pool = TestNames.Unique("pool");
    private readonly string _cluster = TestNames.Unique("c");

    private WorkerPoolStore Pools => new(_storage, TaskRows.Arns);
    private ContainerInstanceStore Instances => new(_storage, TaskRows.Arns, new FakeTimeProvider(DateTimeOffset.UtcNow));

    private (ScaleSetPools Agent, ScaleSetOptions Options) Agent()
    {
        var scaleSet = new ScaleSetOptions { Pool = _pool, ResourceId = ResourceId, Cluster = _cluster, MinSize = 1, MaxSize = 5 };
        var options = new CapacityOptions { ScaleSets = [scaleSet], ArmEndpoint = "https://arm.test/" };
        return (new ScaleSetPools(options, Pools, Instances, new StaticToken(), new HttpClient(_arm), NullLogger<ScaleSetPools>.Instance), scaleSet);
    }

    private async Task<string> HostAsync(string computerName)
        => (await Instances.RegisterAsync(new ContainerInstanceRecord
        {
            Cluster = _cluster, Id = ContainerInstanceStore.NewId(), Ec2InstanceId = computerName, RegisteredCpu = 1024, RegisteredMemory = 1024,
        }, _token)).Id;

    [Fact]
    public async Task The_scale_set_follows_the_pools_desired_size_and_its_registered_hosts_are_reported_running()
    {
        _arm.Vms.AddRange([("0", "ecsw000000"), ("1", "ecsw000001")]);
        _arm.Capacity = 2;
        var first = await HostAsync("ecsw000000");
        var second = await HostAsync("ECSW000001");   // computer names compare without case, as Windows and Azure do
        var (agent, options) = Agent();

        await agent.ConvergeAsync(options, _token);
        // The pool row is made with the settings' sizes; desired starts at the minimum, so the set goes to 1.
        var pool = await Pools.FindAsync(_pool, _token);
        Assert.Equal((1, 5, 1), (pool!.MinSize, pool.MaxSize, pool.DesiredCapacity));
        Assert.Equal(1, _arm.Capacity);
        Assert.Equal(new[] { first, second }.Order(StringComparer.Ordinal), pool.Running.Order(StringComparer.Ordinal));
        Assert.All(_arm.Tokens, t => Assert.Equal("Bearer arm-token", t));

        // Managed scaling asks for 4: one PATCH of sku.capacity.
        await Pools.UpdateAsync(_pool, p => p with { DesiredCapacity = 4 }, _token);
        var patches = _arm.Patches;
        await agent.ConvergeAsync(options, _token);
        Assert.Equal((4, patches + 1), (_arm.Capacity, _arm.Patches));
        await agent.ConvergeAsync(options, _token);
        Assert.Equal(patches + 1, _arm.Patches);   // nothing more to change
    }

    [Fact]
    public async Task Scale_in_deletes_only_the_vms_of_the_instances_named_for_termination()
    {
        _arm.Vms.AddRange([("0", "ecsw000000"), ("1", "ecsw000001"), ("2", "ecsw000002")]);
        _arm.Capacity = 3;
        var keep = await HostAsync("ecsw000000");
        var idle = await HostAsync("ecsw000001");
        var busy = await HostAsync("ecsw000002");
        var (agent, options) = Agent();
        await Pools.UpdateAsync(_pool, p => p, _token, () => new WorkerPoolRecord
        {
            Name = _pool, MinSize = 1, MaxSize = 5, DesiredCapacity = 2, Terminate = [idle],
        });

        await agent.ConvergeAsync(options, _token);
        Assert.Equal(["1"], _arm.Deleted);
        Assert.Equal(0, _arm.Patches);   // the delete lowers the capacity with it
        Assert.Equal(new[] { busy, keep }.Order(StringComparer.Ordinal), (await Pools.FindAsync(_pool, _token))!.Running.Order(StringComparer.Ordinal));

        // Once the VM is gone the capacity already matches: nothing else is deleted or patched.
        await agent.ConvergeAsync(options, _token);
        Assert.Equal(["1"], _arm.Deleted);
        Assert.Equal((0, 2), (_arm.Patches, _arm.Capacity));
    }

    [Fact]
    public async Task A_failing_resource_manager_leaves_the_pool_as_it_was_and_is_tried_again()
    {
        _arm.Vms.Add(("0", "ecsw000000"));
        _arm.Capacity = 1;
        var host = await HostAsync("ecsw000000");
        var (agent, options) = Agent();
        await agent.ConvergeAsync(options, _token);
        await Pools.UpdateAsync(_pool, p => p with { DesiredCapacity = 3 }, _token);

        _arm.Down = true;
        await agent.ConvergeAllAsync(_token);   // logged, not thrown
        Assert.Equal(1, _arm.Capacity);
        Assert.Equal([host], (await Pools.FindAsync(_pool, _token))!.Running);

        _arm.Down = false;
        await agent.ConvergeAllAsync(_token);
        Assert.Equal(3, _arm.Capacity);
    }

    private sealed class StaticToken : TokenCredential
    {
        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            Assert.Equal(["https://management.azure.com/.default"], requestContext.Scopes);
            return new("arm-token", DateTimeOffset.UtcNow.AddHours(1));
        }

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken)
            => ValueTask.FromResult(GetToken(requestContext, cancellationToken));
    }

    /// <summary>ARM for one Uniform scale set: GET it (sku.capacity), GET its VMs (one page), PATCH sku.capacity, POST delete.</summary>
    private sealed class FakeArm : HttpMessageHandler
    {
        public readonly List<(string InstanceId, string ComputerName)> Vms = [];
        public readonly List<string> Deleted = [];
        public readonly List<string> Tokens = [];
        public int Capacity;
        public int Patches;
        public bool Down;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (Tokens) Tokens.Add(request.Headers.Authorization?.ToString() ?? "");
            if (Down) return Json(HttpStatusCode.InternalServerError, """{"error":{"code":"InternalServerError","message":"try later"}}""");
            Assert.Equal("arm.test", request.RequestUri!.Host);
            Assert.Equal($"?api-version={ScaleSetPools.ApiVersion}", request.RequestUri.Query);
            var path = request.RequestUri.AbsolutePath;
            var body = request.Content is null ? null : JsonNode.Parse(await request.Content.ReadAsStringAsync(cancellationToken));
            switch (request.Method.Method, path)
            {
                case ("GET", ResourceId):
                    return Json(HttpStatusCode.OK, new JsonObject { ["sku"] = new JsonObject { ["name"] = "Standard_D2s_v5", ["capacity"] = Capacity } }.ToJsonString());
                case ("GET", ResourceId + "/virtualMachines"):
                    var value = new JsonArray([.. Vms.Select(vm => (JsonNode)new JsonObject
                    {
                        ["instanceId"] = vm.InstanceId,
                        ["properties"] = new JsonObject { ["provisioningState"] = "Succeeded", ["osProfile"] = new JsonObject { ["computerName"] = vm.ComputerName } },
                    })]);
                    return Json(HttpStatusCode.OK, new JsonObject { ["value"] = value }.ToJsonString());
                case ("PATCH", ResourceId):
                    Capacity = body!["sku"]!["capacity"]!.GetValue<int>();
                    Patches++;
                    return Json(HttpStatusCode.OK, "{}");
                case ("POST", ResourceId + "/delete"):
                    var ids = body!["instanceIds"]!.AsArray().Select(i => i!.GetValue<string>()).ToList();
                    Deleted.AddRange(ids);
                    Vms.RemoveAll(vm => ids.Contains(vm.InstanceId));
                    Capacity -= ids.Count;
                    return new HttpResponseMessage(HttpStatusCode.Accepted);
                default:
                    return Json(HttpStatusCode.NotFound, new JsonObject { ["error"] = new JsonObject { ["code"] = "NotFound", ["message"] = $"{request.Method} {path}" } }.ToJsonString());
            }
        }

        private static HttpResponseMessage Json(HttpStatusCode status, string json)
            => new(status) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
    }
}
