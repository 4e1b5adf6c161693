using Serverless.Worker.Registration;

namespace Serverless.Worker.Tests.Registration;

/// <summary>The host address a worker registers, where a load balancer reaches its tasks' host ports: one IP address.</summary>
public sealed class HostAddressTests
{
    [Theory]
    [InlineData(null, "127.0.0.1")]
    [InlineData("", "127.0.0.1")]
    [InlineData("10.60.0.4", "10.60.0.4")]
    [InlineData("fd00::4", "fd00::4")]
    public void The_configured_address_is_registered_and_loopback_when_none_is(string? configured, string registered)
        => Assert.Equal(registered, InstanceRegistration.HostAddress(new WorkerOptions { HostAddress = configured }));

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("worker-1.internal")]
    public void An_address_a_balancer_cannot_connect_to_stops_the_worker(string configured)
        => Assert.Throws<InvalidOperationException>(() => InstanceRegistration.HostAddress(new WorkerOptions { HostAddress = configured }));
}
