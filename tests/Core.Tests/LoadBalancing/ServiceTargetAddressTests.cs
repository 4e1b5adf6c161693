using System.Text.Json.Nodes;
using Serverless.Core.ContainerInstances;
using Serverless.Core.LoadBalancing;
using Serverless.Core.Services;
using Serverless.Core.Tasks;
using Serverless.Core.Tests.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.LoadBalancing;

/// <summary>
/// An <c>instance</c> target carries the host address its container instance registered, so one balancer in front of
/// several worker hosts reaches each task on its own host (as ALB reaches an EC2 instance by its private IP).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ServiceTargetAddressTests(AzuriteFixture azurite) : IDisposable
{
    private const string Cluster = "lb";
    private readonly ApiHarness _api = new(azurite, TestNames.Unique("elbaddr"));

    public void Dispose() => _api.Dispose();

    [Fact]
    public async Task Two_tasks_on_two_instances_are_reached_at_their_two_host_addresses_and_an_API_target_at_the_fallback()
    {
        var ct = CancellationToken.None;
        var (status, xml) = await ElbQuery.CallAsync(_api, "CreateTargetGroup", ("Name", "web"), ("Protocol", "HTTP"), ("Port", "80"), ("TargetType", "instance"));
        Assert.True(status == 200, xml.ToString());
        var groupArn = xml.Descendants(ElbQuery.Ns + "TargetGroupArn").First().Value;

        var instances = _api.Get<ContainerInstanceStore>();
        var a = await RegisterAsync(instances, "10.60.0.4", ct);
        var b = await RegisterAsync(instances, "10.60.0.5", ct);
        var service = new ServiceRecord
        {
            Cluster = Cluster,
            Name = "web",
            TaskDefinitionArn = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
            Passthrough = new JsonObject
            {
                ["loadBalancers"] = new JsonArray(new JsonObject { ["targetGroupArn"] = groupArn, ["containerName"] = "web", ["containerPort"] = 8080 }),
            },
        };
        // The same host port on both hosts: only the address tells them apart.
        await _api.Get<ServiceTargets>().SyncAsync(service, [Running(a.Id), Running(b.Id)], hasHealthCheck: false, ct);
        Assert.Equal(200, (await ElbQuery.CallAsync(_api, "RegisterTargets", ("TargetGroupArn", groupArn), ("Targets.member.1.Id", "i-0123456789abcdef0"))).Status);

        var store = _api.Get<LoadBalancingStore>();
        var config = await store.ListConfigAsync(ct);
        var groupId = config.Single(r => r.RowKey == "tg|web").Doc[ElbDocs.Id]!.GetValue<string>();
        var targets = await store.ListTargetsAsync(groupId, ct);
        var table = Routing.Build(config, _ => targets);
        var group = table.TargetGroups[groupArn];
        var reached = group.Targets.ToDictionary(t => t.Id, t => $"{Routing.Address(group, t, "127.0.0.1")}:{t.Port}");
        Assert.Equal(new Dictionary<string, string>
        {
            [a.Id] = "10.60.0.4:32768",
            [b.Id] = "10.60.0.5:32768",
            ["i-0123456789abcdef0"] = "127.0.0.1:80",
        }, reached);
    }

    private static Task<ContainerInstanceRecord> RegisterAsync(ContainerInstanceStore instances, string address, CancellationToken ct)
        => instances.RegisterAsync(new ContainerInstanceRecord
        {
            Cluster = Cluster, Id = ContainerInstanceStore.NewId(), Ec2InstanceId = $"host-{address}",
            RegisteredCpu = 2048, RegisteredMemory = 4096, HostAddress = address,
        }, ct);

    private static TaskRecord Running(string instanceId) => new()
    {
        Cluster = Cluster,
        Id = TaskIds.New("service:web"),
        Group = "service:web",
        TaskDefinitionArn = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        Family = "web",
        ContainerInstanceId = instanceId,
        LastStatus = EcsTaskStatus.Running,
        Containers = [new TaskContainer { Name = "web", Id = Guid.NewGuid().ToString(), Image = "busybox", LastStatus = EcsTaskStatus.Running,
            NetworkBindings = [new NetworkBinding("0.0.0.0", 8080, 32768, "tcp")] }],
    };
}
