using System.Globalization;
using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Services;

namespace Serverless.Core.Reconciliation;

/// <summary>ECS's <c>deploymentConfiguration.strategy</c> values.</summary>
public static class DeploymentStrategies
{
    public const string Rolling = "ROLLING";
    public const string BlueGreen = "BLUE_GREEN";
    public const string Linear = "LINEAR";
    public const string Canary = "CANARY";

    /// <summary>The strategies that run a second revision beside the first and move traffic between them.</summary>
    public static bool ShiftsTraffic(string strategy) => strategy is BlueGreen or Linear or Canary;
}

/// <summary>
/// A service deployment's lifecycle stages in ECS's order (<c>ServiceDeploymentLifecycleStage</c>), plus
/// <c>PRE_PRODUCTION_TRAFFIC_SHIFT</c>, a hook stage that ECS's stage list does not show: it is shown as
/// <c>POST_TEST_TRAFFIC_SHIFT</c>, the traffic state it is in.
/// </summary>
public static class LifecycleStages
{
    public const string ReconcileService = "RECONCILE_SERVICE";
    public const string PreScaleUp = "PRE_SCALE_UP";
    public const string ScaleUp = "SCALE_UP";
    public const string PostScaleUp = "POST_SCALE_UP";
    public const string TestTrafficShift = "TEST_TRAFFIC_SHIFT";
    public const string PostTestTrafficShift = "POST_TEST_TRAFFIC_SHIFT";
    public const string PreProductionTrafficShift = "PRE_PRODUCTION_TRAFFIC_SHIFT";
    public const string ProductionTrafficShift = "PRODUCTION_TRAFFIC_SHIFT";
    public const string PostProductionTrafficShift = "POST_PRODUCTION_TRAFFIC_SHIFT";
    public const string BakeTime = "BAKE_TIME";
    public const string CleanUp = "CLEAN_UP";

    public static readonly IReadOnlyList<string> Order =
    [
        ReconcileService, PreScaleUp, ScaleUp, PostScaleUp, TestTrafficShift, PostTestTrafficShift,
        PreProductionTrafficShift, ProductionTrafficShift, PostProductionTrafficShift, BakeTime, CleanUp,
    ];

    /// <summary>The stages a lifecycle hook can name (the model's <c>DeploymentLifecycleHookStage</c>).</summary>
    public static readonly IReadOnlySet<string> Hookable = new HashSet<string>(StringComparer.Ordinal)
    {
        ReconcileService, PreScaleUp, PostScaleUp, TestTrafficShift, PostTestTrafficShift,
        PreProductionTrafficShift, ProductionTrafficShift, PostProductionTrafficShift,
    };

    public static int IndexOf(string stage) => Order.ToList().IndexOf(stage);

    /// <summary>The stage as <c>DescribeServiceDeployments</c> shows it.</summary>
    public static string Shown(string stage) => stage == PreProductionTrafficShift ? PostTestTrafficShift : stage;
}

/// <summary>ECS's <c>ServiceDeploymentStatus</c> values.</summary>
public static class ServiceDeploymentStatus
{
    public const string Pending = "PENDING";
    public const string Successful = "SUCCESSFUL";
    public const string Stopped = "STOPPED";
    public const string StopRequested = "STOP_REQUESTED";
    public const string InProgress = "IN_PROGRESS";
    public const string RollbackRequested = "ROLLBACK_REQUESTED";
    public const string RollbackInProgress = "ROLLBACK_IN_PROGRESS";
    public const string RollbackSuccessful = "ROLLBACK_SUCCESSFUL";
    public const string RollbackFailed = "ROLLBACK_FAILED";
}

/// <summary>ECS's <c>DeploymentLifecycleHookStatus</c> and <c>DeploymentLifecycleHookAction</c> values.</summary>
public static class HookStatus
{
    public const string AwaitingAction = "AWAITING_ACTION";
    public const string Succeeded = "SUCCEEDED";
    public const string Failed = "FAILED";
    public const string TimedOut = "TIMED_OUT";
    public const string Continue = "CONTINUE";
    public const string Rollback = "ROLLBACK";
    public const string Pause = "PAUSE";
    public const string Lambda = "AWS_LAMBDA";
}

/// <summary>One run of a <c>PAUSE</c> hook at one stage (<c>DeploymentLifecycleHookDetail</c>).</summary>
public sealed record HookRun(string HookId, string Stage, string Status, DateTimeOffset? ExpiresAt, string? TimeoutAction);

/// <summary>
/// Where a service's traffic stands for one deployment: the share of production traffic on its own
/// (green) target groups, in thousandths, and whether the test rule sends test traffic to them.
/// </summary>
public sealed record TrafficState(int ProductionPermille, bool TestOnGreen)
{
    public const int All = 1000;

    /// <summary>ELBv2 forward weights (0..999 each, sum above 0) for blue and green that give <paramref name="permille"/> to green.</summary>
    public static (int Blue, int Green) Weights(int permille) => permille switch
    {
        <= 0 => (1, 0),
        >= All => (0, 1),
        _ => (All - permille, permille),
    };

    /// <summary>The green share that <paramref name="blue"/>/<paramref name="green"/> weights give, in thousandths.</summary>
    public static int Permille(int blue, int green)
        => blue + green <= 0 ? 0 : (int)Math.Round(green * (double)All / (blue + green), MidpointRounding.AwayFromZero);
}

/// <summary>
/// What a deployment knows of its own lifecycle: which of each load balancer entry's two target groups
/// its tasks are registered in (<see cref="AlternateSlot"/>), and for a blue/green, linear or canary
/// deployment the stage it is in, the traffic it asks for, its hooks and how it ended. Stored with the
/// deployment on the service row.
/// </summary>
public sealed record DeploymentLifecycle
{
    /// <summary>The strategy the deployment runs with; <c>ROLLING</c> for one that only records its slot.</summary>
    public string Strategy { get; init; } = DeploymentStrategies.Rolling;
    /// <summary>True when the deployment's tasks go to each entry's <c>alternateTargetGroupArn</c>.</summary>
    public bool AlternateSlot { get; init; }
    /// <summary>Null for a ROLLING deployment (its status follows its rollout state).</summary>
    public string? Stage { get; init; }
    public string? Status { get; init; }
    public string? StatusReason { get; init; }
    /// <summary>The deployment traffic moves away from (blue).</summary>
    public string? SourceDeploymentId { get; init; }
    public DateTimeOffset? StageEnteredAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public int ProductionPermille { get; init; }
    public bool TestOnGreen { get; init; }
    /// <summary>When the production share last moved (linear and canary steps bake from there).</summary>
    public DateTimeOffset? ShiftedAt { get; init; }
    public IReadOnlyList<HookRun> Hooks { get; init; } = [];
    /// <summary><c>ROLLBACK</c> once StopServiceDeployment asked for it.</summary>
    public string? StopRequested { get; init; }
    public string? RollbackReason { get; init; }
    public DateTimeOffset? RollbackStartedAt { get; init; }

    public bool InProgress => Status is ServiceDeploymentStatus.InProgress or ServiceDeploymentStatus.RollbackRequested or ServiceDeploymentStatus.RollbackInProgress;

    public TrafficState Traffic => new(ProductionPermille, TestOnGreen);
}

/// <summary>One configured lifecycle hook (only <c>PAUSE</c> hooks are accepted here).</summary>
public sealed record HookSetting(IReadOnlyList<string> Stages, int? TimeoutMinutes, string TimeoutAction);

/// <summary>A service's <c>deploymentConfiguration</c> members that shape a blue/green, linear or canary deployment.</summary>
public sealed record BlueGreenSettings(
    string Strategy, int BakeTimeMinutes, IReadOnlyList<HookSetting> Hooks,
    double StepPercent, int StepBakeMinutes, double CanaryPercent, int CanaryBakeMinutes)
{
    public static readonly BlueGreenSettings Rolling = new(DeploymentStrategies.Rolling, 0, [], 0, 0, 0, 0);

    /// <summary>The settings of a service as stored (the members are kept as given in its passthrough).</summary>
    public static BlueGreenSettings Of(ServiceRecord service) => Of(service.Passthrough);

    public static BlueGreenSettings Of(JsonObject passthrough)
        => passthrough["deploymentConfiguration"] is JsonObject given && given["strategy"] is not null ? Parse(given) : Rolling;

    public static BlueGreenSettings Parse(JsonObject given)
    {
        var hooks = (given["lifecycleHooks"] as JsonArray ?? []).OfType<JsonObject>()
            .Select(h => new HookSetting(
                (h["lifecycleStages"] as JsonArray ?? []).Select(s => s!.GetValue<string>()).ToList(),
                h["timeoutConfiguration"]?["timeoutInMinutes"]?.GetValue<int>(),
                h["timeoutConfiguration"]?["action"]?.GetValue<string>() ?? HookStatus.Rollback))
            .ToList();
        return new BlueGreenSettings(
            given.String("strategy") ?? DeploymentStrategies.Rolling,
            given.Int("bakeTimeInMinutes") ?? 0,
            hooks,
            given["linearConfiguration"]?["stepPercent"]?.GetValue<double>() ?? 10,
            given["linearConfiguration"]?["stepBakeTimeInMinutes"]?.GetValue<int>() ?? 0,
            given["canaryConfiguration"]?["canaryPercent"]?.GetValue<double>() ?? 5,
            given["canaryConfiguration"]?["canaryBakeTimeInMinutes"]?.GetValue<int>() ?? 0);
    }

    /// <summary>The first production share of a shift: all, the canary's or the first linear step.</summary>
    public int FirstStep => Strategy switch
    {
        DeploymentStrategies.Canary => Share(CanaryPercent),
        DeploymentStrategies.Linear => Share(StepPercent),
        _ => TrafficState.All,
    };

    /// <summary>The share after <paramref name="current"/> once its bake time has passed, and that bake time.</summary>
    public (int Next, TimeSpan Bake) After(int current) => Strategy switch
    {
        DeploymentStrategies.Canary => (TrafficState.All, TimeSpan.FromMinutes(CanaryBakeMinutes)),
        DeploymentStrategies.Linear => (Math.Min(TrafficState.All, current + Share(StepPercent)), TimeSpan.FromMinutes(StepBakeMinutes)),
        _ => (TrafficState.All, TimeSpan.Zero),
    };

    private static int Share(double percent) => Math.Clamp((int)Math.Round(percent * 10, MidpointRounding.AwayFromZero), 1, TrafficState.All);

    /// <summary>
    /// Checks <c>deploymentConfiguration</c>'s strategy members and the service's <c>loadBalancers</c>
    /// for them, with ECS's error types. A <c>PAUSE</c> hook is the only hook here: there is no Lambda
    /// to invoke, so an <c>AWS_LAMBDA</c> hook is refused rather than skipped.
    /// </summary>
    public static void Validate(JsonObject? configuration, JsonNode? loadBalancers)
    {
        if (configuration is null) return;
        var strategy = configuration.String("strategy") ?? DeploymentStrategies.Rolling;
        if (strategy is not (DeploymentStrategies.Rolling or DeploymentStrategies.BlueGreen or DeploymentStrategies.Linear or DeploymentStrategies.Canary))
            throw new InvalidParameterException($"Invalid deployment strategy: {strategy}. Valid values are ROLLING, BLUE_GREEN, LINEAR and CANARY.");
        if (configuration.Int("bakeTimeInMinutes") is { } bake && bake is < 0 or > 1440)
            throw new InvalidParameterException("bakeTimeInMinutes must be between 0 and 1440.");
        if (configuration["linearConfiguration"] is JsonObject linear)
        {
            if (strategy != DeploymentStrategies.Linear) throw new InvalidParameterException("linearConfiguration can only be specified with the LINEAR deployment strategy.");
            if (linear["stepPercent"]?.GetValue<double>() is { } step && step is < 3 or > 100)
                throw new InvalidParameterException("linearConfiguration.stepPercent must be between 3.0 and 100.0.");
            if (linear["stepBakeTimeInMinutes"]?.GetValue<int>() is { } stepBake && stepBake is < 0 or > 1440)
                throw new InvalidParameterException("linearConfiguration.stepBakeTimeInMinutes must be between 0 and 1440.");
        }
        if (configuration["canaryConfiguration"] is JsonObject canary)
        {
            if (strategy != DeploymentStrategies.Canary) throw new InvalidParameterException("canaryConfiguration can only be specified with the CANARY deployment strategy.");
            if (canary["canaryPercent"]?.GetValue<double>() is { } percent && percent is < 0.1 or > 100)
                throw new InvalidParameterException("canaryConfiguration.canaryPercent must be between 0.1 and 100.0.");
            if (canary["canaryBakeTimeInMinutes"]?.GetValue<int>() is { } canaryBake && canaryBake is < 0 or > 1440)
                throw new InvalidParameterException("canaryConfiguration.canaryBakeTimeInMinutes must be between 0 and 1440.");
        }
        foreach (var hook in (configuration["lifecycleHooks"] as JsonArray ?? []).OfType<JsonObject>())
        {
            var type = hook.String("targetType") ?? HookStatus.Lambda;   // the model's default
            if (type == HookStatus.Lambda)
                throw new InvalidParameterException("AWS_LAMBDA lifecycle hooks are not supported: this control plane has no Lambda to invoke. Use targetType PAUSE and ContinueServiceDeployment.");
            if (type != HookStatus.Pause) throw new InvalidParameterException($"Invalid lifecycle hook targetType: {type}. Valid values are AWS_LAMBDA and PAUSE.");
            var stages = (hook["lifecycleStages"] as JsonArray ?? []).Select(s => s?.GetValue<string>()).ToList();
            if (stages.Count == 0) throw new InvalidParameterException("lifecycleStages must contain at least one stage.");
            foreach (var stage in stages)
            {
                if (stage is null || !LifecycleStages.Hookable.Contains(stage))
                    throw new InvalidParameterException($"Invalid lifecycle stage: {stage}.");
            }
            if (hook["timeoutConfiguration"]?["timeoutInMinutes"]?.GetValue<int>() is { } minutes && minutes is < 1 or > 10080)
                throw new InvalidParameterException("timeoutConfiguration.timeoutInMinutes must be between 1 and 10080.");
        }
        if (!DeploymentStrategies.ShiftsTraffic(strategy)) return;

        // A traffic-shifting strategy needs, for each load balancer, the second target group and the rule whose weights it rewrites.
        if (loadBalancers is not JsonArray { Count: > 0 })
            throw new InvalidParameterException($"The {strategy} deployment strategy needs loadBalancers with an advancedConfiguration here: headless {strategy} deployments are not supported.");
        foreach (var entry in (loadBalancers as JsonArray ?? []).OfType<JsonObject>())
        {
            if (entry["advancedConfiguration"] is not JsonObject advanced)
                throw new InvalidParameterException($"advancedConfiguration must be specified for each load balancer of a service that uses the {strategy} deployment strategy.");
            var alternate = advanced.String("alternateTargetGroupArn")
                ?? throw new InvalidParameterException("advancedConfiguration.alternateTargetGroupArn must be specified.");
            if (alternate == entry.String("targetGroupArn"))
                throw new InvalidParameterException("alternateTargetGroupArn must be different from targetGroupArn.");
            if (advanced.String("productionListenerRule") is null)
                throw new InvalidParameterException("advancedConfiguration.productionListenerRule must be specified.");
        }
    }

    /// <summary>The configured PAUSE hook that runs at <paramref name="stage"/>, if any.</summary>
    public HookSetting? HookAt(string stage) => Hooks.FirstOrDefault(h => h.Stages.Contains(stage));

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Strategy} bake {BakeTimeMinutes} min, {Hooks.Count} hooks");
}
