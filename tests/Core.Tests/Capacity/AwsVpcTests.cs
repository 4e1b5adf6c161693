using System.Text.Json.Nodes;
using Azure;
using Serverless.Core.Api;
using Serverless.Core.Capacity;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;

namespace Serverless.Core.Tests.Capacity;

/// <summary>awsvpc in the control plane: ECS's checks of a network configuration, and the interface a task shows.</summary>
public sealed class AwsVpcTests
{
    private static TaskDefinitionRecord Definition(string networkMode) => new(
        "web", 1, TaskDefinitionRecord.Active, "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        new JsonObject { ["networkMode"] = networkMode, ["containerDefinitions"] = new JsonArray() }, [], ETag.All);

    private static JsonNode? Network(string json) => JsonNode.Parse(json);

    [Theory]
    [InlineData("awsvpc", null, "Network Configuration must be provided when networkMode 'awsvpc' is specified.")]
    [InlineData("awsvpc", """{"awsvpcConfiguration": {"subnets": []}}""", "subnets can not be empty.")]
    [InlineData("awsvpc", """{"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}}""", "Assign public IP is not supported for this launch type.")]
    [InlineData("awsvpc", """{"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["1","2","3","4","5","6"]}}""", "securityGroups can have at most 5 items.")]
    [InlineData("bridge", """{"awsvpcConfiguration": {"subnets": ["subnet-1"]}}""", "Network Configuration is not valid for the given networkMode of this task definition.")]
    public void A_network_configuration_is_checked_as_ECS_checks_it(string networkMode, string? network, string message)
    {
        var error = Assert.Throws<InvalidParameterException>(() => AwsVpcConfiguration.Check(Definition(networkMode), network is null ? null : Network(network), fargate: false));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Fargate_may_assign_a_public_ip_and_a_bridge_task_needs_no_configuration()
    {
        var checkedConfiguration = AwsVpcConfiguration.Check(Definition("awsvpc"),
            Network("""{"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"], "assignPublicIp": "ENABLED"}}"""), fargate: true);
        Assert.Equal(["subnet-a", "subnet-b"], checkedConfiguration!.Subnets);
        Assert.Equal("ENABLED", checkedConfiguration.AssignPublicIp);
        Assert.Null(AwsVpcConfiguration.Check(Definition("bridge"), null, fargate: false));
    }

    [Fact]
    public void The_interface_is_attached_when_the_worker_reports_the_address_and_deleted_when_the_task_stops()
    {
        var configuration = new AwsVpcConfiguration(["subnet-a", "subnet-b"], ["sg-1"], "DISABLED");
        var attachment = NetworkAttachment.ForTask("0123456789abcdef0123456789abcdef", configuration);
        Assert.Equal(attachment.NetworkInterfaceId, NetworkAttachment.ForTask("0123456789abcdef0123456789abcdef", configuration).NetworkInterfaceId);
        Assert.Matches("^eni-[0-9a-f]{17}$", attachment.NetworkInterfaceId);
        Assert.Equal(NetworkAttachment.Precreated, attachment.Status);
        Assert.Empty(attachment.ContainerInterfaces());

        var task = new TaskRecord
        {
            Cluster = "default", Id = "0123456789abcdef0123456789abcdef", Group = "family:web", TaskDefinitionArn = "td", Family = "web",
            ContainerInstanceId = "i", LastStatus = EcsTaskStatus.Provisioning, Attachment = attachment,
            Containers = [new TaskContainer { Name = "app", Id = "c", Image = "i" }],
        };
        var running = TaskStateApplier.Merge(task, Report(EcsTaskStatus.Running, new TaskNetworkInterface("172.20.0.2", "02:42:ac:14:00:02")), DateTimeOffset.UnixEpoch)!;
        Assert.Equal(EcsTaskStatus.Running, running.LastStatus);
        Assert.Equal(NetworkAttachment.Attached, running.Attachment!.Status);
        var json = running.Attachment.ToJson();
        Assert.Equal("ElasticNetworkInterface", json["type"]!.GetValue<string>());
        var details = json["details"]!.AsArray().ToDictionary(d => d!["name"]!.GetValue<string>(), d => d!["value"]!.GetValue<string>());
        Assert.Equal("subnet-a", details["subnetId"]);
        Assert.Equal("172.20.0.2", details["privateIPv4Address"]);
        Assert.Equal("02:42:ac:14:00:02", details["macAddress"]);
        Assert.Equal(attachment.NetworkInterfaceId, details["networkInterfaceId"]);
        Assert.Equal(attachment.Id, running.Attachment.ContainerInterfaces()[0]!["attachmentId"]!.GetValue<string>());

        var stopped = TaskStateApplier.Merge(running, Report(EcsTaskStatus.Stopped, null), DateTimeOffset.UnixEpoch)!;
        Assert.Equal(NetworkAttachment.Deleted, stopped.Attachment!.Status);
        Assert.Equal("172.20.0.2", stopped.Attachment.PrivateIpv4Address);
    }

    private static TaskStateChange Report(string status, TaskNetworkInterface? eni) => new()
    {
        Cluster = "default",
        TaskArn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef",
        ContainerInstanceArn = "ci",
        LastStatus = status,
        NetworkInterface = eni,
        ObservedAt = DateTimeOffset.UnixEpoch.AddSeconds(status == EcsTaskStatus.Stopped ? 2 : 1),
    };
}
