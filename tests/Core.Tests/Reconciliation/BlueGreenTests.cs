using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Tasks;

namespace Serverless.Core.Tests.Reconciliation;

public class BlueGreenTests
{
    private const string V1 = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1";
    private const string V2 = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2";
    private const string Blue = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/blue/1";
    private const string Green = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/green/2";
    private const string ProdRule = "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/lb/1/l/r1";

    /// <summary>
    /// A service and its tasks, stepped as the reconciler steps it: the rules follow the PRIMARY's lifecycle one
    /// look late (written, then found carried), starts become RUNNING tasks and stops STOPPED ones.
    /// </summary>
    private sealed class World
    {
        public DateTimeOffset Now = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);
        public ServiceRecord Service;
        public List<TaskRecord> Tasks = [];
        public TrafficState Rules = new(0, false);
        public Func<TaskRecord, bool> TargetHealthy = _ => true;
        public Func<TaskRecord, string?> Health = _ => null;
        public RolloutStep? Last;
        private int _next;

        public World(JsonObject configuration, int desired = 2, bool breaker = false)
        {
            var blue = new Deployment
            {
                Id = "ecs-svc/1", Status = DeploymentStatus.Primary, TaskDefinitionArn = V1, DesiredCount = desired,
                RolloutState = DeploymentRolloutState.Completed, CreatedAt = Now.AddHours(-1),
                Lifecycle = new DeploymentLifecycle { AlternateSlot = false },
            };
            Service = new ServiceRecord
            {
                Cluster = "c", Name = "web", DesiredCount = desired, TaskDefinitionArn = V1, Deployments = [blue],
                DeploymentConfiguration = new DeploymentConfiguration(CircuitBreakerEnable: breaker, CircuitBreakerRollback: breaker),
                Passthrough = new JsonObject
                {
                    ["deploymentConfiguration"] = configuration,
                    ["loadBalancers"] = new JsonArray(new JsonObject
                    {
                        ["targetGroupArn"] = Blue, ["containerName"] = "web", ["containerPort"] = 80,
                        ["advancedConfiguration"] = new JsonObject { ["alternateTargetGroupArn"] = Green, ["productionListenerRule"] = ProdRule },
                    }),
                },
            };
            for (var i = 0; i < desired; i++) Tasks.Add(NewTask(blue.Id, V1));
        }

        public TaskRecord NewTask(string deployment, string definition) => new()
        {
            Cluster = "c", Id = $"t{++_next:D4}", Group = "service:web", TaskDefinitionArn = definition, Family = "web",
            ContainerInstanceId = "i1", StartedBy = deployment, LastStatus = EcsTaskStatus.Running, DesiredStatus = EcsTaskStatus.Running,
            CreatedAt = Now, StartedAt = Now,
        };

        /// <summary>UpdateService to a new revision: a new PRIMARY, the old one ACTIVE.</summary>
        public void Deploy(string definition = V2)
        {
            var green = new Deployment
            {
                Id = "ecs-svc/2", Status = DeploymentStatus.Primary, TaskDefinitionArn = definition, DesiredCount = Service.DesiredCount,
                RolloutState = DeploymentRolloutState.InProgress, CreatedAt = Now,
            };
            Service = Service with
            {
                TaskDefinitionArn = definition,
                Deployments = [green, .. Service.Deployments.Select(d => d with { Status = DeploymentStatus.Active })],
            };
        }

        public DeploymentLifecycle? Lifecycle(string id = "ecs-svc/2") => Service.Deployments.Concat(Service.DeploymentHistory).First(d => d.Id == id).Lifecycle ?? new DeploymentLifecycle();

        public RolloutStep Step()
        {
            // As the reconciler: rules brought to the lifecycle's traffic first; "applied" only when already so.
            var applied = true;
            if (BlueGreen.Runs(Service) && Service.Primary!.Lifecycle!.Traffic != Rules)
            {
                Rules = Service.Primary.Lifecycle.Traffic;
                applied = false;
            }
            var tasks = Tasks.Select(t => t with { HealthStatus = Health(t) ?? t.HealthStatus }).ToList();
            var step = Rollout.NextStep(new ServiceView
            {
                Service = Service,
                Tasks = tasks,
                Now = Now,
                TrafficApplied = applied,
                TargetHealthy = tasks.Where(TargetHealthy).Select(t => t.Id).ToHashSet(),
                NewEventId = () => $"e{++_next}",
            });
            Service = step.Service;
            foreach (var stop in step.Stop)
            {
                var i = Tasks.FindIndex(t => t.Id == stop.TaskId);
                Tasks[i] = Tasks[i] with { DesiredStatus = EcsTaskStatus.Stopped, LastStatus = EcsTaskStatus.Stopped, StoppedReason = stop.Reason };
            }
            foreach (var start in step.Start)
                for (var i = 0; i < start.Count; i++) Tasks.Add(NewTask(start.DeploymentId, start.TaskDefinitionArn));
            Last = step;
            return step;
        }

        /// <summary>Steps until <paramref name="until"/> holds (at most 30 looks, a second apart).</summary>
        public void StepUntil(Func<World, bool> until)
        {
            for (var i = 0; i < 30 && !until(this); i++)
            {
                Step();
                Now = Now.AddSeconds(1);
            }
            Assert.True(until(this), $"not reached; stage {Lifecycle()?.Stage}, status {Lifecycle()?.Status}, source {Lifecycle()?.SourceDeploymentId}, rules {Rules}, "
                + string.Join(", ", Service.Deployments.Select(d => $"{d.Id} {d.Status} {d.RolloutState} {d.Lifecycle?.Status}")) + $"; live {Tasks.Count(t => !t.IsStopped)}");
        }

        public List<TaskRecord> Live(string deployment) => Tasks.Where(t => t.StartedBy == deployment && !t.IsStopped).ToList();
    }

    private static JsonObject Configuration(string strategy = "BLUE_GREEN", int bake = 0, JsonArray? hooks = null, JsonObject? extra = null)
    {
        var json = new JsonObject { ["strategy"] = strategy, ["bakeTimeInMinutes"] = bake };
        if (hooks is not null) json["lifecycleHooks"] = hooks;
        foreach (var (k, v) in extra ?? []) json[k] = v?.DeepClone();
        return json;
    }

    private static JsonArray PauseAt(string stage, int? timeoutMinutes = null, string action = "ROLLBACK")
    {
        var hook = new JsonObject { ["targetType"] = "PAUSE", ["lifecycleStages"] = new JsonArray(stage) };
        if (timeoutMinutes is { } m) hook["timeoutConfiguration"] = new JsonObject { ["timeoutInMinutes"] = m, ["action"] = action };
        return new JsonArray(hook);
    }

    [Fact]
    public void Green_starts_at_full_size_beside_blue_in_the_other_target_group()
    {
        var world = new World(Configuration());
        world.Deploy();
        var step = world.Step();

        Assert.Equal(2, step.Start.Sum(s => s.Count));
        Assert.Equal("ecs-svc/2", step.Start[0].DeploymentId);
        Assert.Empty(step.Stop);
        var lc = world.Lifecycle()!;
        Assert.Equal(LifecycleStages.ScaleUp, lc.Stage);
        Assert.True(lc.AlternateSlot);
        Assert.Equal("ecs-svc/1", lc.SourceDeploymentId);
        Assert.Equal(new TrafficState(0, false), lc.Traffic);
    }

    [Fact]
    public void Traffic_waits_until_every_green_target_is_healthy()
    {
        var world = new World(Configuration());
        world.Deploy();
        world.TargetHealthy = t => t.StartedBy != "ecs-svc/2";
        for (var i = 0; i < 5; i++) world.Step();
        Assert.Equal(LifecycleStages.ScaleUp, world.Lifecycle()!.Stage);
        Assert.Equal(new TrafficState(0, false), world.Rules);

        world.TargetHealthy = _ => true;
        world.StepUntil(w => w.Lifecycle()!.Stage == LifecycleStages.PostTestTrafficShift || w.Lifecycle()!.Stage == LifecycleStages.CleanUp || w.Lifecycle()!.Status == ServiceDeploymentStatus.Successful);
    }

    [Fact]
    public void A_blue_green_deployment_moves_test_then_production_traffic_and_stops_blue_last()
    {
        var world = new World(Configuration());
        world.Deploy();
        var stages = new List<string>();
        var blueStoppedWhileProductionOnBlue = false;
        for (var i = 0; i < 30 && world.Lifecycle()!.Status != ServiceDeploymentStatus.Successful; i++)
        {
            var step = world.Step();
            stages.Add(world.Lifecycle()!.Stage!);
            if (step.Stop.Any(s => world.Tasks.First(t => t.Id == s.TaskId).StartedBy == "ecs-svc/1") && world.Rules.ProductionPermille != TrafficState.All)
                blueStoppedWhileProductionOnBlue = true;
        }

        Assert.Equal(ServiceDeploymentStatus.Successful, world.Lifecycle()!.Status);
        Assert.False(blueStoppedWhileProductionOnBlue);
        Assert.Equal(new TrafficState(TrafficState.All, true), world.Rules);
        var seen = stages.Distinct().ToList();
        Assert.Equal(seen.OrderBy(LifecycleStages.IndexOf), seen);   // in ECS's order
        Assert.Contains(LifecycleStages.TestTrafficShift, seen);
        Assert.Contains(LifecycleStages.ProductionTrafficShift, seen);
        Assert.Empty(world.Live("ecs-svc/1"));
        Assert.Equal(2, world.Live("ecs-svc/2").Count);

        world.StepUntil(w => w.Service.Primary!.RolloutState == DeploymentRolloutState.Completed);
        Assert.Equal("ecs-svc/2", world.Service.Primary!.Id);
        Assert.Contains(world.Service.DeploymentHistory, d => d.Id == "ecs-svc/1");   // still listed by ListServiceDeployments
    }

    [Fact]
    public void A_pause_hook_holds_the_deployment_until_it_is_continued()
    {
        var world = new World(Configuration(hooks: PauseAt(LifecycleStages.PostTestTrafficShift)));
        world.Deploy();
        world.StepUntil(w => w.Lifecycle()!.Hooks.Count == 1);
        for (var i = 0; i < 5; i++) world.Step();

        var lc = world.Lifecycle()!;
        Assert.Equal(LifecycleStages.PostTestTrafficShift, lc.Stage);
        Assert.Equal(HookStatus.AwaitingAction, lc.Hooks[0].Status);
        Assert.Equal(new TrafficState(0, true), world.Rules);   // test traffic on green, production still on blue
        Assert.Equal(2, world.Live("ecs-svc/1").Count);

        // ContinueServiceDeployment CONTINUE
        world.Service = world.Service with
        {
            Deployments = world.Service.Deployments.Select(d => d.Id == "ecs-svc/2"
                ? d with { Lifecycle = d.Lifecycle! with { Hooks = [d.Lifecycle.Hooks[0] with { Status = HookStatus.Succeeded }] } } : d).ToList(),
        };
        world.StepUntil(w => w.Lifecycle()!.Status == ServiceDeploymentStatus.Successful);
        Assert.Equal(TrafficState.All, world.Rules.ProductionPermille);
    }

    [Fact]
    public void A_requested_rollback_moves_traffic_back_before_green_stops()
    {
        var world = new World(Configuration(hooks: PauseAt(LifecycleStages.PostProductionTrafficShift)));
        world.Deploy();
        world.StepUntil(w => w.Lifecycle()!.Hooks.Count == 1);
        Assert.Equal(TrafficState.All, world.Rules.ProductionPermille);

        // StopServiceDeployment ROLLBACK
        world.Service = world.Service with
        {
            Deployments = world.Service.Deployments.Select(d => d.Id == "ecs-svc/2" ? d with { Lifecycle = d.Lifecycle! with { StopRequested = "ROLLBACK" } } : d).ToList(),
        };
        var first = world.Step();
        Assert.True(first.Stop.Count == 0, string.Join("; ", first.Stop));                                              // green keeps serving until the rules are back
        Assert.Equal(ServiceDeploymentStatus.RollbackInProgress, world.Lifecycle()!.Status);
        Assert.Equal(new TrafficState(0, false), world.Lifecycle()!.Traffic);

        world.StepUntil(w => w.Lifecycle()!.Status == ServiceDeploymentStatus.RollbackSuccessful);
        Assert.Equal(new TrafficState(0, false), world.Rules);
        Assert.Equal("ecs-svc/1", world.Service.Primary!.Id);
        Assert.Equal(V1, world.Service.TaskDefinitionArn);
        Assert.Equal(BlueGreen.ReasonStopRequested, world.Lifecycle()!.RollbackReason);
        world.StepUntil(w => w.Live("ecs-svc/2").Count == 0);
        Assert.Equal(2, world.Live("ecs-svc/1").Count);
        Assert.Equal(HookStatus.Failed, world.Lifecycle()!.Hooks[0].Status);
    }

    [Fact]
    public void A_blue_task_that_dies_while_the_deployment_is_paused_is_replaced_in_blue()
    {
        var world = new World(Configuration(hooks: PauseAt(LifecycleStages.PostTestTrafficShift)));
        world.Deploy();
        world.StepUntil(w => w.Lifecycle()!.Hooks.Count == 1);
        Assert.Equal(2, world.Live("ecs-svc/1").Count);

        // A blue container exits while production is still on blue.
        var dead = world.Live("ecs-svc/1")[0];
        world.Tasks[world.Tasks.FindIndex(t => t.Id == dead.Id)] = dead with { LastStatus = EcsTaskStatus.Stopped, DesiredStatus = EcsTaskStatus.Stopped, StopCode = "EssentialContainerExited" };
        var step = world.Step();

        var start = Assert.Single(step.Start);
        Assert.Equal(("ecs-svc/1", V1, 1), (start.DeploymentId, start.TaskDefinitionArn, start.Count));
        Assert.Equal(2, world.Live("ecs-svc/1").Count);
        Assert.Equal(2, world.Live("ecs-svc/2").Count);
        Assert.Empty(world.Step().Start);   // nothing more once blue is whole again
    }

    [Fact]
    public void A_blue_task_that_dies_during_a_rollback_is_replaced_before_blue_takes_over()
    {
        var world = new World(Configuration(hooks: PauseAt(LifecycleStages.PostTestTrafficShift)));
        world.Deploy();
        world.StepUntil(w => w.Lifecycle()!.Hooks.Count == 1);
        world.Service = world.Service with
        {
            Deployments = world.Service.Deployments.Select(d => d.Id == "ecs-svc/2" ? d with { Lifecycle = d.Lifecycle! with { StopRequested = "ROLLBACK" } } : d).ToList(),
        };
        var dead = world.Live("ecs-svc/1")[0];
        world.Tasks[world.Tasks.FindIndex(t => t.Id == dead.Id)] = dead with { LastStatus = EcsTaskStatus.Stopped, DesiredStatus = EcsTaskStatus.Stopped, StopCode = "EssentialContainerExited" };

        var step = world.Step();
        Assert.Equal(ServiceDeploymentStatus.RollbackInProgress, world.Lifecycle()!.Status);
        Assert.Equal(("ecs-svc/1", 1), (Assert.Single(step.Start).DeploymentId, step.Start[0].Count));
        world.StepUntil(w => w.Lifecycle()!.Status == ServiceDeploymentStatus.RollbackSuccessful);
        world.StepUntil(w => w.Live("ecs-svc/2").Count == 0);
        Assert.Equal(2, world.Live("ecs-svc/1").Count);
    }

    [Fact]
    public void Green_tasks_that_keep_failing_trip_the_breaker_and_production_never_leaves_blue()
    {
        var world = new World(Configuration(), desired: 2, breaker: true);
        world.Deploy();
        world.Health = t => t.StartedBy == "ecs-svc/2" ? "UNHEALTHY" : null;
        world.StepUntil(w => w.Lifecycle()!.Status == ServiceDeploymentStatus.RollbackSuccessful);

        Assert.Equal(BlueGreen.ReasonCircuitBreaker, world.Lifecycle()!.RollbackReason);
        Assert.Equal(0, world.Rules.ProductionPermille);
        Assert.Equal("ecs-svc/1", world.Service.Primary!.Id);
        Assert.Equal(2, world.Live("ecs-svc/1").Count);
    }

    [Fact]
    public void A_hook_that_times_out_with_rollback_rolls_back()
    {
        var world = new World(Configuration(hooks: PauseAt(LifecycleStages.PreScaleUp, timeoutMinutes: 1)));
        world.Deploy();
        world.Step();
        Assert.Equal(LifecycleStages.PreScaleUp, world.Lifecycle()!.Stage);
        Assert.Empty(world.Live("ecs-svc/2"));                               // paused before scale up

        world.Now = world.Now.AddMinutes(2);
        world.StepUntil(w => w.Lifecycle()!.Status == ServiceDeploymentStatus.RollbackSuccessful);
        Assert.Equal(HookStatus.TimedOut, world.Lifecycle()!.Hooks[0].Status);
        Assert.Equal(BlueGreen.ReasonHookTimedOut, world.Lifecycle()!.RollbackReason);
    }

    [Fact]
    public void A_canary_sends_its_share_for_the_bake_time_then_everything()
    {
        var world = new World(Configuration("CANARY", extra: new JsonObject
        {
            ["canaryConfiguration"] = new JsonObject { ["canaryPercent"] = 10.0, ["canaryBakeTimeInMinutes"] = 5 },
        }));
        world.Deploy();
        world.StepUntil(w => w.Rules.ProductionPermille > 0);
        Assert.Equal(100, world.Rules.ProductionPermille);
        for (var i = 0; i < 5; i++) world.Step();
        Assert.Equal(100, world.Rules.ProductionPermille);                   // still baking

        world.Now = world.Now.AddMinutes(5);
        world.StepUntil(w => w.Lifecycle()!.Status == ServiceDeploymentStatus.Successful);
        Assert.Equal(TrafficState.All, world.Rules.ProductionPermille);
    }

    [Fact]
    public void A_linear_deployment_moves_production_traffic_in_steps()
    {
        var world = new World(Configuration("LINEAR", extra: new JsonObject
        {
            ["linearConfiguration"] = new JsonObject { ["stepPercent"] = 25.0, ["stepBakeTimeInMinutes"] = 1 },
        }));
        world.Deploy();
        var shares = new List<int>();
        for (var i = 0; i < 40 && world.Lifecycle()!.Status != ServiceDeploymentStatus.Successful; i++)
        {
            world.Step();
            if (shares.Count == 0 || shares[^1] != world.Rules.ProductionPermille) shares.Add(world.Rules.ProductionPermille);
            world.Now = world.Now.AddSeconds(20);
        }
        Assert.Equal([0, 250, 500, 750, 1000], shares);
        Assert.Equal(ServiceDeploymentStatus.Successful, world.Lifecycle()!.Status);
    }

    [Fact]
    public void Bake_time_keeps_blue_running_after_the_production_shift()
    {
        var world = new World(Configuration(bake: 10));
        world.Deploy();
        world.StepUntil(w => w.Lifecycle()!.Stage == LifecycleStages.BakeTime);
        for (var i = 0; i < 5; i++) world.Step();
        Assert.Equal(2, world.Live("ecs-svc/1").Count);
        world.Now = world.Now.AddMinutes(10);
        world.StepUntil(w => w.Live("ecs-svc/1").Count == 0);
    }

    [Fact]
    public void A_rolling_update_after_blue_green_keeps_the_live_target_group()
    {
        var world = new World(Configuration());
        world.Deploy();
        world.StepUntil(w => w.Service.Primary!.RolloutState == DeploymentRolloutState.Completed);
        world.Service = world.Service with { Passthrough = world.Service.Passthrough.DeepClone().AsObject() };
        world.Service.Passthrough["deploymentConfiguration"] = new JsonObject { ["strategy"] = "ROLLING" };
        world.Service = world.Service with
        {
            Deployments = [new Deployment { Id = "ecs-svc/3", Status = DeploymentStatus.Primary, TaskDefinitionArn = V1, CreatedAt = world.Now },
                .. world.Service.Deployments.Select(d => d with { Status = DeploymentStatus.Active })],
        };
        world.Step();
        Assert.Equal(new DeploymentLifecycle { AlternateSlot = true, StartedAt = world.Lifecycle("ecs-svc/3")!.StartedAt }, world.Lifecycle("ecs-svc/3"));
    }

    [Fact]
    public void A_rolling_update_behind_a_load_balancer_stops_old_tasks_only_as_new_targets_turn_healthy()
    {
        var world = new World(new JsonObject { ["strategy"] = "ROLLING" });
        world.Deploy();
        world.Step();                                                        // two new tasks start (200 %)
        Assert.Equal(2, world.Live("ecs-svc/2").Count);

        world.TargetHealthy = t => t.StartedBy != "ecs-svc/2";
        var waiting = world.Step();
        Assert.True(waiting.Stop.Count == 0, string.Join("; ", waiting.Stop));
        Assert.Equal(DeploymentRolloutState.InProgress, world.Service.Primary!.RolloutState);

        var first = world.Live("ecs-svc/2")[0].Id;
        world.TargetHealthy = t => t.StartedBy != "ecs-svc/2" || t.Id == first;
        Assert.Single(world.Step().Stop);

        world.TargetHealthy = _ => true;
        world.StepUntil(w => w.Service.Primary!.RolloutState == DeploymentRolloutState.Completed);
        Assert.Empty(world.Live("ecs-svc/1"));
    }

    [Fact]
    public void Traffic_weights_round_trip_and_stay_within_elbv2_limits()
    {
        foreach (var permille in new[] { 0, 1, 50, 500, 999, 1000 })
        {
            var (blue, green) = TrafficState.Weights(permille);
            Assert.InRange(blue, 0, 999);
            Assert.InRange(green, 0, 999);
            Assert.True(blue + green > 0);
            Assert.Equal(permille, TrafficState.Permille(blue, green));
        }
    }

    [Theory]
    [InlineData("""{"strategy":"BLUE_GREEN","lifecycleHooks":[{"hookTargetArn":"arn:aws:lambda:us-east-1:000000000000:function:f","lifecycleStages":["POST_SCALE_UP"]}]}""", true, "AWS_LAMBDA")]
    [InlineData("""{"strategy":"BLUE_GREEN"}""", false, "advancedConfiguration")]
    [InlineData("""{"strategy":"CANARY"}""", false, "advancedConfiguration")]
    [InlineData("""{"strategy":"SIDEWAYS"}""", true, "Invalid deployment strategy")]
    [InlineData("""{"strategy":"BLUE_GREEN","lifecycleHooks":[{"targetType":"PAUSE","lifecycleStages":["SCALE_UP"]}]}""", true, "Invalid lifecycle stage")]
    [InlineData("""{"strategy":"BLUE_GREEN","linearConfiguration":{"stepPercent":10}}""", true, "LINEAR")]
    [InlineData("""{"strategy":"CANARY","canaryConfiguration":{"canaryPercent":0}}""", true, "canaryPercent")]
    public void Bad_strategy_settings_are_refused(string configuration, bool withAdvanced, string message)
    {
        var entry = new JsonObject { ["targetGroupArn"] = Blue, ["containerName"] = "web", ["containerPort"] = 80 };
        if (withAdvanced) entry["advancedConfiguration"] = new JsonObject { ["alternateTargetGroupArn"] = Green, ["productionListenerRule"] = ProdRule };
        var error = Assert.Throws<InvalidParameterException>(() => BlueGreenSettings.Validate(JsonNode.Parse(configuration)!.AsObject(), new JsonArray(entry)));
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void Good_strategy_settings_pass()
    {
        var entry = new JsonObject
        {
            ["targetGroupArn"] = Blue, ["containerName"] = "web", ["containerPort"] = 80,
            ["advancedConfiguration"] = new JsonObject { ["alternateTargetGroupArn"] = Green, ["productionListenerRule"] = ProdRule },
        };
        BlueGreenSettings.Validate(Configuration(hooks: PauseAt(LifecycleStages.PostTestTrafficShift, 30)), new JsonArray(entry));
        BlueGreenSettings.Validate(new JsonObject { ["strategy"] = "ROLLING" }, null);
    }
}
