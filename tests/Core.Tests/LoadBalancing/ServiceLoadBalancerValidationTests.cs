using Serverless.Core.Tests.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.LoadBalancing;

/// <summary>A service's <c>loadBalancers</c> are checked against its task definition with ECS's errors.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ServiceLoadBalancerValidationTests(AzuriteFixture azurite) : IDisposable
{
    private readonly ApiHarness _api = new(azurite, TestNames.Unique("elbsvc"));

    public void Dispose() => _api.Dispose();

    [Theory]
    [InlineData("""{"targetGroupArn":"arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef","containerName":"api","containerPort":8080}""", "The container api does not exist in the task definition.")]
    [InlineData("""{"targetGroupArn":"arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef","containerName":"web","containerPort":9090}""", "The container web did not have a container port 9090 defined.")]
    public async Task A_load_balancer_must_name_a_container_and_a_port_it_maps(string loadBalancer, string message)
    {
        var ct = CancellationToken.None;
        await _api.EcsAsync("CreateCluster", """{"clusterName":"lb"}""", ct);
        var registered = await _api.EcsAsync("RegisterTaskDefinition",
            """{"family":"web","containerDefinitions":[{"name":"web","image":"busybox","memory":32,"portMappings":[{"containerPort":8080}]}]}""", ct);
        Assert.Equal(200, registered.Status);

        var answer = await _api.EcsAsync("CreateService",
            $$"""{"cluster":"lb","serviceName":"web","taskDefinition":"web","desiredCount":1,"loadBalancers":[{{loadBalancer}}]}""", ct);
        Assert.Equal((400, "InvalidParameterException", message), (answer.Status, answer.Type, answer.Message));
    }

    [Fact]
    public async Task A_valid_load_balancer_is_kept_and_answered_as_given()
    {
        var ct = CancellationToken.None;
        await _api.EcsAsync("CreateCluster", """{"clusterName":"lb"}""", ct);
        await _api.EcsAsync("RegisterTaskDefinition",
            """{"family":"web","containerDefinitions":[{"name":"web","image":"busybox","memory":32,"portMappings":[{"containerPort":8080}]}]}""", ct);
        const string balancer = """[{"targetGroupArn":"arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef","containerName":"web","containerPort":8080}]""";

        var answer = await _api.EcsAsync("CreateService", $$"""{"cluster":"lb","serviceName":"web","taskDefinition":"web","desiredCount":0,"loadBalancers":{{balancer}}}""", ct);
        Assert.True(answer.Status == 200, answer.Raw);
        Assert.Equal(balancer, answer.Body!["service"]!["loadBalancers"]!.ToJsonString());
    }
}
