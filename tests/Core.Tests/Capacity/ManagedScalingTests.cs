using System.Text.Json.Nodes;
using Serverless.Core.Capacity;
using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Tests.Capacity;

/// <summary>CapacityProviderReservation and the pool's next size, as AWS documents cluster auto scaling (pure).</summary>
public sealed class ManagedScalingTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static ContainerInstanceRecord Host(string id, int memory = 1024, params string[] tasks) => new()
    {
        Cluster = "c", Id = id, Ec2InstanceId = id, RegisteredCpu = 1024, RegisteredMemory = memory, CapacityProviderName = "cp",
        Reservations = [.. tasks.Select(t => new Reservation(t, 256, 256, [], []) { Group = t.StartsWith("daemon", StringComparison.Ordinal) ? "service:d" : "family:x" })],
        RegisteredAt = Now,
    };

    private static PoolView View(IReadOnlyList<ContainerInstanceRecord> hosts, int waiting = 0, int taskMemory = 256) => new()
    {
        Instances = hosts,
        Waiting = [.. Enumerable.Repeat((256, taskMemory), waiting)],
        DaemonGroups = new HashSet<string> { "service:d" },
        InstanceCpu = 1024,
        InstanceMemory = 1024,
    };

    private static WorkerPoolRecord Pool(int desired, int min = 0, int max = 10, DateTimeOffset? lowSince = null, DateTimeOffset? lastOut = null)
        => new() { Name = "p", DesiredCapacity = desired, MinSize = min, MaxSize = max, LowSince = lowSince, LastScaleOutAt = lastOut, Running = ["a", "b", "busy", "idle-1", "idle-2"] };

    private static ManagedScalingSettings Settings(int target = 100, int min = 1, int max = 10, int warmup = 300) => new(true, target, min, max, warmup);

    [Fact]
    public void The_metric_is_100_for_an_empty_pool_and_200_when_tasks_wait_with_no_instance()
    {
        Assert.Equal(new CapacityReservation(0, 0, 100), ManagedScaling.Measure(View([])));
        Assert.Equal(200, ManagedScaling.Measure(View([], waiting: 1)).Value);
    }

    [Fact]
    public void Waiting_tasks_need_the_instances_their_sizes_pack_into()
    {
        // Four 256 MiB tasks fill one 1024 MiB instance; a fifth needs a second; a full host adds nothing.
        var full = Host("a", 1024, "t1", "t2", "t3", "t4");
        var measured = ManagedScaling.Measure(View([full], waiting: 5));
        Assert.Equal((3, 1, 300.0), (measured.Needed, measured.Present, measured.Value));
        // Room left on a present instance is used first.
        Assert.Equal(0, ManagedScaling.ExtraInstances(View([Host("b", 1024, "t1")], waiting: 3)));
        // A task bigger than an instance still asks for one.
        Assert.Equal(1, ManagedScaling.ExtraInstances(View([], waiting: 1, taskMemory: 4096)));
    }

    [Fact]
    public void Without_waiting_tasks_only_instances_with_a_non_daemon_task_are_needed()
    {
        var measured = ManagedScaling.Measure(View([Host("a", 1024, "t1"), Host("b", 1024, "daemon-1"), Host("c")]));
        Assert.Equal((1, 3), (measured.Needed, measured.Present));
        Assert.Equal(100.0 / 3, measured.Value, 6);
    }

    [Fact]
    public void Scale_out_takes_at_least_the_minimum_and_at_most_the_maximum_step_within_the_pool_maximum()
    {
        var view = View([], waiting: 12);   // 3 instances of four tasks each
        var reservation = ManagedScaling.Measure(view);
        Assert.Equal(2, ManagedScaling.Decide(view, reservation, Settings(max: 2), Pool(0), true, Now, TimeSpan.Zero)!.DesiredCapacity);
        Assert.Equal(3, ManagedScaling.Decide(view, reservation, Settings(), Pool(0), true, Now, TimeSpan.Zero)!.DesiredCapacity);
        Assert.Equal(2, ManagedScaling.Decide(view, reservation, Settings(), Pool(0, max: 2), true, Now, TimeSpan.Zero)!.DesiredCapacity);
        var one = View([], waiting: 1);
        Assert.Equal(3, ManagedScaling.Decide(one, ManagedScaling.Measure(one), Settings(min: 3), Pool(0), true, Now, TimeSpan.Zero)!.DesiredCapacity);
    }

    [Fact]
    public void A_target_below_100_keeps_spare_instances()
    {
        var view = View([Host("a", 1024, "t1"), Host("b", 1024, "t2")]);
        Assert.Equal(4, ManagedScaling.Decide(view, ManagedScaling.Measure(view), Settings(target: 50), Pool(2), true, Now, TimeSpan.Zero)!.DesiredCapacity);
    }

    [Fact]
    public void No_second_scale_out_while_the_last_ones_warm_up_and_have_not_all_arrived()
    {
        var view = View([], waiting: 8);
        var reservation = ManagedScaling.Measure(view);
        Assert.Null(ManagedScaling.Decide(view, reservation, Settings(max: 1, warmup: 60), Pool(1, lastOut: Now.AddSeconds(-10)), true, Now, TimeSpan.Zero));
        Assert.Equal(2, ManagedScaling.Decide(view, reservation, Settings(max: 1, warmup: 60), Pool(1, lastOut: Now.AddSeconds(-61)), true, Now, TimeSpan.Zero)!.DesiredCapacity);
    }

    [Fact]
    public void Scale_in_waits_for_a_steady_low_and_terminates_only_idle_instances_under_termination_protection()
    {
        var view = View([Host("busy", 1024, "t1"), Host("idle-1"), Host("idle-2", 1024, "daemon-1")]);
        var reservation = ManagedScaling.Measure(view);
        Assert.True(ManagedScaling.IsLow(reservation, Settings(), Pool(3)));
        Assert.Null(ManagedScaling.Decide(view, reservation, Settings(), Pool(3, lowSince: Now.AddSeconds(-5)), true, Now, TimeSpan.FromSeconds(10)));
        var step = ManagedScaling.Decide(view, reservation, Settings(), Pool(3, lowSince: Now.AddSeconds(-10)), true, Now, TimeSpan.FromSeconds(10))!;
        Assert.Equal(1, step.DesiredCapacity);
        Assert.Equal(["idle-1", "idle-2"], step.Terminate.Order());
        // Never below the pool's minimum; never a busy instance while protection is on.
        var one = ManagedScaling.Decide(view, reservation, Settings(max: 1), Pool(3, lowSince: Now.AddMinutes(-1)), true, Now, TimeSpan.Zero)!;
        Assert.Equal(2, one.DesiredCapacity);
        Assert.Equal(["idle-1"], one.Terminate);
        Assert.Null(ManagedScaling.Decide(View([Host("busy", 1024, "t1")]), ManagedScaling.Measure(View([Host("busy", 1024, "t1")])) with { Needed = 0 },
            Settings(), Pool(1, lowSince: Now.AddMinutes(-1)), true, Now, TimeSpan.Zero));
        Assert.Single(ManagedScaling.Decide(View([Host("busy", 1024, "t1")]), ManagedScaling.Measure(View([Host("busy", 1024, "t1")])) with { Needed = 0 },
            Settings(), Pool(1, lowSince: Now.AddMinutes(-1)), false, Now, TimeSpan.Zero)!.Terminate);
        Assert.Null(ManagedScaling.Decide(view, reservation, Settings(), Pool(3, min: 3, lowSince: Now.AddMinutes(-1)), true, Now, TimeSpan.Zero));
        // An instance registered to the provider by hand is not the pool's to terminate.
        Assert.Null(ManagedScaling.Decide(view, reservation, Settings(), Pool(3, lowSince: Now.AddMinutes(-1)) with { Running = ["busy"] }, true, Now, TimeSpan.Zero));
    }

    [Fact]
    public void Settings_take_ECS_defaults()
    {
        var settings = ManagedScalingSettings.Of(JsonNode.Parse("""{"managedScaling": {"status": "ENABLED"}}""")!.AsObject());
        Assert.Equal(new ManagedScalingSettings(true, 100, 1, 10000, 300), settings);
        Assert.False(ManagedScalingSettings.Of(new JsonObject()).Enabled);
        Assert.Equal("workers", WorkerPoolRecord.NameOf("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/workers"));
    }
}
