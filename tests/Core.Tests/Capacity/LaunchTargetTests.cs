using System.Text.Json.Nodes;
using Azure;
using Serverless.Core.Api;
using Serverless.Core.Capacity;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Scheduling;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Tests.Capacity;

/// <summary>Launch types, capacity provider strategies and the pools they place on (pure).</summary>
public sealed class LaunchTargetTests
{
    private static readonly ClusterRecord Cluster = new()
    {
        Name = "c",
        CapacityProviders = """["FARGATE","FARGATE_SPOT","pool-a","pool-b"]""",
    };

    private static TaskDefinitionRecord Definition(string json) => new("web", 1, TaskDefinitionRecord.Active, "arn", JsonNode.Parse(json)!.AsObject(), [], ETag.All);

    private static readonly TaskDefinitionRecord FargateDefinition = Definition("""{"networkMode": "awsvpc", "cpu": "256", "memory": "512"}""");
    private static readonly TaskDefinitionRecord BridgeDefinition = Definition("""{"networkMode": "bridge"}""");

    private static LaunchTarget Resolve(string request, TaskDefinitionRecord definition, ClusterRecord? cluster = null)
        => LaunchTargets.Resolve(JsonNode.Parse(request)!.AsObject(), cluster ?? Cluster, definition);

    [Fact]
    public void Fargate_resolves_LATEST_and_refuses_a_definition_it_cannot_run()
    {
        var target = Resolve("""{"launchType": "FARGATE"}""", FargateDefinition);
        Assert.True(target.IsFargate);
        Assert.Equal("1.4.0", target.PlatformVersion);
        Assert.Equal("1.3.0", Resolve("""{"launchType": "FARGATE", "platformVersion": "1.3.0"}""", FargateDefinition).PlatformVersion);
        Assert.Equal(LaunchTargets.NotFargateCompatible,
            Assert.Throws<InvalidParameterException>(() => Resolve("""{"launchType": "FARGATE"}""", BridgeDefinition)).Message);
        Assert.Equal(LaunchTargets.UnknownPlatformVersion,
            Assert.Throws<InvalidParameterException>(() => Resolve("""{"launchType": "FARGATE", "platformVersion": "9.9.9"}""", FargateDefinition)).Message);
        Assert.Equal(LaunchTargets.Ec2PlatformVersion,
            Assert.Throws<InvalidParameterException>(() => Resolve("""{"platformVersion": "LATEST"}""", BridgeDefinition)).Message);
    }

    [Theory]
    [InlineData("""{"launchType": "EC2", "capacityProviderStrategy": [{"capacityProvider": "pool-a", "weight": 1}]}""", LaunchTargets.BothGiven)]
    [InlineData("""{"capacityProviderStrategy": [{"capacityProvider": "elsewhere", "weight": 1}]}""", LaunchTargets.NotAssociated)]
    [InlineData("""{"capacityProviderStrategy": [{"capacityProvider": "pool-a", "weight": 1, "base": 1}, {"capacityProvider": "pool-b", "weight": 1, "base": 2}]}""", LaunchTargets.MoreThanOneBase)]
    [InlineData("""{"capacityProviderStrategy": [{"capacityProvider": "pool-a", "weight": 0}]}""", LaunchTargets.NoWeight)]
    [InlineData("""{"capacityProviderStrategy": [{"capacityProvider": "pool-a", "weight": 1}, {"capacityProvider": "FARGATE", "weight": 1}]}""", LaunchTargets.MixedTypes)]
    public void A_strategy_is_refused_as_ECS_refuses_it(string request, string message)
        => Assert.Equal(message, Assert.Throws<InvalidParameterException>(() => Resolve(request, BridgeDefinition)).Message);

    [Fact]
    public void Without_a_launch_type_the_clusters_default_strategy_decides()
    {
        var cluster = Cluster with { DefaultCapacityProviderStrategy = """[{"capacityProvider": "pool-b", "weight": 1}]""" };
        var target = Resolve("{}", BridgeDefinition, cluster);
        Assert.Equal([new StrategyItem("pool-b", 1)], target.Strategy);
        Assert.Equal("EC2", target.LaunchType);
        Assert.Empty(Resolve("""{"launchType": "EC2"}""", BridgeDefinition, cluster).Strategy);
    }

    [Fact]
    public void The_base_comes_first_then_the_weights_share_the_rest()
    {
        var strategy = new[] { new StrategyItem("a", Weight: 1, Base: 2), new StrategyItem("b", Weight: 3) };
        Assert.Equal(["a", "a", "b", "b", "b", "a", "b", "b"], CapacityProviderStrategy.Distribute(strategy, 8));
        // Tasks already running count: with a's base met and b behind its share, b comes first.
        Assert.Equal(["b", "b"], CapacityProviderStrategy.Distribute(strategy, 2, new Dictionary<string, int> { ["a"] = 3, ["b"] = 1 }));
        Assert.Equal(["a"], CapacityProviderStrategy.Distribute([new StrategyItem("a", 0, 1), new StrategyItem("b", 0)], 3));
    }

    [Fact]
    public void Fargate_hosts_are_only_for_Fargate_and_a_providers_pool_only_for_its_tasks()
    {
        ContainerInstanceRecord Host(string id, string? provider) => new() { Cluster = "c", Id = id, Ec2InstanceId = id, RegisteredCpu = 1, RegisteredMemory = 1, CapacityProviderName = provider };
        var hosts = new[] { Host("plain", null), Host("fargate", "FARGATE"), Host("pooled", "pool-a") };
        Assert.Equal(["plain", "pooled"], CapacityPools.Eligible(hosts, null).Select(h => h.Id));
        Assert.Equal(["fargate"], CapacityPools.Eligible(hosts, "FARGATE").Select(h => h.Id));
        Assert.Equal(["fargate"], CapacityPools.Eligible(hosts, "FARGATE_SPOT").Select(h => h.Id));
        Assert.Equal(["pooled"], CapacityPools.Eligible(hosts, "pool-a").Select(h => h.Id));
    }
}
