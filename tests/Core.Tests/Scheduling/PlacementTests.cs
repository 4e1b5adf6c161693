using Serverless.Core.ContainerInstances;
using Serverless.Core.Scheduling;

namespace Serverless.Core.Tests.Scheduling;

public class PlacementTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static ContainerInstanceRecord Host(
        string id, int cpu = 2048, int memory = 4096, string status = ContainerInstanceRecord.Active,
        bool connected = true, string? zone = null, params Reservation[] reservations) => new()
    {
        Cluster = "c",
        Id = id,
        Ec2InstanceId = $"host-{id}",
        Status = status,
        RegisteredCpu = cpu,
        RegisteredMemory = memory,
        Reservations = reservations,
        Attributes = zone is null ? [] : [new InstanceAttribute("ecs.availability-zone", zone)],
        LastHeartbeat = connected ? Now.AddSeconds(-5) : Now.AddMinutes(-10),
    };

    private static TaskNeed Need(int cpu = 256, int memory = 256, int[]? tcp = null, int[]? udp = null) => new(cpu, memory, tcp ?? [], udp ?? []);

    private static PlacementDecision Choose(TaskNeed need, IReadOnlyList<ContainerInstanceRecord> hosts,
        IReadOnlyList<PlacementStrategy>? strategies = null, Dictionary<string, int>? group = null, bool distinct = false,
        IReadOnlyList<Func<ContainerInstanceRecord, bool>>? memberOf = null, Func<int, int>? random = null,
        IReadOnlyList<InstanceAttribute>? required = null)
        => Placement.Choose(new PlacementRequest
        {
            Need = need,
            Instances = hosts,
            Strategies = strategies ?? [],
            GroupTasksPerInstance = group ?? new(),
            DistinctInstance = distinct,
            MemberOf = memberOf ?? [],
            RequiredAttributes = required ?? [],
            Now = Now,
            AgentTimeout = TimeSpan.FromSeconds(60),
            Random = random ?? (_ => 0),
        });

    [Fact]
    public void Binpack_on_memory_prefers_the_fullest_host_that_still_fits()
    {
        var roomy = Host("b", memory: 4096);
        var full = Host("a", memory: 512);
        Assert.Same(full, Choose(Need(memory: 256), [roomy, full], [new("binpack", "memory")]).Instance);
    }

    [Fact]
    public void Binpack_on_cpu_counts_existing_reservations()
    {
        var busy = Host("a", cpu: 2048, reservations: new Reservation("t", 1536, 0, [], []));
        var idle = Host("b", cpu: 1024);
        Assert.Same(busy, Choose(Need(cpu: 256), [idle, busy], [new("binpack", "cpu")]).Instance);
    }

    [Fact]
    public void Spread_on_instance_id_prefers_the_host_with_fewest_tasks_of_the_group()
    {
        var a = Host("a");
        var b = Host("b");
        Assert.Same(b, Choose(Need(), [a, b], [new("spread", "instanceId")], new() { ["a"] = 2, ["b"] = 1 }).Instance);
    }

    [Fact]
    public void Spread_on_an_attribute_balances_the_values_before_instances()
    {
        var a1 = Host("a1", zone: "az-a");
        var a2 = Host("a2", zone: "az-a");
        var b1 = Host("b1", zone: "az-b");
        var decision = Choose(Need(), [a1, a2, b1], Placement.ServiceDefault, new() { ["a1"] = 1, ["b1"] = 1, ["a2"] = 0 });
        // az-a holds one task, az-b one: both zones tie, then instances: a2 has none.
        Assert.Same(a2, decision.Instance);
    }

    [Fact]
    public void Strategies_chain_spread_then_binpack_within_the_chosen_zone()
    {
        var zoneA = Host("a", zone: "az-a", memory: 1024);
        var zoneB1 = Host("b1", zone: "az-b", memory: 4096);
        var zoneB2 = Host("b2", zone: "az-b", memory: 1024);
        var decision = Choose(Need(), [zoneA, zoneB1, zoneB2], [new("spread", "attribute:ecs.availability-zone"), new("binpack", "memory")], new() { ["a"] = 1 });
        Assert.Same(zoneB2, decision.Instance);
    }

    [Fact]
    public void Random_uses_the_injected_source_over_the_feasible_hosts_only()
    {
        var full = Host("a", memory: 128);
        var b = Host("b");
        var c = Host("c");
        Assert.Same(c, Choose(Need(memory: 256), [full, b, c], [new("random")], random: n => n - 1).Instance);
    }

    [Fact]
    public void Ties_break_on_the_instance_id_so_decisions_replay()
    {
        var b = Host("b");
        var a = Host("a");
        Assert.Same(a, Choose(Need(), [b, a]).Instance);
    }

    [Theory]
    [InlineData(4096, 256, "RESOURCE:CPU")]
    [InlineData(256, 8192, "RESOURCE:MEMORY")]
    public void A_task_that_fits_nowhere_names_the_missing_resource(int cpu, int memory, string reason)
    {
        var decision = Choose(Need(cpu, memory), [Host("a"), Host("b", memory: 2048)]);
        Assert.False(decision.Placed);
        Assert.Equal(reason, decision.Reason);
        Assert.Equal("a", decision.Closest!.Id);
    }

    [Fact]
    public void A_fixed_host_port_in_use_rules_out_the_host()
    {
        var taken = Host("a", reservations: new Reservation("t", 0, 0, [8080], []));
        var free = Host("b");
        Assert.Same(free, Choose(Need(tcp: [8080]), [taken, free]).Instance);
        Assert.Equal(Placement.ReasonPorts, Choose(Need(tcp: [8080]), [taken]).Reason);
        Assert.Equal(Placement.ReasonPorts, Choose(Need(tcp: [22]), [free]).Reason);
        Assert.Equal(Placement.ReasonUdpPorts, Choose(Need(udp: [53]), [Host("c", reservations: new Reservation("u", 0, 0, [], [53]))]).Reason);
    }

    [Fact]
    public void Draining_and_disconnected_hosts_get_no_tasks()
    {
        var draining = Host("a", status: ContainerInstanceRecord.Draining);
        var silent = Host("b", connected: false);
        var decision = Choose(Need(), [draining, silent]);
        Assert.False(decision.Placed);
        Assert.Equal(Placement.ReasonAgent, decision.Reason);
        Assert.Same(Host("c").Id, Choose(Need(), [draining, silent, Host("c")]).Instance!.Id);
    }

    [Fact]
    public void Distinct_instance_skips_hosts_already_running_the_group()
    {
        var a = Host("a");
        var b = Host("b");
        Assert.Same(b, Choose(Need(), [a, b], group: new() { ["a"] = 1 }, distinct: true).Instance);
        Assert.Equal(Placement.ReasonDistinctInstance, Choose(Need(), [a], group: new() { ["a"] = 1 }, distinct: true).Reason);
    }

    [Fact]
    public void Member_of_constraints_filter_hosts_and_report_attribute()
    {
        var a = Host("a", zone: "az-a");
        var b = Host("b", zone: "az-b");
        Func<ContainerInstanceRecord, bool> inB = i => i.Attribute("ecs.availability-zone") == "az-b";
        Assert.Same(b, Choose(Need(), [a, b], memberOf: [inB]).Instance);
        Assert.Equal(Placement.ReasonAttribute, Choose(Need(), [a], memberOf: [inB]).Reason);
    }

    private static ContainerInstanceRecord WithAttributes(ContainerInstanceRecord host, params InstanceAttribute[] attributes)
        => host with { Attributes = attributes };

    private static InstanceAttribute A(string name, string? value) => new(name, value);

    [Fact]
    public void Required_attributes_send_the_task_only_to_instances_that_have_them_all()
    {
        var plain = WithAttributes(Host("a"), A("ecs.os-type", "linux"));
        var privileged = WithAttributes(Host("b"), A("ecs.os-type", "linux"), A("com.amazonaws.ecs.capability.privileged-container", null));
        var both = WithAttributes(Host("c"), A("com.amazonaws.ecs.capability.privileged-container", null), A("ecs-worker.network-mode.host", null));
        IReadOnlyList<InstanceAttribute> required = [new("com.amazonaws.ecs.capability.privileged-container", null), new("ecs-worker.network-mode.host", null)];

        Assert.Same(both, Choose(Need(), [plain, privileged, both], required: required).Instance);
        Assert.Same(privileged, Choose(Need(), [plain, privileged], required: [required[0]]).Instance);
    }

    [Fact]
    public void No_instance_with_a_required_attribute_fails_placement_with_ATTRIBUTE()
    {
        var plain = WithAttributes(Host("a"), A("ecs.os-type", "linux"));
        var decision = Choose(Need(), [plain], required: [new("com.amazonaws.ecs.capability.privileged-container", null)]);
        Assert.False(decision.Placed);
        Assert.Equal(Placement.ReasonAttribute, decision.Reason);
    }

    [Fact]
    public void A_required_value_must_match_and_a_required_name_alone_matches_any_value()
    {
        var linux = WithAttributes(Host("a"), A("ecs.os-type", "linux"));
        var windows = WithAttributes(Host("b"), A("ecs.os-type", "windows"));

        Assert.Same(windows, Choose(Need(), [linux, windows], required: [new("ecs.os-type", "windows")]).Instance);
        Assert.Same(linux, Choose(Need(), [linux, windows], required: [new("ecs.os-type", null)]).Instance);
        Assert.Equal(Placement.ReasonAttribute, Choose(Need(), [linux], required: [new("ecs.os-type", "windows")]).Reason);
        Assert.Equal(Placement.ReasonAttribute, Choose(Need(), [linux], required: [new("ecs.os-type", "")]).Reason);
    }

    [Fact]
    public void Required_attributes_are_judged_before_resources()
    {
        // The attribute stage comes first, as ECS names the first filter an instance fails.
        var small = WithAttributes(Host("a", memory: 128));
        Assert.Equal(Placement.ReasonAttribute, Choose(Need(memory: 256), [small], required: [new("x", null)]).Reason);
    }
}
