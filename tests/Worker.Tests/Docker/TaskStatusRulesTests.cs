using Docker.DotNet.Models;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Tests.Docker;

public sealed class TaskStatusRulesTests
{
    private static ContainerSnapshot C(string name, ContainerKnownStatus status, bool essential = true, bool started = false, string? health = null, bool check = false)
        => new(name, essential, status, started || status == ContainerKnownStatus.Running, null, health, check);

    [Fact]
    public void A_task_runs_once_every_container_runs()
    {
        Assert.False(TaskStatusRules.IsRunning([C("a", ContainerKnownStatus.Running), C("b", ContainerKnownStatus.Created)]));
        Assert.True(TaskStatusRules.IsRunning([C("a", ContainerKnownStatus.Running), C("b", ContainerKnownStatus.Running)]));
    }

    [Fact]
    public void A_finished_non_essential_container_does_not_hold_the_task_back()
        => Assert.True(TaskStatusRules.IsRunning([C("init", ContainerKnownStatus.Stopped, essential: false, started: true), C("app", ContainerKnownStatus.Running)]));

    [Fact]
    public void A_stopped_essential_container_means_the_task_is_not_running()
        => Assert.False(TaskStatusRules.IsRunning([C("app", ContainerKnownStatus.Stopped, started: true), C("side", ContainerKnownStatus.Running, essential: false)]));

    [Fact]
    public void Task_health_follows_the_essential_containers_with_health_checks()
    {
        var healthy = C("a", ContainerKnownStatus.Running, health: "HEALTHY", check: true);
        var unknown = C("b", ContainerKnownStatus.Running, health: "UNKNOWN", check: true);
        var unhealthy = C("c", ContainerKnownStatus.Running, health: "UNHEALTHY", check: true);
        var unchecked_ = C("d", ContainerKnownStatus.Running);
        var sidecar = C("e", ContainerKnownStatus.Running, essential: false, health: "UNHEALTHY", check: true);

        Assert.Equal("HEALTHY", TaskStatusRules.TaskHealth([healthy, unchecked_, sidecar]));
        Assert.Equal("UNKNOWN", TaskStatusRules.TaskHealth([healthy, unknown]));
        Assert.Equal("UNHEALTHY", TaskStatusRules.TaskHealth([healthy, unknown, unhealthy]));
        Assert.Equal("UNKNOWN", TaskStatusRules.TaskHealth([unchecked_, sidecar]));
    }

    [Theory]
    [InlineData(null, null, "PENDING", "x", true)]
    [InlineData("PENDING", "x", "RUNNING", "y", true)]
    [InlineData("RUNNING", "y", "RUNNING", "y", false)]
    [InlineData("RUNNING", "y", "RUNNING", "z", true)]
    [InlineData("RUNNING", "y", "PENDING", "x", false)]
    [InlineData("STOPPING", "y", "RUNNING", "z", false)]
    [InlineData("STOPPED", "y", "STOPPED", "z", false)]
    public void Reports_only_move_forward_and_only_when_something_changed(string? last, string? lastPrint, string next, string nextPrint, bool send)
        => Assert.Equal(send, TaskStatusRules.ShouldReport(last, lastPrint, next, nextPrint));

    [Fact]
    public void Dependents_stop_before_what_they_depend_on()
    {
        var plans = new[] { Plan("db"), Plan("app", dependsOn: ["db"]), Plan("proxy", dependsOn: ["app"], createAfter: ["db"]) };
        var dependents = TaskStatusRules.Dependents(plans);
        Assert.Equal(["app", "proxy"], dependents["db"]);
        Assert.Equal(["proxy"], dependents["app"]);
        Assert.Empty(dependents["proxy"]);
    }

    [Fact]
    public void Bridge_bindings_report_the_port_docker_picked_on_ipv4()
    {
        var ports = new Dictionary<string, IList<PortBinding>>
        {
            ["80/tcp"] = [new PortBinding { HostIP = "0.0.0.0", HostPort = "49153" }, new PortBinding { HostIP = "::", HostPort = "49153" }],
            ["53/udp"] = [new PortBinding { HostIP = "::", HostPort = "49154" }],
        };
        var bindings = TaskStatusRules.NetworkBindings(ports, "bridge", [new(80, 0, "tcp"), new(53, 0, "udp"), new(9000, 0, "tcp")]);
        Assert.Equal([new NetworkBinding("0.0.0.0", 80, 49153, "tcp"), new NetworkBinding("0.0.0.0", 53, 49154, "udp")], bindings);
    }

    [Fact]
    public void Host_mode_bindings_are_the_containers_own_ports()
        => Assert.Equal([new NetworkBinding("0.0.0.0", 8080, 8080, "tcp")], TaskStatusRules.NetworkBindings(null, "host", [new(8080, 8080, "tcp")]));

    private static ContainerPlan Plan(string name, string[]? dependsOn = null, string[]? createAfter = null)
        => new(name, name, "i", true, TimeSpan.Zero, TimeSpan.Zero, false,
            [.. (dependsOn ?? []).Select(d => new ContainerDependency(d, "START"))], createAfter ?? [], [], new CreateContainerParameters());
}
