using Serverless.Worker.Docker;

namespace Serverless.Worker.Tests.Docker;

public sealed class DependencyConditionsTests
{
    private static ContainerSnapshot Created(string name = "dep") => new(name, false, ContainerKnownStatus.Created);
    private static ContainerSnapshot Running(string name = "dep", string? health = null, bool check = false) => new(name, false, ContainerKnownStatus.Running, Started: true, Health: health, HasHealthCheck: check);
    private static ContainerSnapshot Exited(int code, string name = "dep") => new(name, false, ContainerKnownStatus.Stopped, Started: true, ExitCode: code);
    private static ContainerSnapshot NeverStarted(string name = "dep") => new(name, false, ContainerKnownStatus.Stopped);

    private static DependencyVerdictKind Judge(string condition, ContainerSnapshot? state)
        => DependencyConditions.Evaluate("app", new ContainerDependency("dep", condition), state).Kind;

    [Theory]
    [InlineData("START")]
    [InlineData("COMPLETE")]
    [InlineData("SUCCESS")]
    public void A_created_dependency_is_waited_for(string condition)
        => Assert.Equal(DependencyVerdictKind.Waiting, Judge(condition, Created()));

    [Fact]
    public void Start_is_satisfied_once_the_dependency_runs_and_stays_so_after_it_exits()
    {
        Assert.Equal(DependencyVerdictKind.Satisfied, Judge("START", Running()));
        Assert.Equal(DependencyVerdictKind.Satisfied, Judge("START", Exited(1)));
    }

    [Fact]
    public void Complete_waits_while_running_and_accepts_any_exit_code()
    {
        Assert.Equal(DependencyVerdictKind.Waiting, Judge("COMPLETE", Running()));
        Assert.Equal(DependencyVerdictKind.Satisfied, Judge("COMPLETE", Exited(0)));
        Assert.Equal(DependencyVerdictKind.Satisfied, Judge("COMPLETE", Exited(2)));
    }

    [Fact]
    public void Success_needs_exit_code_zero_and_fails_for_good_on_any_other()
    {
        Assert.Equal(DependencyVerdictKind.Waiting, Judge("SUCCESS", Running()));
        Assert.Equal(DependencyVerdictKind.Satisfied, Judge("SUCCESS", Exited(0)));
        var failed = DependencyConditions.Evaluate("app", new ContainerDependency("dep", "SUCCESS"), Exited(1));
        Assert.Equal(DependencyVerdictKind.Impossible, failed.Kind);
        Assert.Equal("dependency graph: failed to resolve container ordering dependency [dep] for target [app] as dependency did not exit successfully.", failed.Reason);
    }

    [Fact]
    public void Healthy_waits_for_the_health_check_and_gives_up_when_the_dependency_stops()
    {
        Assert.Equal(DependencyVerdictKind.Waiting, Judge("HEALTHY", Running(health: "UNKNOWN", check: true)));
        Assert.Equal(DependencyVerdictKind.Waiting, Judge("HEALTHY", Running(health: "UNHEALTHY", check: true)));
        Assert.Equal(DependencyVerdictKind.Satisfied, Judge("HEALTHY", Running(health: "HEALTHY", check: true)));
        Assert.Equal(DependencyVerdictKind.Impossible, Judge("HEALTHY", Exited(0) with { HasHealthCheck = true }));
    }

    [Fact]
    public void Healthy_can_never_hold_for_a_container_without_a_health_check()
        => Assert.Equal(DependencyVerdictKind.Impossible, Judge("HEALTHY", Running()));

    [Theory]
    [InlineData("START")]
    [InlineData("COMPLETE")]
    [InlineData("SUCCESS")]
    [InlineData("HEALTHY")]
    public void A_dependency_stopped_before_it_started_satisfies_nothing(string condition)
    {
        var verdict = DependencyConditions.Evaluate("app", new ContainerDependency("dep", condition), NeverStarted());
        Assert.Equal(DependencyVerdictKind.Impossible, verdict.Kind);
        Assert.Contains("will never start", verdict.Reason);
    }

    [Fact]
    public void A_missing_dependency_is_impossible()
        => Assert.Equal(DependencyVerdictKind.Impossible, Judge("START", null));

    [Fact]
    public void All_conditions_together_wait_for_the_slowest_and_fail_on_the_first_impossible()
    {
        var states = new Dictionary<string, ContainerSnapshot> { ["a"] = Running("a"), ["b"] = Created("b"), ["c"] = Exited(1, "c") };
        ContainerDependency[] waiting = [new("a", "START"), new("b", "START")];
        ContainerDependency[] failing = [new("b", "START"), new("c", "SUCCESS")];
        ContainerDependency[] met = [new("a", "START"), new("c", "COMPLETE")];
        Assert.Equal(DependencyVerdictKind.Waiting, DependencyConditions.EvaluateAll("app", waiting, n => states.GetValueOrDefault(n)).Kind);
        Assert.Equal(DependencyVerdictKind.Impossible, DependencyConditions.EvaluateAll("app", failing, n => states.GetValueOrDefault(n)).Kind);
        Assert.Equal(DependencyVerdictKind.Satisfied, DependencyConditions.EvaluateAll("app", met, n => states.GetValueOrDefault(n)).Kind);
        Assert.Equal(DependencyVerdictKind.Satisfied, DependencyConditions.EvaluateAll("app", [], n => states.GetValueOrDefault(n)).Kind);
    }
}
