using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Capacity;
using Serverless.Core.Clusters;
using Serverless.Core.Reconciliation;
using Serverless.Core.Scheduling;
using Serverless.Core.Storage;
using Serverless.Core.Tags;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Services;

/// <summary>
/// CreateService, UpdateService, DeleteService, DescribeServices, ListServices. These write the
/// desired state only and enqueue a reconcile for the service; starting, stopping and replacing
/// tasks, advancing deployments and writing service events is the reconciler's work.
/// </summary>
public sealed partial class ServiceActions(
    ClusterStore clusters,
    TaskDefinitionStore definitions,
    ServiceStore services,
    ReconcileQueue reconcile,
    ClientTokens clientTokens,
    ServiceJson json,
    Arns arns,
    TimeProvider time,
    ILogger<ServiceActions> logger,
    LoadBalancing.ServiceTargets? targets = null) : IActionSource
{
    public const string NotIdempotent = "Creation of service was not idempotent.";
    public const string StillDraining = "Unable to Start a service that is still Draining.";
    public const string ScaledAboveZero = "The service cannot be stopped while it is scaled above 0.";
    public const string DaemonDesiredCount = "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again";
    public const string DaemonPlacementStrategy = "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again";
    public const string DaemonMaximumPercent = "The daemon scheduling strategy does not support values above 100 for maximumPercent.";

    /// <summary>ECS accepts up to 36 ASCII characters 33-126 as CreateService's clientToken.</summary>
    private const int MaxClientTokenLength = 36;

    /// <summary>Passthrough members are small in practice; the cap keeps a service row well inside one entity.</summary>
    private const int MaxPassthroughChars = 128 * 1024;

    /// <summary>Request members stored only to be returned (or, for <c>role</c>, reported as <c>roleArn</c>).</summary>
    private static readonly string[] CreatePassthrough =
    [
        "loadBalancers", "serviceRegistries", "platformVersion", "networkConfiguration", "role",
        "availabilityZoneRebalancing", "serviceConnectConfiguration", "volumeConfigurations", "vpcLatticeConfigurations",
        "capacityProviderStrategy",
    ];

    /// <summary>UpdateService's passthrough members, and whether a changed value starts a new deployment (the API reference says which do).</summary>
    private static readonly (string Member, bool Redeploys)[] UpdatePassthrough =
    [
        ("loadBalancers", true), ("serviceRegistries", true), ("platformVersion", true), ("networkConfiguration", true),
        ("serviceConnectConfiguration", true), ("volumeConfigurations", true), ("vpcLatticeConfigurations", true),
        ("availabilityZoneRebalancing", false),
    ];

    /// <summary><c>deploymentConfiguration</c> members acted on; the others (alarms, strategy ROLLING, ...) are kept as given.</summary>
    private static readonly HashSet<string> HandledConfiguration = ["maximumPercent", "minimumHealthyPercent", "deploymentCircuitBreaker"];

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("CreateService", CreateServiceAsync);
        registry.Map("UpdateService", UpdateServiceAsync);
        registry.Map("DeleteService", DeleteServiceAsync);
        registry.Map("DescribeServices", DescribeServicesAsync);
        registry.Map("ListServices", ListServicesAsync);
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,255}$")]
    private static partial Regex ServiceNamePattern();

    private async Task<JsonObject> CreateServiceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var clusterRow = await clusters.GetActiveAsync(arns.ClusterName(request.String("cluster")), cancellationToken);
        var cluster = clusterRow.Name;
        var name = request.String("serviceName")!;
        if (!ServiceNamePattern().IsMatch(name))
            throw new InvalidParameterException("Invalid service name. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.");
        var token = request.String("clientToken");
        if (token is { Length: > MaxClientTokenLength }) throw new InvalidParameterException("idempotency token longer than 36.");
        if (token is not null && token.Any(c => c is < '!' or > '~'))
            throw new InvalidParameterException("clientToken may only contain ASCII characters 33 to 126.");

        var daemon = request.String("schedulingStrategy") == ServiceRecord.Daemon;
        CheckLaunchOptions(request);
        int desiredCount;
        if (daemon)
        {
            // A daemon's desired count is its number of eligible instances, which the reconciler keeps.
            if (request.Int("desiredCount") is not null) throw new InvalidParameterException(DaemonDesiredCount);
            desiredCount = 0;
        }
        else
        {
            desiredCount = request.Int("desiredCount") ?? throw new InvalidParameterException("DesiredCount is missing");
            if (desiredCount < 0) throw new InvalidParameterException("DesiredCount can not be lesser than 0");
        }

        var strategies = Strategies(request["placementStrategy"] as JsonArray, daemon);
        var constraints = Constraints(request["placementConstraints"] as JsonArray);
        var defaults = daemon ? new DeploymentConfiguration(MinimumHealthyPercent: 0, MaximumPercent: 100) : new DeploymentConfiguration();
        var configuration = Configuration(request["deploymentConfiguration"] as JsonObject, defaults, daemon);
        var grace = GracePeriod(request);
        var tags = Tag.FromRequest(request);
        var propagateTags = request.String("propagateTags") ?? "NONE";

        var passthrough = new JsonObject();
        foreach (var member in CreatePassthrough)
        {
            if (request[member] is { } value) passthrough[member] = value.DeepClone();
        }
        MergeConfigurationExtras(passthrough, request["deploymentConfiguration"] as JsonObject);
        CheckSize(passthrough);
        if (daemon && BlueGreenSettings.Of(passthrough).Strategy != DeploymentStrategies.Rolling)
            throw new InvalidParameterException("The daemon scheduling strategy supports only the ROLLING deployment strategy.");
        BlueGreenSettings.Validate(passthrough["deploymentConfiguration"] as JsonObject, passthrough["loadBalancers"]);

        var definition = await ResolveDefinitionAsync(
            request.String("taskDefinition") ?? throw new InvalidParameterException("A task definition must be specified for services that use the ECS deployment controller."),
            cancellationToken);
        var target = LaunchTargets.Resolve(request, clusterRow, definition);
        AwsVpcConfiguration.Check(definition, request["networkConfiguration"], target.IsFargate);
        // ECS shows the strategy a service runs with, the cluster's default included, and a Fargate service's platform version.
        if (target.Strategy.Count > 0) passthrough["capacityProviderStrategy"] = LaunchTargets.ToJson(target.Strategy);
        if (target.IsFargate) passthrough["platformVersion"] ??= "LATEST";
        await CheckLoadBalancersAsync(request["loadBalancers"], definition, cancellationToken);

        var now = Now();
        var service = new ServiceRecord
        {
            Cluster = cluster,
            Name = name,
            Status = ServiceRecord.Active,
            SchedulingStrategy = daemon ? ServiceRecord.Daemon : ServiceRecord.Replica,
            DesiredCount = desiredCount,
            TaskDefinitionArn = definition.Arn,
            LaunchType = target.LaunchType,
            PlacementStrategy = strategies,
            PlacementConstraints = constraints,
            DeploymentConfiguration = configuration,
            HealthCheckGracePeriodSeconds = grace,
            Deployments = [NewDeployment(definition.Arn, desiredCount, now)],
            Events = [],
            Tags = tags,
            Passthrough = passthrough,
            CreatedAt = now,
            CreatedBy = arns.Caller(context.AccessKeyId),
            PropagateTags = propagateTags != "NONE",
            PropagateTagsFrom = propagateTags,
            EnableEcsManagedTags = request.Bool("enableECSManagedTags") ?? false,
        };

        // A retry with the same clientToken and the same parameters gets the first answer back;
        // without one, an existing ACTIVE service of that name is an error, as on ECS.
        return await clientTokens.RunOnceAsync(cluster, "CreateService", token, request, async () =>
        {
            var created = await InsertAsync(service, cancellationToken);
            logger.LogInformation("Created service {ServiceArn} on {TaskDefinitionArn}, desired count {DesiredCount}, deployment {DeploymentId}",
                arns.Service(cluster, name), definition.Arn, desiredCount, created.Primary?.Id);
            await NudgeAsync(created, cancellationToken);
            return new JsonObject { ["service"] = json.ToJson(created, includeTags: true) };
        }, cancellationToken);
    }

    /// <summary>
    /// Inserts the new service. A name that is ACTIVE or DRAINING is refused; an INACTIVE (deleted)
    /// one is replaced, conditional on the row read, so a concurrent create of the same name loses cleanly.
    /// </summary>
    private Task<ServiceRecord> InsertAsync(ServiceRecord service, CancellationToken cancellationToken)
        => OptimisticUpdate.RetryAsync(async _ =>
        {
            if (await services.TryInsertAsync(service, cancellationToken)) return service;

            var existing = await services.FindAsync(service.Cluster, service.Name, cancellationToken);
            if (existing?.Status == ServiceRecord.Active) throw new InvalidParameterException(NotIdempotent);
            if (existing?.Status == ServiceRecord.Draining) throw new InvalidParameterException(StillDraining);
            // Gone between the insert and the read: another writer is at work; look again.
            if (existing is null) throw new ConcurrentUpdateException(arns.Service(service.Cluster, service.Name));
            return await services.SaveAsync(service with { ETag = existing.ETag }, cancellationToken);
        }, cancellationToken, maxAttempts: 5);

    private async Task<JsonObject> UpdateServiceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = (await clusters.GetActiveAsync(arns.ClusterName(request.String("cluster")), cancellationToken)).Name;
        var name = ServiceName(cluster, request.String("service")!) ?? throw new ServiceNotFoundException();
        CheckLaunchOptions(request, update: true);
        if (request.Int("desiredCount") is < 0) throw new InvalidParameterException("Task count can not be lesser than 0");
        var constraints = request["placementConstraints"] is JsonArray given ? Constraints(given) : null;
        var grace = GracePeriod(request);

        var definition = request.String("taskDefinition") is { } reference ? await ResolveDefinitionAsync(reference, cancellationToken) : null;
        // The service as it is, read once and only when a check below needs it.
        ServiceRecord? current = null;
        async Task<ServiceRecord> CurrentAsync() => current ??= await services.FindAsync(cluster, name, cancellationToken) ?? throw new ServiceNotFoundException();
        TaskDefinitionRecord? runs = null;
        async Task<TaskDefinitionRecord?> RunsAsync() => definition ?? (runs ??= await DefinitionOfAsync(await CurrentAsync(), cancellationToken));

        if (request["networkConfiguration"] is { } network)
        {
            // Valid only for the network mode of the definition the service will run.
            if (await RunsAsync() is { } effective)
                AwsVpcConfiguration.Check(effective, network, (await CurrentAsync()).LaunchType == LaunchTargets.Fargate);
        }

        if (request["loadBalancers"] is { } || definition is not null)
        {
            // The load balancers the service will have, against the definition it will run.
            var loadBalancers = request["loadBalancers"] ?? (await CurrentAsync()).Passthrough["loadBalancers"];
            if (loadBalancers is not null && await RunsAsync() is { } effective) await CheckLoadBalancersAsync(loadBalancers, effective, cancellationToken);
        }

        var now = Now();
        var redeployed = false;
        var updated = await services.UpdateAsync(cluster, name, current =>
        {
            var (changed, redeploy) = Apply(current, request, definition, constraints, grace, now);
            redeployed = redeploy;
            return changed;
        }, cancellationToken);

        if (redeployed)
            logger.LogInformation("Started deployment {DeploymentId} of service {ServiceArn} on {TaskDefinitionArn}",
                updated.Primary?.Id, arns.Service(cluster, name), updated.TaskDefinitionArn);
        else
            logger.LogInformation("Updated service {ServiceArn}, desired count {DesiredCount}", arns.Service(cluster, name), updated.DesiredCount);
        await NudgeAsync(updated, cancellationToken);
        return new JsonObject { ["service"] = json.ToJson(updated, includeTags: false) };
    }

    /// <summary>A service's <c>loadBalancers</c> against its task definition, with ECS's errors.</summary>
    private async Task CheckLoadBalancersAsync(JsonNode? loadBalancers, TaskDefinitionRecord definition, CancellationToken cancellationToken)
    {
        LoadBalancing.ServiceTargets.Validate(loadBalancers, definition);
        if (targets is not null) await targets.CheckTargetTypesAsync(loadBalancers, definition, cancellationToken);
    }

    /// <summary>
    /// UpdateService's change to the service as read: a pure function, run again on every retry.
    /// A different task definition, <c>forceNewDeployment</c>, or a changed member that ECS
    /// deploys (load balancers, network configuration, ...) makes a new PRIMARY deployment and turns
    /// the previous PRIMARY into ACTIVE (older ACTIVE ones stay until the reconciler drains them);
    /// otherwise a desired count change is the PRIMARY's desired count too.
    /// </summary>
    private static (ServiceRecord Service, bool Redeploy) Apply(
        ServiceRecord current, JsonObject request, TaskDefinitionRecord? definition, JsonArray? constraints, int? grace, DateTimeOffset now)
    {
        if (current.Status != ServiceRecord.Active) throw new ServiceNotActiveException();
        var daemon = current.IsDaemon;

        var desiredCount = current.DesiredCount;
        if (request.Int("desiredCount") is { } count)
        {
            if (daemon) throw new InvalidParameterException(DaemonDesiredCount);
            desiredCount = count;
        }

        var passthrough = current.Passthrough.DeepClone().AsObject();
        var redeploy = request.Bool("forceNewDeployment") == true;
        foreach (var (member, redeploys) in UpdatePassthrough)
        {
            if (request[member] is not { } value) continue;
            if (redeploys && !JsonNode.DeepEquals(passthrough[member], value)) redeploy = true;
            passthrough[member] = value.DeepClone();
        }
        MergeConfigurationExtras(passthrough, request["deploymentConfiguration"] as JsonObject);
        CheckSize(passthrough);
        BlueGreenSettings.Validate(passthrough["deploymentConfiguration"] as JsonObject, passthrough["loadBalancers"]);

        var taskDefinitionArn = definition?.Arn ?? current.TaskDefinitionArn;
        if (taskDefinitionArn != current.TaskDefinitionArn) redeploy = true;

        IReadOnlyList<Deployment> deployments = current.Deployments;
        if (redeploy)
        {
            deployments =
            [
                NewDeployment(taskDefinitionArn, desiredCount, now),
                .. current.Deployments.Select(d => d.Status == DeploymentStatus.Primary ? d with { Status = DeploymentStatus.Active, UpdatedAt = now } : d),
            ];
        }
        else if (desiredCount != current.DesiredCount)
        {
            deployments = current.Deployments
                .Select(d => d.Status == DeploymentStatus.Primary ? d with { DesiredCount = desiredCount, UpdatedAt = now } : d)
                .ToList();
        }

        var propagateTags = request.String("propagateTags") ?? current.PropagateTagsFrom;
        var changed = current with
        {
            DesiredCount = desiredCount,
            TaskDefinitionArn = taskDefinitionArn,
            PlacementStrategy = request["placementStrategy"] is JsonArray strategies ? Strategies(strategies, daemon) : current.PlacementStrategy,
            PlacementConstraints = constraints ?? current.PlacementConstraints,
            DeploymentConfiguration = request["deploymentConfiguration"] is JsonObject configuration
                ? Configuration(configuration, current.DeploymentConfiguration, daemon)
                : current.DeploymentConfiguration,
            HealthCheckGracePeriodSeconds = grace ?? current.HealthCheckGracePeriodSeconds,
            Deployments = deployments,
            Passthrough = passthrough,
            PropagateTags = propagateTags != "NONE",
            PropagateTagsFrom = propagateTags,
            EnableEcsManagedTags = request.Bool("enableECSManagedTags") ?? current.EnableEcsManagedTags,
        };
        return (changed, redeploy);
    }

    private async Task<JsonObject> DeleteServiceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = (await clusters.GetActiveAsync(arns.ClusterName(request.String("cluster")), cancellationToken)).Name;
        var name = ServiceName(cluster, request.String("service")!) ?? throw new ServiceNotFoundException();
        var force = request.Bool("force") == true;
        var now = Now();

        var deleted = await services.UpdateAsync(cluster, name, current =>
        {
            // Deleting a service that is already DRAINING or INACTIVE answers it as it is, as ECS does.
            if (current.Status != ServiceRecord.Active) return current;
            // A daemon has no desired count of its own to scale down first.
            if (!current.IsDaemon && current.DesiredCount > 0 && !force) throw new InvalidParameterException(ScaledAboveZero);
            return current with
            {
                Status = ServiceRecord.Draining,
                DesiredCount = 0,
                Deployments = current.Deployments.Select(d => d with { DesiredCount = 0, UpdatedAt = now }).ToList(),
            };
        }, cancellationToken);

        // DRAINING until the reconciler has stopped every task, then INACTIVE.
        if (deleted.Status == ServiceRecord.Draining)
        {
            logger.LogInformation("Deleting service {ServiceArn}: DRAINING", arns.Service(cluster, name));
            await NudgeAsync(deleted, cancellationToken);
        }
        return new JsonObject { ["service"] = json.ToJson(deleted, includeTags: false) };
    }

    private async Task<JsonObject> DescribeServicesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        request.Strings("services").ToList().AtMost(ListLimits.DescribeServices, "service names");
        var references = request.Strings("services").Distinct(StringComparer.Ordinal).ToList();
        if (references.Count is < 1 or > 10) throw new InvalidParameterException("services must contain between 1 and 10 entries.");
        var includeTags = request.Strings("include").Contains("TAGS");

        var names = references.Select(r => ServiceName(cluster, r)).ToList();
        var found = await clusters.ReadInActiveAsync(cluster, Task.WhenAll(names.Select(n => n is null
            ? Task.FromResult<ServiceRecord?>(null)
            : services.FindAsync(cluster, n, cancellationToken))), cancellationToken);

        // INACTIVE services are still described, which is how the services-inactive waiter and
        // tools that delete a service see it finish.
        var described = new JsonArray();
        var failures = new JsonArray();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < references.Count; i++)
        {
            if (found[i] is { } service)
            {
                if (seen.Add(service.Name)) described.Add(json.ToJson(service, includeTags));
            }
            else
            {
                var arn = references[i].StartsWith("arn:", StringComparison.Ordinal) ? references[i] : arns.Service(cluster, references[i]);
                failures.Add(new JsonObject { ["arn"] = arn, ["reason"] = "MISSING" });
            }
        }
        return new JsonObject { ["services"] = described, ["failures"] = failures };
    }

    private async Task<JsonObject> ListServicesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        // ECS pages ListServices 10 at a time unless told otherwise.
        var take = Paging.MaxResults(request, @default: 10, max: 100);
        var after = Paging.AfterKey(request);
        // No service here is managed by ECS itself (Express services): that filter finds none.
        if (request.String("resourceManagementType") == "ECS")
        {
            await clusters.GetActiveAsync(cluster, cancellationToken);
            return new JsonObject { ["serviceArns"] = new JsonArray() };
        }

        var (page, more) = await clusters.ReadInActiveAsync(cluster,
            services.ListActiveAsync(cluster, after, take, request.String("launchType"), request.String("schedulingStrategy"), cancellationToken),
            cancellationToken);
        var response = new JsonObject { ["serviceArns"] = page.Select(s => arns.Service(s.Cluster, s.Name)).ToJsonArray() };
        Paging.AddNextToken(response, more, page.LastOrDefault()?.Name);
        return response;
    }

    /// <summary>
    /// Tells the reconciler to look at the service. The service row is already written, so a lost
    /// message costs only time: the resync timer enqueues every active service again. Failing the
    /// request instead would make a client's retry of CreateService fail as "not idempotent".
    /// </summary>
    private async Task NudgeAsync(ServiceRecord service, CancellationToken cancellationToken)
    {
        try
        {
            await reconcile.EnqueueAsync(new ServiceKey(service.Cluster, service.Name), null, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning(e, "Could not enqueue a reconcile of {ServiceArn}; the resync timer will", arns.Service(service.Cluster, service.Name));
        }
    }

    /// <summary>
    /// The service name from a name or ARN (<c>service/cluster/name</c>, or the old <c>service/name</c>);
    /// null when the ARN is malformed or names a service of another cluster.
    /// </summary>
    private string? ServiceName(string cluster, string nameOrArn)
    {
        if (!Arn.IsArn(nameOrArn)) return ServiceNamePattern().IsMatch(nameOrArn) ? nameOrArn : null;
        return arns.ResourcePath(nameOrArn, "service") switch
        {
            [var owner, var name] when owner == cluster && ServiceNamePattern().IsMatch(name) => name,
            [var name] when ServiceNamePattern().IsMatch(name) => name,
            _ => null,
        };
    }

    /// <summary>
    /// <c>family</c> (its latest ACTIVE revision), <c>family:revision</c> or an ARN, as CreateService
    /// and UpdateService take it. A revision that is not ACTIVE cannot start a deployment.
    /// </summary>
    private async Task<TaskDefinitionRecord> ResolveDefinitionAsync(string reference, CancellationToken cancellationToken)
    {
        var definition = await definitions.FindByReferenceAsync(reference, cancellationToken)
            ?? throw new ClientException("TaskDefinition not found.");
        if (definition.Status != TaskDefinitionRecord.Active) throw new ClientException("TaskDefinition is inactive");
        return definition;
    }

    /// <summary>The revision the service runs now (any status), or null if the service or revision is gone.</summary>
    private async Task<TaskDefinitionRecord?> DefinitionOfAsync(ServiceRecord service, CancellationToken cancellationToken)
        => arns.ResourcePart(service.TaskDefinitionArn, "task-definition") is { } part && TaskDefinitionKey.TryParse(part) is { } key
            ? await definitions.FindAsync(key.Family, key.Revision, cancellationToken)
            : null;

    /// <summary>
    /// The ECS rolling-update controller only. The launch type and strategy are checked against the
    /// cluster and definition (<see cref="LaunchTargets.Resolve"/>); UpdateService keeps the ones the
    /// service was created with.
    /// </summary>
    private static void CheckLaunchOptions(JsonObject request, bool update = false)
    {
        if (update && request["capacityProviderStrategy"] is JsonArray { Count: > 0 })
            throw new InvalidParameterException("Changing the capacity provider strategy of an existing service is not supported by this cluster; create the service again.");
        if (request["deploymentController"]?["type"]?.GetValue<string>() is { } controller && controller != "ECS")
            throw new InvalidParameterException($"The {controller} deployment controller is not supported; services use rolling updates (ECS).");
        if (request.Bool("enableExecuteCommand") == true)
            throw new InvalidParameterException("ECS Exec (enableExecuteCommand) is not supported by this cluster's container instances.");
    }

    /// <summary>
    /// A REPLICA service's chain, or ECS's default (spread over availability zones, then instances);
    /// a DAEMON places one task per instance and takes no strategy.
    /// </summary>
    private static IReadOnlyList<PlacementStrategy> Strategies(JsonArray? given, bool daemon)
    {
        if (!daemon) return PlacementStrategies.Parse(given, Placement.ServiceDefault);
        if (given is { Count: > 0 }) throw new InvalidParameterException(DaemonPlacementStrategy);
        return [];
    }

    /// <summary>Checked as the scheduler will read them (at most 10; memberOf expressions parse); stored as given.</summary>
    private static JsonArray Constraints(JsonArray? given)
    {
        var constraints = given?.DeepClone().AsArray() ?? [];
        foreach (var constraint in constraints)
        {
            if (constraint?["type"] is null) throw new InvalidParameterException("Placement constraint type must be specified.");
        }
        _ = PlacementStrategies.MemberOf(constraints);
        return constraints;
    }

    /// <summary><paramref name="start"/> with the members <paramref name="given"/> sets, checked against ECS's limits.</summary>
    private static DeploymentConfiguration Configuration(JsonObject? given, DeploymentConfiguration start, bool daemon)
    {
        var configuration = start;
        if (given is not null)
        {
            if (given.Int("maximumPercent") is { } maximum) configuration = configuration with { MaximumPercent = maximum };
            if (given.Int("minimumHealthyPercent") is { } minimum) configuration = configuration with { MinimumHealthyPercent = minimum };
            if (given["deploymentCircuitBreaker"] is JsonObject breaker)
            {
                configuration = configuration with
                {
                    CircuitBreakerEnable = breaker.Bool("enable") ?? false,
                    CircuitBreakerRollback = breaker.Bool("rollback") ?? false,
                };
            }
        }

        if (configuration.MinimumHealthyPercent is < 0 or > 100)
            throw new InvalidParameterException("minimumHealthyPercent must be between 0 and 100.");
        if (daemon && configuration.MaximumPercent > 100) throw new InvalidParameterException(DaemonMaximumPercent);
        if (configuration.MaximumPercent < 100) throw new InvalidParameterException("maximumPercent must be at least 100.");
        return configuration;
    }

    /// <summary>Keeps the deploymentConfiguration members not acted on, so they are answered as given.</summary>
    private static void MergeConfigurationExtras(JsonObject passthrough, JsonObject? given)
    {
        if (given is null) return;
        var extras = passthrough["deploymentConfiguration"] as JsonObject ?? [];
        foreach (var (name, value) in given)
        {
            if (!HandledConfiguration.Contains(name) && value is not null) extras[name] = value.DeepClone();
        }
        if (extras.Count > 0) passthrough["deploymentConfiguration"] = extras;
    }

    private static int? GracePeriod(JsonObject request)
        => request.Int("healthCheckGracePeriodSeconds") is { } seconds
            ? seconds >= 0 ? seconds : throw new InvalidParameterException("healthCheckGracePeriodSeconds must be at least 0.")
            : null;

    private static void CheckSize(JsonObject passthrough)
    {
        if (passthrough.ToJsonString().Length > MaxPassthroughChars)
            throw new InvalidParameterException("The service definition is too large.");
    }

    private static Deployment NewDeployment(string taskDefinitionArn, int desiredCount, DateTimeOffset now)
    {
        var id = Deployment.NewId();
        return new Deployment
        {
            Id = id,
            Status = DeploymentStatus.Primary,
            TaskDefinitionArn = taskDefinitionArn,
            DesiredCount = desiredCount,
            RolloutState = DeploymentRolloutState.InProgress,
            RolloutStateReason = $"ECS deployment {id} in progress.",
            CreatedAt = now,
            UpdatedAt = now,
        };
    }

    /// <summary>Now, to the millisecond: what is stored is exactly what the API answers.</summary>
    private DateTimeOffset Now() => DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());
}
