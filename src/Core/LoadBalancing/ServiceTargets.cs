using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;

namespace Serverless.Core.LoadBalancing;

/// <summary>
/// A service's tasks as targets of the target groups in its <c>loadBalancers</c>, as ECS keeps them: a task
/// is registered (its container instance and the host port of <c>containerName</c>/<c>containerPort</c>) once
/// it is RUNNING, and healthy when its definition has a health check; a task that stopped or is to stop is
/// deregistered, and a task the scheduler stops is drained first, for the group's deregistration delay.
/// </summary>
public sealed class ServiceTargets(
    LoadBalancingStore store, ContainerInstances.ContainerInstanceStore instances, QueueWake wake, TimeProvider time, ILogger<ServiceTargets> logger)
{
    /// <summary>
    /// One <c>loadBalancers</c> entry. With an <c>advancedConfiguration</c> (blue/green), a task's target goes to
    /// <see cref="TargetGroupArn"/> or <see cref="AlternateTargetGroupArn"/> by its deployment's slot.
    /// </summary>
    public sealed record Binding(
        string TargetGroupArn, string ContainerName, int ContainerPort,
        string? AlternateTargetGroupArn = null, string? ProductionListenerRule = null, string? TestListenerRule = null)
    {
        public IEnumerable<string> Groups => AlternateTargetGroupArn is { } alternate ? [TargetGroupArn, alternate] : [TargetGroupArn];
    }

    public static IReadOnlyList<Binding> Of(ServiceRecord service) => Of(service.Passthrough["loadBalancers"]);

    /// <summary>The complete entries of a <c>loadBalancers</c> member.</summary>
    public static IReadOnlyList<Binding> Of(JsonNode? loadBalancers)
        => loadBalancers is JsonArray entries
            ? entries.Select(e => e as JsonObject)
                .Where(e => e?["targetGroupArn"] is not null && e["containerName"] is not null && e["containerPort"] is not null)
                .Select(e => new Binding(
                    e!["targetGroupArn"]!.GetValue<string>(), e["containerName"]!.GetValue<string>(), e["containerPort"]!.GetValue<int>(),
                    e["advancedConfiguration"]?["alternateTargetGroupArn"]?.GetValue<string>(),
                    e["advancedConfiguration"]?["productionListenerRule"]?.GetValue<string>(),
                    e["advancedConfiguration"]?["testListenerRule"]?.GetValue<string>()))
                .ToList()
            : [];

    /// <summary>The group of <paramref name="binding"/> that <paramref name="task"/>'s target belongs in: the alternate one when its deployment's slot says so.</summary>
    public static string GroupFor(ServiceRecord service, Binding binding, TaskRecord task)
    {
        if (binding.AlternateTargetGroupArn is not { } alternate) return binding.TargetGroupArn;
        var deployment = service.Deployments.FirstOrDefault(d => d.Id == task.StartedBy) ?? service.DeploymentHistory.FirstOrDefault(d => d.Id == task.StartedBy);
        return deployment?.Lifecycle?.AlternateSlot == true ? alternate : binding.TargetGroupArn;
    }

    /// <summary>At most this many target groups per service, as ECS allows.</summary>
    public const int MaxTargetGroupsPerService = 5;

    /// <summary>
    /// Checks a service's <c>loadBalancers</c> against the task definition it runs, with ECS's errors: at most five,
    /// each naming a target group, a container of the definition and a port that container maps.
    /// </summary>
    public static void Validate(JsonNode? loadBalancers, TaskDefinitions.TaskDefinitionRecord definition)
    {
        if (loadBalancers is not JsonArray entries) return;
        if (entries.Count > MaxTargetGroupsPerService)
            throw new Api.InvalidParameterException($"A service can be attached to at most {MaxTargetGroupsPerService} target groups.");
        foreach (var entry in entries.OfType<JsonObject>())
        {
            if (entry["targetGroupArn"] is null)
                throw new Api.InvalidParameterException("targetGroupArn must be specified for a service behind an application load balancer.");
            var name = entry["containerName"]?.GetValue<string>() ?? throw new Api.InvalidParameterException("containerName must be specified for a load balancer.");
            var port = entry["containerPort"]?.GetValue<int>() ?? throw new Api.InvalidParameterException("containerPort must be specified for a load balancer.");
            var container = definition.ContainerDefinitions.FirstOrDefault(c => c["name"]?.GetValue<string>() == name)
                ?? throw new Api.InvalidParameterException($"The container {name} does not exist in the task definition.");
            if (container["portMappings"] is not JsonArray mappings || !mappings.Any(m => m?["containerPort"]?.GetValue<int>() == port))
                throw new Api.InvalidParameterException($"The container {name} did not have a container port {port} defined.");
        }
    }

    /// <summary>
    /// The target a task is in its groups: an <c>awsvpc</c> task by its own address and the container port (an
    /// <c>ip</c> target), any other by its container instance and the host port Docker mapped (an <c>instance</c> one).
    /// Null until the task has that address or port.
    /// </summary>
    /// <summary>
    /// ECS's check that each target group's target type fits the definition's network mode: an <c>awsvpc</c> task is
    /// an <c>ip</c> target, a <c>bridge</c> or <c>host</c> one an <c>instance</c> target. Groups not found are left to the
    /// reconcile, which skips them.
    /// </summary>
    public async Task CheckTargetTypesAsync(JsonNode? loadBalancers, TaskDefinitions.TaskDefinitionRecord definition, CancellationToken cancellationToken)
    {
        var mode = definition.NetworkMode;
        var wanted = mode == TaskDefinitions.TaskDefinitionDefaults.AwsVpc ? "ip" : "instance";
        foreach (var groupArn in Of(loadBalancers).SelectMany(b => b.Groups).Distinct())
        {
            if (await GroupAsync(groupArn, cancellationToken) is not { } group) continue;
            var type = group.Doc["TargetType"]?.GetValue<string>() ?? "instance";
            if (type != wanted)
                throw new Api.InvalidParameterException(
                    $"The provided target group {groupArn} has target type {type}, which is incompatible with the {mode} network mode specified in the task definition.");
        }
    }

    private static (string Id, int Port)? TargetOf(TaskRecord task, Binding binding)
    {
        if (task.Attachment is { } attachment)
            return attachment.PrivateIpv4Address is { Length: > 0 } ip && task.Containers.Any(c => c.Name == binding.ContainerName)
                ? (ip, binding.ContainerPort)
                : null;
        return task.Containers.FirstOrDefault(c => c.Name == binding.ContainerName)?.NetworkBindings
            .FirstOrDefault(n => n.ContainerPort == binding.ContainerPort) is { HostPort: > 0 } port
            ? (task.ContainerInstanceId, port.HostPort)
            : null;
    }

    /// <summary>The target group row behind an ARN, or null when it is gone (the service keeps running without it).</summary>
    private async Task<ElbRow?> GroupAsync(string arn, CancellationToken cancellationToken)
    {
        if (Arn.Parse(arn) is not { ResourceType: "targetgroup", Path: [var name, _] }) return null;
        var row = await store.GetAsync($"tg|{name}", cancellationToken);
        return row?.Doc["TargetGroupArn"]?.GetValue<string>() == arn ? row : null;
    }

    /// <summary>
    /// Where the balancer reaches an <c>instance</c> target of <paramref name="task"/>: its container instance's host
    /// address (null for an <c>ip</c> target, whose id is its address, and for an instance that reported none).
    /// One read per instance per call, and only for targets about to be registered.
    /// </summary>
    private async Task<string?> AddressAsync(TaskRecord task, Dictionary<string, string?> known, CancellationToken cancellationToken)
    {
        if (task.Attachment is not null) return null;
        if (!known.TryGetValue(task.ContainerInstanceId, out var address))
        {
            address = (await instances.FindAsync(task.Cluster, task.ContainerInstanceId, cancellationToken))?.HostAddress;
            known[task.ContainerInstanceId] = address;
        }
        return address;
    }

    /// <summary>
    /// Registers the service's serving tasks that are not registered yet (an <c>instance</c> target with its container
    /// instance's host address) and deregisters (drains) the targets of its tasks that stopped or are to stop.
    /// Idempotent: what is already so is left alone.
    /// </summary>
    public async Task SyncAsync(ServiceRecord service, IReadOnlyList<TaskRecord> tasks, bool hasHealthCheck, CancellationToken cancellationToken)
    {
        var addresses = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var binding in Of(service))
        foreach (var groupArn in binding.Groups)
        {
            if (await GroupAsync(groupArn, cancellationToken) is not { } group) continue;
            var groupId = group.Doc[ElbDocs.Id]!.GetValue<string>();
            var registered = (await store.ListTargetsAsync(groupId, cancellationToken)).ToDictionary(t => TargetRow.Key(t.Id, t.Port));
            var now = time.GetUtcNow();
            var changes = new List<TargetRow>();
            foreach (var task in tasks)
            {
                if (TargetOf(task, binding) is not var (id, port)) continue;
                var row = registered.GetValueOrDefault(TargetRow.Key(id, port));
                var serving = task is { LastStatus: EcsTaskStatus.Running, DesiredStatus: EcsTaskStatus.Running }
                              && (task.HealthStatus == HealthStatus.Healthy || (!hasHealthCheck && task.HealthStatus != HealthStatus.Unhealthy));
                if (serving && row is null && GroupFor(service, binding, task) == groupArn)
                {
                    var address = await AddressAsync(task, addresses, cancellationToken);
                    changes.Add(new TargetRow(groupId, id, port, null, now, null, null, null, null, new ServiceKey(service.Cluster, service.Name).ToString(), wake.Endpoint, address));
                    logger.LogInformation("Service {Service} registers task {TaskId} as {Target}:{Port} (at {Address}) in {TargetGroupArn}", service.Name, task.Id, id, port, address ?? id, groupArn);
                }
                else if (!serving && task.DesiredStatus != EcsTaskStatus.Running && row is { DrainingSince: null })
                {
                    changes.Add(row with { DrainingSince = now });
                    logger.LogInformation("Service {Service} deregisters task {TaskId} ({Target}:{Port}) from {TargetGroupArn}", service.Name, task.Id, id, port, groupArn);
                }
            }
            if (changes.Count > 0) await store.SaveTargetsAsync(groupId, changes, cancellationToken);
        }
    }

    /// <summary>
    /// What the target groups say of a service's tasks. <c>Healthy</c>: the tasks whose target is healthy (and not
    /// draining) in the group each of the service's entries puts it in, what a rollout counts as healthy behind a load
    /// balancer. <c>Unhealthy</c>: the tasks whose target a group reports <c>unhealthy</c>, with that group's ARN (the
    /// first such group), which the scheduler replaces once the grace period is over. Null when the service has no load balancer.
    /// </summary>
    public async Task<TargetHealthView?> HealthAsync(ServiceRecord service, IReadOnlyList<TaskRecord> tasks, CancellationToken cancellationToken)
    {
        var bindings = Of(service);
        if (bindings.Count == 0) return null;
        var live = tasks.Where(t => !t.IsStopped).ToList();
        var healthy = live.Select(t => t.Id).ToHashSet(StringComparer.Ordinal);
        var unhealthy = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var binding in bindings)
        foreach (var groupArn in binding.Groups)
        {
            var mine = live.Where(t => GroupFor(service, binding, t) == groupArn).ToList();
            if (mine.Count == 0) continue;
            var rows = await GroupAsync(groupArn, cancellationToken) is { } group
                ? (await store.ListTargetsAsync(group.Doc[ElbDocs.Id]!.GetValue<string>(), cancellationToken)).ToDictionary(t => TargetRow.Key(t.Id, t.Port))
                : [];
            foreach (var task in mine)
            {
                var row = TargetOf(task, binding) is var (id, port) ? rows.GetValueOrDefault(TargetRow.Key(id, port)) : null;
                if (row is not { DrainingSince: null, Health: "healthy" }) healthy.Remove(task.Id);
                if (row is { Health: "unhealthy" }) unhealthy.TryAdd(task.Id, groupArn);
            }
        }
        return new TargetHealthView(healthy, unhealthy);
    }

    /// <summary>
    /// Deregisters <paramref name="task"/> from every group of the service and returns when its draining ends:
    /// the scheduler sends Stop only after it, as ECS's DEACTIVATING does. Null when it has no registered target;
    /// <c>Began</c> when this call started the draining (not an earlier one).
    /// </summary>
    public async Task<(DateTimeOffset? Until, bool Began)> DrainAsync(ServiceRecord service, TaskRecord task, CancellationToken cancellationToken)
    {
        DateTimeOffset? until = null;
        var began = false;
        foreach (var binding in Of(service))
        foreach (var groupArn in binding.Groups)
        {
            if (TargetOf(task, binding) is not var (id, port)) continue;
            if (await GroupAsync(groupArn, cancellationToken) is not { } group) continue;
            var groupId = group.Doc[ElbDocs.Id]!.GetValue<string>();
            var row = (await store.ListTargetsAsync(groupId, cancellationToken)).FirstOrDefault(t => t.Id == id && t.Port == port);
            if (row is null) continue;
            var since = row.DrainingSince ?? time.GetUtcNow();
            if (row.DrainingSince is null)
            {
                await store.SaveTargetsAsync(groupId, [row with { DrainingSince = since }], cancellationToken);
                began = true;
                logger.LogInformation("Service {Service} drains task {TaskId} ({Target}:{Port}) in {TargetGroupArn}", service.Name, task.Id, id, port, groupArn);
            }
            var end = since.AddSeconds(ElbRules.DeregistrationDelaySeconds(group.Doc));
            until = until is null || end > until ? end : until;
        }
        return (until, began);
    }
}

/// <summary>What a service's target groups report of its tasks (<see cref="ServiceTargets.HealthAsync"/>).</summary>
public sealed record TargetHealthView(IReadOnlySet<string> Healthy, IReadOnlyDictionary<string, string> Unhealthy);
