using Serverless.Worker.Metadata;

namespace Serverless.Worker.Tests.Metadata;

public sealed class BridgeGatewayTests
{
    [Theory]
    [InlineData("172.17.0.0/16", "172.17.0.1")]
    [InlineData("10.10.4.0/22", "10.10.4.1")]
    [InlineData("192.168.0.0/30", "192.168.0.1")]
    [InlineData("192.168.0.0/31", null)]
    [InlineData("fd00::/64", null)]
    [InlineData("nonsense", null)]
    [InlineData(null, null)]
    public void A_bridge_without_a_gateway_is_served_on_its_subnets_first_address(string? subnet, string? expected)
        => Assert.Equal(expected, TaskMetadataServer.FirstAddress(subnet));
}
