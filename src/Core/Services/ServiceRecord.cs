using System.Text.Json.Nodes;
using Azure;
using Serverless.Core.Scheduling;
using Serverless.Core.Tags;

namespace Serverless.Core.Services;

/// <summary>
/// One rollout of a service's task definition. Tasks belong to a deployment through their
/// <c>startedBy</c>, which ECS sets to the deployment id (<c>ecs-svc/…</c>).
/// </summary>
public sealed record Deployment
{
    public required string Id { get; init; }
    public required string Status { get; init; }
    public required string TaskDefinitionArn { get; init; }
    public int DesiredCount { get; init; }
    public int PendingCount { get; init; }
    public int RunningCount { get; init; }
    public int FailedTasks { get; init; }
    public string RolloutState { get; init; } = DeploymentRolloutState.InProgress;
    public string? RolloutStateReason { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    /// <summary>Its target group slot and, for a blue/green, linear or canary deployment, its lifecycle (<see cref="Reconciliation.BlueGreen"/>).</summary>
    public Reconciliation.DeploymentLifecycle? Lifecycle { get; init; }

    /// <summary>New ids look like ECS's: <c>ecs-svc/</c> and 19 digits.</summary>
    public static string NewId() => "ecs-svc/" + string.Concat(Enumerable.Range(0, 19).Select(_ => (char)('0' + Random.Shared.Next(10))));
}

/// <summary>A service event ("(service web) has reached a steady state."), newest first on the service.</summary>
public sealed record ServiceEvent(string Id, DateTimeOffset CreatedAt, string Message);

/// <summary><c>deploymentConfiguration</c> with ECS's defaults (REPLICA 100/200; DAEMON 0/100).</summary>
public sealed record DeploymentConfiguration(
    int MinimumHealthyPercent = 100,
    int MaximumPercent = 200,
    bool CircuitBreakerEnable = false,
    bool CircuitBreakerRollback = false);

/// <summary>
/// A service row. Partition key <c>cluster|name</c>: each service is its own partition, so
/// reconciling one never contends with another's writes; ListServices scans the cluster's range.
/// Deployments and recent events are part of the row, so one read gives the whole desired state.
/// </summary>
public sealed record ServiceRecord
{
    public const string Active = "ACTIVE";
    public const string Draining = "DRAINING";
    public const string Inactive = "INACTIVE";
    public const string Replica = "REPLICA";
    public const string Daemon = "DAEMON";
    public const int MaxEvents = 100;

    public required string Cluster { get; init; }
    public required string Name { get; init; }
    public string Status { get; init; } = Active;
    public string SchedulingStrategy { get; init; } = Replica;
    public int DesiredCount { get; init; }
    /// <summary>The task definition of the PRIMARY deployment.</summary>
    public required string TaskDefinitionArn { get; init; }
    public string LaunchType { get; init; } = "EC2";
    public IReadOnlyList<PlacementStrategy> PlacementStrategy { get; init; } = [];
    /// <summary>ECS <c>placementConstraints</c> as given (type, expression).</summary>
    public JsonArray PlacementConstraints { get; init; } = [];
    public DeploymentConfiguration DeploymentConfiguration { get; init; } = new();
    public int? HealthCheckGracePeriodSeconds { get; init; }
    public IReadOnlyList<Deployment> Deployments { get; init; } = [];
    /// <summary>Deployments that left <see cref="Deployments"/>, newest first, for ListServiceDeployments.</summary>
    public IReadOnlyList<Deployment> DeploymentHistory { get; init; } = [];
    public IReadOnlyList<ServiceEvent> Events { get; init; } = [];
    public IReadOnlyList<Tag> Tags { get; init; } = [];
    /// <summary>Request members kept only to be returned as given (loadBalancers, networkConfiguration, ...).</summary>
    public JsonObject Passthrough { get; init; } = [];
    public DateTimeOffset CreatedAt { get; init; }
    public string? CreatedBy { get; init; }
    public bool PropagateTags { get; init; }
    /// <summary>
    /// ECS <c>propagateTags</c> as the API takes it: <c>NONE</c>, <c>SERVICE</c> (copy the service's
    /// tags to its tasks) or <c>TASK_DEFINITION</c> (copy the task definition's). <see cref="PropagateTags"/>
    /// is true exactly when this is not <c>NONE</c>.
    /// </summary>
    public string PropagateTagsFrom { get; init; } = "NONE";
    public bool EnableEcsManagedTags { get; init; }

    /// <summary>
    /// While a reconcile starts or stops tasks it holds the service: another control plane that
    /// reads a live lease backs off, so two reconciles never act on one service at once.
    /// </summary>
    public string? LeaseOwner { get; init; }
    public DateTimeOffset? LeaseExpiresAt { get; init; }

    public ETag ETag { get; init; }

    /// <summary>
    /// Converged as far as its row tells: ACTIVE, one deployment, COMPLETED, running what it wants with nothing
    /// pending. The resync looks at such a service less often (<see cref="EcsOptions.SteadyServiceResyncMinutes"/>).
    /// </summary>
    public bool IsSteady => Status == Active
        && Deployments is [{ RolloutState: DeploymentRolloutState.Completed, PendingCount: 0 } only]
        && only.RunningCount == only.DesiredCount
        && (SchedulingStrategy != Replica || only.DesiredCount == DesiredCount);

    public Deployment? Primary => Deployments.FirstOrDefault(d => d.Status == DeploymentStatus.Primary);

    public string Group => $"service:{Name}";

    public bool IsDaemon => SchedulingStrategy == Daemon;
}

/// <summary>What a reconcile message names: one service (never a copy of its state).</summary>
public sealed record ServiceKey(string Cluster, string Name)
{
    public override string ToString() => $"{Cluster}/{Name}";
}

/// <summary>
/// A service as a listing names it: key, status, scheduling strategy, launch type, desired count
/// and task definition. What to act on is read whole with <see cref="ServiceStore.FindAsync"/>.
/// </summary>
public sealed record ServiceSummary(
    string Cluster, string Name, string Status, string SchedulingStrategy, string LaunchType, int DesiredCount, string TaskDefinitionArn,
    bool Steady = false);
