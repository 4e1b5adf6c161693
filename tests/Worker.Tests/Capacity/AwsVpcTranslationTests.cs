using System.Text.Json.Nodes;
using Serverless.Core.TaskDefinitions;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Tests.Capacity;

/// <summary>How an awsvpc task maps onto Docker (pure): a pause container on its subnet's network, the rest in its namespace.</summary>
public sealed class AwsVpcTranslationTests
{
    private const string TaskArn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef";
    private static readonly TaskContext Context = new("default", TaskArn, "11111111111111111111111111111111", SubnetId: "subnet-0a1b2c3d");

    private static TaskPlan Plan(string requestJson, TaskContext? context = null)
    {
        var body = TaskDefinitionDefaults.Resolve(JsonNode.Parse(requestJson)!.AsObject(), "arn:aws:iam::000000000000:user/test");
        var described = TaskDefinitionDefaults.Describe(body, "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1", 1, "ACTIVE", DateTimeOffset.UnixEpoch, null, null);
        return TaskTranslation.Plan(described, context ?? Context, null, "cafe01", PlanDefaults.Agent with { PauseImage = "pause:1" });
    }

    [Fact]
    public void The_pause_container_comes_first_on_its_subnets_network_and_the_others_join_its_namespace()
    {
        var plan = Plan("""
            {"family": "web", "networkMode": "awsvpc", "containerDefinitions": [
              {"name": "app", "image": "i", "memory": 64, "dnsServers": ["10.0.0.2"], "portMappings": [{"containerPort": 80}]},
              {"name": "side", "image": "i", "memory": 64, "dependsOn": [{"containerName": "app", "condition": "START"}]}]}
            """);

        var network = Assert.IsType<TaskNetworkPlan>(plan.Network);
        // The subnet's network on this worker, shared by its tasks: no task ARN on it, so no task's stop removes it.
        Assert.Equal("ecs-awsvpc-subnet-0a1b2c3d-111111111111", network.Name);
        Assert.Equal("subnet-0a1b2c3d", network.SubnetId);
        Assert.Equal("subnet-0a1b2c3d", network.Labels[TaskNetworkPlan.SubnetLabel]);
        Assert.Equal("11111111111111111111111111111111", network.Labels[DockerLabels.InstanceId]);
        Assert.False(network.Labels.ContainsKey(DockerLabels.TaskArn));

        var pause = plan.Containers[0];
        Assert.True(pause.Internal);
        Assert.True(pause.Essential);
        Assert.Equal(TaskTranslation.PauseContainerName, pause.Name);
        Assert.Equal("pause:1", pause.Parameters.Image);
        Assert.Equal(network.Name, pause.Parameters.HostConfig.NetworkMode);
        Assert.Equal(["10.0.0.2"], pause.Parameters.HostConfig.DNS);
        Assert.Equal("ecs-web-1-internalecspause-cafe01", pause.DockerName);

        foreach (var container in plan.Containers.Skip(1))
        {
            Assert.False(container.Internal);
            Assert.Equal("container:ecs-web-1-internalecspause-cafe01", container.Parameters.HostConfig.NetworkMode);
            Assert.Contains(new ContainerDependency(TaskTranslation.PauseContainerName, "START"), container.DependsOn);
            Assert.Contains(TaskTranslation.PauseContainerName, container.CreateAfter);
            // Docker refuses these beside a shared namespace, and awsvpc publishes no host ports.
            Assert.Null(container.Parameters.HostConfig.DNS);
            Assert.Null(container.Parameters.HostConfig.PortBindings);
            Assert.Null(container.Parameters.ExposedPorts);
        }
        Assert.Contains(new ContainerDependency("app", "START"), plan.Container("side")!.DependsOn);
        Assert.Null(plan.Refusal);
    }

    [Fact]
    public void Tasks_of_one_subnet_share_its_network_other_subnets_and_workers_have_their_own()
    {
        const string definition = """{"family": "web", "networkMode": "awsvpc", "containerDefinitions": [{"name": "app", "image": "i", "memory": 64}]}""";
        var other = Context with { TaskArn = TaskArn.Replace("0123", "4567", StringComparison.Ordinal) };

        Assert.Equal(Plan(definition).Network!.Name, Plan(definition, other).Network!.Name);
        Assert.NotEqual(Plan(definition).Network!.Name, Plan(definition, other with { SubnetId = "subnet-99" }).Network!.Name);
        Assert.NotEqual(Plan(definition).Network!.Name, Plan(definition, other with { InstanceId = "22222222222222222222222222222222" }).Network!.Name);
        // A start that names no subnet (an older control plane's) joins the worker's default one.
        Assert.Equal("ecs-awsvpc-default-111111111111", Plan(definition, Context with { SubnetId = null }).Network!.Name);
    }

    [Fact]
    public void A_subnet_id_Docker_would_refuse_in_a_name_is_made_safe_and_stays_distinct()
    {
        var odd = TaskNetworkPlan.NameFor("subnet/1 a", "11111111111111111111111111111111");
        Assert.Matches("^ecs-awsvpc-subnet-1-a-[0-9a-f]{12}-111111111111$", odd);
        Assert.NotEqual(odd, TaskNetworkPlan.NameFor("subnet-1-a", "11111111111111111111111111111111"));
        Assert.NotEqual(odd, TaskNetworkPlan.NameFor("subnet:1 a", "11111111111111111111111111111111"));
        Assert.True(TaskNetworkPlan.IsSubnetNetwork(odd));
    }

    [Fact]
    public void A_bridge_task_has_no_network_of_its_own_and_no_pause_container()
    {
        var plan = Plan("""{"family": "web", "containerDefinitions": [{"name": "app", "image": "i", "memory": 64}]}""");
        Assert.Null(plan.Network);
        Assert.DoesNotContain(plan.Containers, c => c.Internal);
    }
}
