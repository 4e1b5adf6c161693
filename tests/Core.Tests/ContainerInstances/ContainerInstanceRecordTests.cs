using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Tests.ContainerInstances;

/// <summary>What placement reads from an instance: what is left, which ports are taken, whether it counts as registered.</summary>
public sealed class ContainerInstanceRecordTests
{
    private static ContainerInstanceRecord Host(int cpu = 1024, int memory = 2048, params Reservation[] reservations) => new()
    {
        Cluster = "default",
        Id = "0123456789abcdef0123456789abcdef",
        Ec2InstanceId = "i-1",
        RegisteredCpu = cpu,
        RegisteredMemory = memory,
        Reservations = reservations,
    };

    private static Reservation Task(string id, int cpu = 0, int memory = 0, int[]? tcp = null, int[]? udp = null)
        => new(id, cpu, memory, tcp ?? [], udp ?? []);

    [Fact]
    public void Remaining_resources_are_registered_minus_reserved()
    {
        var host = Host(1024, 2048, Task("a", 100, 200), Task("b", 300, 400));
        Assert.Equal((624, 1448), (host.RemainingCpu, host.RemainingMemory));
    }

    [Theory]
    [InlineData(22)]
    [InlineData(2375)]
    [InlineData(51678)]
    public void A_port_the_host_registered_as_its_own_counts_as_used(int port)
        => Assert.Contains(port, Host().UsedTcpPorts);

    [Fact]
    public void Only_active_and_draining_instances_count_as_registered()
    {
        Assert.True(Host().IsRegistered);
        Assert.True((Host() with { Status = ContainerInstanceRecord.Draining }).IsRegistered);
        Assert.False((Host() with { Status = ContainerInstanceRecord.Inactive }).IsRegistered);
    }

    [Fact]
    public void A_row_round_trips_every_member()
    {
        var host = Host(2048, 4096, Task("t1", 256, 512, [8080], [53]) with { Group = "service:web" }) with
        {
            Status = ContainerInstanceRecord.Draining,
            StatusReason = "maintenance",
            RegisteredTcpPorts = [22, 2375],
            RegisteredUdpPorts = [161],
            Attributes = [new("ecs.os-type", "linux"), new("ecs.capability.privileged-container", null)],
            Tags = [new("env", "test")],
            RunningTasksCount = 3,
            PendingTasksCount = 1,
            RegisteredAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero),
            LastHeartbeat = new DateTimeOffset(2025, 1, 2, 3, 4, 6, TimeSpan.Zero),
            Version = 7,
            AgentVersion = "1.2.3",
            AgentHash = "abc",
            DockerVersion = "20.10",
        };

        var back = ContainerInstanceRecord.FromEntity(host.ToEntity());

        Assert.Equivalent(host, back, strict: true);
    }
}
