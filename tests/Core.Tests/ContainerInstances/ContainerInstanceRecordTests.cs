using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Tests.ContainerInstances;

/// <summary>The pure fit check every placement (and every retry after a lost reservation race) decides with.</summary>
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
    public void A_task_fits_when_cpu_and_memory_are_left()
        => Assert.True(Host(reservations: Task("a", 512, 1024)).Fits(512, 1024, [], []));

    [Fact]
    public void Remaining_resources_are_registered_minus_reserved()
    {
        var host = Host(1024, 2048, Task("a", 100, 200), Task("b", 300, 400));
        Assert.Equal((624, 1448), (host.RemainingCpu, host.RemainingMemory));
    }

    [Theory]
    [InlineData(513, 1, false)]
    [InlineData(1, 1025, false)]
    [InlineData(512, 1024, true)]
    [InlineData(0, 0, true)]
    public void A_task_fits_only_within_what_is_left(int cpu, int memory, bool fits)
        => Assert.Equal(fits, Host(reservations: Task("a", 512, 1024)).Fits(cpu, memory, [], []));

    [Theory]
    [InlineData(22)]
    [InlineData(2375)]
    [InlineData(51678)]
    public void A_port_the_host_registered_as_its_own_does_not_fit(int port)
        => Assert.False(Host().Fits(0, 0, [port], []));

    [Fact]
    public void A_host_port_held_by_another_task_does_not_fit()
    {
        var host = Host(reservations: Task("web", tcp: [8080], udp: [53]));
        Assert.False(host.Fits(0, 0, [8080], []));
        Assert.False(host.Fits(0, 0, [], [53]));
    }

    [Fact]
    public void The_same_port_number_fits_on_the_other_protocol()
    {
        var host = Host(reservations: Task("web", tcp: [8080], udp: [53]));
        Assert.True(host.Fits(0, 0, [53], [8080]));
    }

    [Fact]
    public void A_task_asking_for_one_port_twice_does_not_fit()
    {
        Assert.False(Host().Fits(0, 0, [8080, 8080], []));
        Assert.False(Host().Fits(0, 0, [], [53, 53]));
    }

    [Fact]
    public void Fitting_a_reservation_reads_its_cpu_memory_and_ports()
    {
        var host = Host(1024, 1024, Task("web", 512, 512, tcp: [80]));
        Assert.True(host.Fits(Task("a", 512, 512, tcp: [81])));
        Assert.False(host.Fits(Task("b", 512, 512, tcp: [80])));
        Assert.False(host.Fits(Task("c", 513, 1)));
    }

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
