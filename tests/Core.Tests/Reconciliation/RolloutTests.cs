using Serverless.Core.ContainerInstances;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Tasks;

namespace Serverless.Core.Tests.Reconciliation;

public class RolloutTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private const string V1 = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1";
    private const string V2 = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2";

    private static Deployment Deployment(string id, string status, string taskDefinition, string rollout = DeploymentRolloutState.InProgress) => new()
    {
        Id = id,
        Status = status,
        TaskDefinitionArn = taskDefinition,
        RolloutState = rollout,
        CreatedAt = Now.AddMinutes(-10),
    };

    private static ServiceRecord Service(int desired, params Deployment[] deployments) => new()
    {
        Cluster = "c",
        Name = "web",
        DesiredCount = desired,
        TaskDefinitionArn = deployments[0].TaskDefinitionArn,
        Deployments = deployments,
    };

    private static int _next;

    private static TaskRecord Task(string deployment, string lastStatus = EcsTaskStatus.Running, string? health = null,
        string desired = EcsTaskStatus.Running, string? stopCode = null, string instance = "i1", int ageSeconds = 60) => new()
    {
        Cluster = "c",
        Id = TaskIds.New("service:web")[..24] + (++_next).ToString("x8"),
        Group = "service:web",
        TaskDefinitionArn = V1,
        Family = "web",
        ContainerInstanceId = instance,
        StartedBy = deployment,
        LastStatus = lastStatus,
        DesiredStatus = lastStatus == EcsTaskStatus.Stopped ? EcsTaskStatus.Stopped : desired,
        HealthStatus = health,
        StopCode = stopCode,
        CreatedAt = Now.AddSeconds(-ageSeconds),
        StartedAt = lastStatus == EcsTaskStatus.Running ? Now.AddSeconds(-ageSeconds + 1) : null,
    };

    private static RolloutStep Step(ServiceRecord service, IEnumerable<TaskRecord> tasks, bool healthCheck = false,
        IReadOnlyList<ContainerInstanceRecord>? instances = null)
        => Rollout.NextStep(new ServiceView
        {
            Service = service,
            Tasks = tasks.ToList(),
            PrimaryHasHealthCheck = healthCheck,
            Instances = instances ?? [],
            Now = Now,
        });

    private static int Starting(RolloutStep step) => step.Start.Sum(s => s.Count);

    [Fact]
    public void A_new_service_starts_its_desired_count()
    {
        var step = Step(Service(3, Deployment("d1", DeploymentStatus.Primary, V1)), []);
        Assert.Equal(3, Starting(step));
        Assert.Equal("d1", step.Start[0].DeploymentId);
        Assert.Empty(step.Stop);
    }

    [Fact]
    public void A_converged_service_needs_nothing_and_reports_steady_state_once()
    {
        var service = Service(2, Deployment("d1", DeploymentStatus.Primary, V1));
        var tasks = new[] { Task("d1"), Task("d1") };
        var first = Step(service, tasks);
        Assert.False(first.ChangesTasks);
        Assert.Equal(DeploymentRolloutState.Completed, first.Service.Primary!.RolloutState);
        Assert.Contains(first.Service.Events, e => e.Message == "(service web) has reached a steady state.");
        Assert.Contains(first.Service.Events, e => e.Message.Contains("deployment completed"));

        var again = Step(first.Service, tasks);
        Assert.Equal(first.Service.Events.Count, again.Service.Events.Count);
    }

    [Fact]
    public void A_stopped_task_is_replaced()
    {
        var service = Service(2, Deployment("d1", DeploymentStatus.Primary, V1, DeploymentRolloutState.Completed));
        var step = Step(service, [Task("d1"), Task("d1", EcsTaskStatus.Stopped, stopCode: "EssentialContainerExited")]);
        Assert.Equal(1, Starting(step));
    }

    [Fact]
    public void Scaling_in_stops_pending_tasks_before_running_ones()
    {
        var service = Service(1, Deployment("d1", DeploymentStatus.Primary, V1, DeploymentRolloutState.Completed));
        var running = Task("d1");
        var pending = Task("d1", EcsTaskStatus.Pending);
        var step = Step(service, [running, pending]);
        Assert.Equal(pending.Id, Assert.Single(step.Stop).TaskId);
    }

    [Theory]
    // desired, min%, max%, then: new tasks started and old tasks stopped in the first step
    [InlineData(4, 100, 200, 4, 0)]
    [InlineData(4, 50, 100, 0, 2)]
    [InlineData(4, 50, 150, 2, 2)]
    [InlineData(4, 0, 100, 0, 4)]
    [InlineData(3, 100, 133, 0, 0)]
    public void A_rollout_never_exceeds_maximum_percent_nor_falls_below_minimum_healthy(int desired, int min, int max, int started, int stopped)
    {
        var service = Service(desired, Deployment("d2", DeploymentStatus.Primary, V2), Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed))
            with { DeploymentConfiguration = new DeploymentConfiguration(min, max) };
        var old = Enumerable.Range(0, desired).Select(_ => Task("d1")).ToList();
        var step = Step(service, old);
        Assert.Equal(started, Starting(step));
        Assert.Equal(stopped, step.Stop.Count);
        Assert.True(desired + started <= Math.Max(desired, desired * max / 100));
        Assert.True(desired - stopped >= Math.Ceiling(desired * min / 100.0));
    }

    [Fact]
    public void A_deployment_completes_only_once_its_newest_task_has_run_long_enough_and_looks_again_then()
    {
        var service = Service(2, Deployment("d2", DeploymentStatus.Primary, V2), Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed));
        // Both new tasks just reached RUNNING (a revision that exits at once is RUNNING for an instant too).
        var fresh = new[] { Task("d2", ageSeconds: 3), Task("d2", ageSeconds: 2) };

        var settling = Step(service, fresh);

        Assert.Equal(DeploymentRolloutState.InProgress, settling.Service.Primary!.RolloutState);
        Assert.DoesNotContain(settling.Service.Events, e => e.Message.Contains("steady state"));
        // The newest started 1 s ago: look again when it has run SteadyAfter.
        Assert.Equal(Rollout.SteadyAfter - TimeSpan.FromSeconds(1), settling.CheckAgainIn);
        // The fallback deployment is still there for the circuit breaker.
        Assert.Contains(settling.Service.Deployments, d => d.Id == "d1");

        var settled = Step(service, fresh.Select(t => t with { StartedAt = t.StartedAt - Rollout.SteadyAfter }));
        Assert.Equal(DeploymentRolloutState.Completed, settled.Service.Primary!.RolloutState);
        Assert.Single(settled.Service.Deployments);
    }

    [Fact]
    public void A_rollout_drains_the_old_deployment_once_new_tasks_are_healthy_and_then_completes()
    {
        var service = Service(2, Deployment("d2", DeploymentStatus.Primary, V2), Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed));
        var old = new[] { Task("d1"), Task("d1") };

        // New tasks pending: nothing old may stop yet (min healthy 100%).
        var pendingNew = new[] { Task("d2", EcsTaskStatus.Pending), Task("d2", EcsTaskStatus.Pending) };
        var waiting = Step(service, [.. old, .. pendingNew]);
        Assert.Empty(waiting.Stop);
        Assert.Equal(0, Starting(waiting));

        // New tasks running: both old ones go.
        var runningNew = new[] { Task("d2"), Task("d2") };
        var draining = Step(service, [.. old, .. runningNew]);
        Assert.Equal(old.Select(t => t.Id).Order(), draining.Stop.Select(s => s.TaskId).Order());
        Assert.Equal(DeploymentRolloutState.InProgress, draining.Service.Primary!.RolloutState);

        // Old ones stopped: the old deployment leaves and the new one completes.
        var stoppedOld = old.Select(t => t with { LastStatus = EcsTaskStatus.Stopped, DesiredStatus = EcsTaskStatus.Stopped, StopCode = "ServiceSchedulerInitiated" });
        var done = Step(draining.Service, [.. stoppedOld, .. runningNew]);
        Assert.Single(done.Service.Deployments);
        Assert.Equal(DeploymentRolloutState.Completed, done.Service.Primary!.RolloutState);
    }

    [Fact]
    public void A_task_with_a_health_check_counts_as_healthy_only_when_healthy()
    {
        var service = Service(1, Deployment("d2", DeploymentStatus.Primary, V2), Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed));
        var old = Task("d1");
        Assert.Empty(Step(service, [old, Task("d2", health: "UNKNOWN")], healthCheck: true).Stop);
        Assert.Equal(old.Id, Assert.Single(Step(service, [old, Task("d2", health: "HEALTHY")], healthCheck: true).Stop).TaskId);
    }

    [Fact]
    public void An_unhealthy_task_is_replaced_after_the_grace_period_only()
    {
        var service = Service(1, Deployment("d1", DeploymentStatus.Primary, V1, DeploymentRolloutState.Completed)) with { HealthCheckGracePeriodSeconds = 120 };
        var young = Task("d1", health: "UNHEALTHY", ageSeconds: 30);
        var inGrace = Step(service, [young], healthCheck: true);
        Assert.Empty(inGrace.Stop);
        Assert.NotNull(inGrace.CheckAgainIn);

        var old = Task("d1", health: "UNHEALTHY", ageSeconds: 300);
        var replaced = Step(service, [old], healthCheck: true);
        Assert.Equal(Rollout.ReasonUnhealthy, Assert.Single(replaced.Stop).Reason);
    }

    private const string Group = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef";

    private static RolloutStep StepBehindTargets(ServiceRecord service, IEnumerable<TaskRecord> tasks, params TaskRecord[] unhealthyTargets)
        => Rollout.NextStep(new ServiceView
        {
            Service = service,
            Tasks = tasks.ToList(),
            TargetUnhealthy = unhealthyTargets.ToDictionary(t => t.Id, _ => Group),
            Now = Now,
        });

    [Fact]
    public void A_task_whose_target_is_unhealthy_is_replaced_after_the_grace_period_only()
    {
        var service = Service(1, Deployment("d1", DeploymentStatus.Primary, V1, DeploymentRolloutState.Completed)) with { HealthCheckGracePeriodSeconds = 120 };
        var young = Task("d1", ageSeconds: 30);
        var inGrace = StepBehindTargets(service, [young], young);
        Assert.Empty(inGrace.Stop);
        Assert.Empty(inGrace.Start);
        // Looked at again when the grace period ends (the task started 29 s ago).
        Assert.Equal(TimeSpan.FromSeconds(91), inGrace.CheckAgainIn);

        var old = Task("d1", ageSeconds: 300);
        var replaced = StepBehindTargets(service, [old], old);
        var stop = Assert.Single(replaced.Stop);
        Assert.Equal(old.Id, stop.TaskId);
        Assert.Equal($"Task failed ELB health checks in (target-group {Group})", stop.Reason);
        Assert.Equal(Group, Rollout.FailedElbHealthChecks(stop.Reason));
        // Its replacement starts beside it (maximumPercent 200).
        Assert.Equal(1, Starting(replaced));
    }

    [Fact]
    public void A_task_whose_target_is_healthy_or_not_yet_checked_stays()
    {
        var service = Service(2, Deployment("d1", DeploymentStatus.Primary, V1, DeploymentRolloutState.Completed));
        var step = StepBehindTargets(service, [Task("d1", ageSeconds: 300), Task("d1", ageSeconds: 300)]);
        Assert.Empty(step.Stop);
        Assert.Empty(step.Start);
        Assert.Null(Rollout.FailedElbHealthChecks(Rollout.ReasonUnhealthy));
    }

    [Fact]
    public void A_failing_container_health_check_names_the_container_reason_even_when_its_target_fails_too()
    {
        var service = Service(1, Deployment("d1", DeploymentStatus.Primary, V1, DeploymentRolloutState.Completed));
        var task = Task("d1", health: "UNHEALTHY", ageSeconds: 300);
        Assert.Equal(Rollout.ReasonUnhealthy, Assert.Single(StepBehindTargets(service, [task], task).Stop).Reason);
    }

    [Fact]
    public void Tasks_stopped_for_failing_elb_health_checks_trip_the_circuit_breaker()
    {
        var service = Service(2, Deployment("d2", DeploymentStatus.Primary, V2), Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed))
            with { DeploymentConfiguration = new DeploymentConfiguration(CircuitBreakerEnable: true, CircuitBreakerRollback: true) };
        var failures = Enumerable.Range(0, 3).Select(_ => Task("d2", EcsTaskStatus.Stopped) with { StoppedReason = Rollout.ReasonElbUnhealthy(Group) });
        var step = Step(service, [Task("d1"), Task("d1"), .. failures]);
        Assert.Equal(V1, step.Service.Primary!.TaskDefinitionArn);
        Assert.Contains(step.Service.Events, e => e.Message == "(service web) (deployment d2) deployment failed: tasks failed to start.");
    }

    [Theory]
    [InlineData(1, 3)]
    [InlineData(6, 3)]
    [InlineData(10, 5)]
    [InlineData(1000, 200)]
    public void The_circuit_breaker_threshold_follows_ecs(int desired, int threshold)
        => Assert.Equal(threshold, Rollout.FailureThreshold(desired));

    [Fact]
    public void The_circuit_breaker_fails_the_deployment_and_rolls_back_to_the_last_completed_one()
    {
        var service = Service(2, Deployment("d2", DeploymentStatus.Primary, V2), Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed))
            with { DeploymentConfiguration = new DeploymentConfiguration(CircuitBreakerEnable: true, CircuitBreakerRollback: true) };
        var failures = Enumerable.Range(0, 3).Select(_ => Task("d2", EcsTaskStatus.Stopped, stopCode: "EssentialContainerExited"));
        var step = Step(service, [Task("d1"), Task("d1"), .. failures]);

        var primary = step.Service.Primary!;
        Assert.Equal(V1, primary.TaskDefinitionArn);
        Assert.NotEqual("d1", primary.Id);
        // The failed deployment has no tasks left, so it leaves the list like any drained one.
        Assert.DoesNotContain(step.Service.Deployments, d => d.Id == "d2" && d.RolloutState != DeploymentRolloutState.Failed);
        Assert.Contains(step.Service.Events, e => e.Message == "(service web) (deployment d2) deployment failed: tasks failed to start.");
        Assert.Contains(step.Service.Events, e => e.Message == "(service web) rolling back to deployment d1.");
        Assert.Equal(V1, step.Service.TaskDefinitionArn);
    }

    [Fact]
    public void The_circuit_breaker_rolls_back_even_after_failing_tasks_that_ran_for_a_moment_replaced_every_old_one()
    {
        var service = Service(2, Deployment("d2", DeploymentStatus.Primary, V2), Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed))
            with { DeploymentConfiguration = new DeploymentConfiguration(CircuitBreakerEnable: true, CircuitBreakerRollback: true) };
        var old = new[] { Task("d1"), Task("d1") };
        // The bad revision's tasks were RUNNING for a moment: they count as healthy, so the old ones go.
        var replacing = Step(service, [.. old, Task("d2"), Task("d2")]);
        Assert.Equal(2, replacing.Stop.Count);
        var stoppedOld = old.Select(t => t with { LastStatus = EcsTaskStatus.Stopped, DesiredStatus = EcsTaskStatus.Stopped, StopCode = "ServiceSchedulerInitiated" }).ToList();
        var oneFailed = new[] { Task("d2", EcsTaskStatus.Stopped, stopCode: "EssentialContainerExited"), Task("d2") };
        var drained = Step(replacing.Service, [.. stoppedOld, .. oneFailed]);

        // d1 has no tasks left: INACTIVE (which DescribeServices does not show), but still there to roll back to.
        Assert.Equal(DeploymentStatus.Inactive, Assert.Single(drained.Service.Deployments, d => d.Id == "d1").Status);
        Assert.Equal(drained.Service.Deployments, Step(drained.Service, [.. stoppedOld, .. oneFailed]).Service.Deployments);

        var failures = Enumerable.Range(0, 3).Select(_ => Task("d2", EcsTaskStatus.Stopped, stopCode: "EssentialContainerExited"));
        var tripped = Step(drained.Service, [.. stoppedOld, .. failures]);
        Assert.Equal(V1, tripped.Service.Primary!.TaskDefinitionArn);
        Assert.Contains(tripped.Service.Events, e => e.Message == "(service web) rolling back to deployment d1.");
        Assert.Equal(2, Starting(tripped));

        // Once the rollback completes, the hidden deployment is gone.
        var back = tripped.Service.Primary!.Id;
        var done = Step(tripped.Service, [.. stoppedOld, .. failures, Task(back), Task(back)]);
        Assert.Equal(DeploymentRolloutState.Completed, done.Service.Primary!.RolloutState);
        Assert.Single(done.Service.Deployments);
    }

    [Fact]
    public void A_rollback_that_stops_every_task_of_the_deployment_at_once_keeps_it_failed_in_the_history()
    {
        // StopServiceDeployment ROLLBACK while the new revision's tasks are still starting: they all stop in
        // the step that fails the deployment, so it leaves the list in that step and must leave it FAILED.
        var requested = Deployment("d2", DeploymentStatus.Primary, V2) with { Lifecycle = new DeploymentLifecycle { StopRequested = HookStatus.Rollback } };
        var service = Service(2, requested, Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed));
        var step = Step(service, [Task("d1"), Task("d1"), Task("d2", EcsTaskStatus.Pending), Task("d2", EcsTaskStatus.Pending)]);

        Assert.Equal(2, step.Stop.Count);
        Assert.DoesNotContain(step.Service.Deployments, d => d.Id == "d2");
        var gone = Assert.Single(step.Service.DeploymentHistory, d => d.Id == "d2");
        Assert.Equal(DeploymentRolloutState.Failed, gone.RolloutState);
        Assert.Equal(BlueGreen.ReasonStopRequested, gone.RolloutStateReason);
        var rollback = step.Service.Primary! with { RolloutState = DeploymentRolloutState.Completed };
        Assert.Equal(ServiceDeploymentStatus.RollbackSuccessful,
            ServiceDeploymentActions.Status(step.Service with { Deployments = [rollback] }, gone));
    }

    [Fact]
    public void Failed_launches_already_counted_still_count_once_their_tasks_are_gone()
    {
        // The retention sweep deleted the failed tasks; the deployment remembers how many there were.
        var service = Service(2, Deployment("d2", DeploymentStatus.Primary, V2) with { FailedTasks = 2 })
            with { DeploymentConfiguration = new DeploymentConfiguration(CircuitBreakerEnable: true) };
        var step = Step(service, [Task("d2", EcsTaskStatus.Stopped, stopCode: "EssentialContainerExited")]);
        Assert.Equal(2, step.Service.Primary!.FailedTasks);
        Assert.Equal(DeploymentRolloutState.InProgress, step.Service.Primary!.RolloutState);

        var tripped = Step(service with { Deployments = [service.Deployments[0] with { FailedTasks = 3 }] }, []);
        Assert.Equal(DeploymentRolloutState.Failed, tripped.Service.Primary!.RolloutState);
    }

    [Fact]
    public void Without_rollback_a_tripped_deployment_stops_launching()
    {
        var service = Service(2, Deployment("d2", DeploymentStatus.Primary, V2))
            with { DeploymentConfiguration = new DeploymentConfiguration(CircuitBreakerEnable: true) };
        var failures = Enumerable.Range(0, 3).Select(_ => Task("d2", EcsTaskStatus.Stopped, stopCode: "TaskFailedToStart"));
        var step = Step(service, failures);
        Assert.Equal(DeploymentRolloutState.Failed, step.Service.Primary!.RolloutState);
        Assert.Equal(0, Starting(step));
    }

    [Fact]
    public void User_stops_do_not_count_as_failures()
    {
        var service = Service(2, Deployment("d2", DeploymentStatus.Primary, V2))
            with { DeploymentConfiguration = new DeploymentConfiguration(CircuitBreakerEnable: true) };
        var stopped = Enumerable.Range(0, 5).Select(_ => Task("d2", EcsTaskStatus.Stopped, stopCode: "UserInitiated"));
        Assert.Equal(2, Starting(Step(service, stopped)));
    }

    [Fact]
    public void A_draining_service_stops_everything_then_becomes_inactive()
    {
        var service = Service(2, Deployment("d1", DeploymentStatus.Primary, V1)) with { Status = ServiceRecord.Draining, DesiredCount = 0 };
        var tasks = new[] { Task("d1"), Task("d1") };
        var draining = Step(service, tasks);
        Assert.Equal(2, draining.Stop.Count);
        Assert.Equal(ServiceRecord.Draining, draining.Service.Status);
        var stopping = tasks.Select(t => t with { DesiredStatus = EcsTaskStatus.Stopped });
        Assert.Equal(ServiceRecord.Draining, Step(service, stopping).Service.Status);
        var stopped = tasks.Select(t => t with { LastStatus = EcsTaskStatus.Stopped, DesiredStatus = EcsTaskStatus.Stopped });
        Assert.Equal(ServiceRecord.Inactive, Step(service, stopped).Service.Status);
    }

    [Fact]
    public void A_task_stuck_before_running_past_the_deadline_is_replaced()
    {
        var service = Service(1, Deployment("d1", DeploymentStatus.Primary, V1));
        var stuck = Task("d1", EcsTaskStatus.Provisioning, ageSeconds: 600);
        var step = Step(service, [stuck]);
        Assert.Equal(Rollout.ReasonStuck, Assert.Single(step.Stop).Reason);
    }

    private static ContainerInstanceRecord Instance(string id, string status = ContainerInstanceRecord.Active) => new()
    {
        Cluster = "c", Id = id, Ec2InstanceId = id, Status = status, RegisteredCpu = 1024, RegisteredMemory = 1024, LastHeartbeat = Now,
    };

    [Fact]
    public void A_daemon_service_runs_one_task_on_each_active_instance()
    {
        var service = Service(0, Deployment("d1", DeploymentStatus.Primary, V1)) with { SchedulingStrategy = ServiceRecord.Daemon };
        var step = Step(service, [Task("d1", instance: "a")], instances: [Instance("a"), Instance("b"), Instance("c", ContainerInstanceRecord.Draining)]);
        var start = Assert.Single(step.Start);
        Assert.Equal(["b"], start.OnInstances!);
        Assert.Equal(2, step.Service.Primary!.DesiredCount);
    }

    [Fact]
    public void A_daemon_service_leaves_draining_instances_and_replaces_old_revisions_in_place()
    {
        var service = Service(0, Deployment("d2", DeploymentStatus.Primary, V2), Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed))
            with { SchedulingStrategy = ServiceRecord.Daemon };
        var onDraining = Task("d2", instance: "b");
        var oldOnA = Task("d1", instance: "a");
        var step = Step(service, [oldOnA, onDraining], instances: [Instance("a"), Instance("b", ContainerInstanceRecord.Draining)]);
        Assert.Equal(new[] { oldOnA.Id, onDraining.Id }.Order(), step.Stop.Select(s => s.TaskId).Order());
        Assert.Empty(step.Start);
    }

    [Fact]
    public void Events_are_newest_first_and_bounded()
    {
        var events = Enumerable.Range(0, ServiceRecord.MaxEvents).Select(i => new ServiceEvent($"{i}", Now, $"old {i}")).ToList();
        var added = Rollout.AddEvents(events, ["first", "second"], Now);
        Assert.Equal(ServiceRecord.MaxEvents, added.Count);
        Assert.Equal(["second", "first", "old 0"], added.Take(3).Select(e => e.Message));
    }
}

public class RolloutDrainingTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private const string V1 = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1";
    private static int _next;

    private static ServiceRecord Service(int desired, int minimumHealthyPercent = 100, int maximumPercent = 200) => new()
    {
        Cluster = "c",
        Name = "web",
        DesiredCount = desired,
        TaskDefinitionArn = V1,
        DeploymentConfiguration = new DeploymentConfiguration(MinimumHealthyPercent: minimumHealthyPercent, MaximumPercent: maximumPercent),
        Deployments = [new Deployment
        {
            Id = "d1", Status = DeploymentStatus.Primary, TaskDefinitionArn = V1, RolloutState = DeploymentRolloutState.Completed, CreatedAt = Now.AddMinutes(-10),
        }],
    };

    private static TaskRecord Task(string instance, string lastStatus = EcsTaskStatus.Running, string desired = EcsTaskStatus.Running) => new()
    {
        Cluster = "c",
        Id = $"task{++_next:x8}",
        Group = "service:web",
        TaskDefinitionArn = V1,
        Family = "web",
        ContainerInstanceId = instance,
        StartedBy = "d1",
        LastStatus = lastStatus,
        DesiredStatus = desired,
        CreatedAt = Now.AddSeconds(-60 - _next),
        StartedAt = lastStatus == EcsTaskStatus.Running ? Now.AddSeconds(-50) : null,
    };

    private static RolloutStep Step(ServiceRecord service, IEnumerable<TaskRecord> tasks, params string[] draining)
        => Rollout.NextStep(new ServiceView { Service = service, Tasks = tasks.ToList(), DrainingInstances = draining.ToHashSet(), Now = Now });

    private static int Starting(RolloutStep step) => step.Start.Sum(s => s.Count);

    [Fact]
    public void Given_min_100_max_200_When_an_instance_drains_Then_replacements_start_first_and_nothing_stops_yet()
    {
        var step = Step(Service(2), [Task("a"), Task("a")], "a");
        Assert.Equal(2, Starting(step));
        Assert.Empty(step.Stop);
    }

    [Fact]
    public void Given_replacements_are_running_Then_the_tasks_on_the_draining_instance_stop()
    {
        var onA = new[] { Task("a"), Task("a") };
        var step = Step(Service(2), [.. onA, Task("b"), Task("b")], "a");
        Assert.Equal(onA.Select(t => t.Id).Order(), step.Stop.Select(s => s.TaskId).Order());
        Assert.All(step.Stop, s => Assert.Equal(Rollout.ReasonInstanceDraining, s.Reason));
        Assert.Equal(0, Starting(step));
    }

    [Fact]
    public void Given_replacements_are_still_pending_Then_the_healthy_tasks_on_the_draining_instance_stay()
    {
        var step = Step(Service(2), [Task("a"), Task("a"), Task("b", EcsTaskStatus.Pending), Task("b", EcsTaskStatus.Pending)], "a");
        Assert.Empty(step.Stop);
        Assert.Equal(0, Starting(step));
    }

    [Fact]
    public void Given_min_50_max_100_When_four_tasks_drain_Then_two_stop_before_any_replacement_starts()
    {
        // The example of ECS's guide: desiredCount 4, minimum 50 %: stop two, then start two.
        var tasks = new[] { Task("a"), Task("a"), Task("a"), Task("a") };
        var step = Step(Service(4, minimumHealthyPercent: 50, maximumPercent: 100), tasks, "a");
        Assert.Equal(2, step.Stop.Count);
        Assert.Equal(0, Starting(step));

        var stopping = tasks.Select(t => step.Stop.Any(s => s.TaskId == t.Id) ? t with { DesiredStatus = EcsTaskStatus.Stopped } : t);
        Assert.Equal(0, Starting(Step(Service(4, 50, 100), stopping, "a")));
        var stopped = tasks.Select(t => step.Stop.Any(s => s.TaskId == t.Id) ? t with { DesiredStatus = EcsTaskStatus.Stopped, LastStatus = EcsTaskStatus.Stopped } : t);
        Assert.Equal(2, Starting(Step(Service(4, 50, 100), stopped, "a")));
    }

    [Fact]
    public void A_pending_task_on_a_draining_instance_is_stopped_at_once_and_replaced()
    {
        var pending = Task("a", EcsTaskStatus.Pending);
        var step = Step(Service(2), [pending, Task("b")], "a");
        Assert.Equal(pending.Id, Assert.Single(step.Stop).TaskId);
        Assert.Equal(1, Starting(step));
    }

    [Fact]
    public void Tasks_on_active_instances_are_left_alone()
    {
        var step = Step(Service(2), [Task("a"), Task("b")], "c");
        Assert.Empty(step.Stop);
        Assert.Equal(0, Starting(step));
    }
}
