using System.Text.Json.Nodes;
using Serverless.Core.TaskDefinitions;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Tests.Capacity;

/// <summary>How an awsvpc task maps onto Docker (pure): a pause container on the task's network, the rest in its namespace.</summary>
public sealed class AwsVpcTranslationTests
{
    private const string TaskArn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef";
    private static readonly TaskContext Context = new("default", TaskArn, "11111111111111111111111111111111");

    private static TaskPlan Plan(string requestJson)
    {
        var body = TaskDefinitionDefaults.Resolve(JsonNode.Parse(requestJson)!.AsObject(), "arn:aws:iam::000000000000:user/test");
        var described = TaskDefinitionDefaults.Describe(body, "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1", 1, "ACTIVE", DateTimeOffset.UnixEpoch, null, null);
        return TaskTranslation.Plan(described, Context, null, "cafe01", PlanDefaults.Agent with { PauseImage = "pause:1" });
    }

    [Fact]
    public void The_pause_container_comes_first_on_the_tasks_network_and_the_others_join_its_namespace()
    {
        var plan = Plan("""
            {"family": "web", "networkMode": "awsvpc", "containerDefinitions": [
              {"name": "app", "image": "i", "memory": 64, "dnsServers": ["10.0.0.2"], "portMappings": [{"containerPort": 80}]},
              {"name": "side", "image": "i", "memory": 64, "dependsOn": [{"containerName": "app", "condition": "START"}]}]}
            """);

        var network = Assert.IsType<TaskNetworkPlan>(plan.Network);
        Assert.Equal("ecs-task-0123456789abcdef0123456789abcdef", network.Name);
        Assert.Equal(TaskArn, network.Labels[DockerLabels.TaskArn]);
        Assert.Equal("11111111111111111111111111111111", network.Labels[DockerLabels.InstanceId]);

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
    public void A_bridge_task_has_no_network_of_its_own_and_no_pause_container()
    {
        var plan = Plan("""{"family": "web", "containerDefinitions": [{"name": "app", "image": "i", "memory": 64}]}""");
        Assert.Null(plan.Network);
        Assert.DoesNotContain(plan.Containers, c => c.Internal);
    }
}
