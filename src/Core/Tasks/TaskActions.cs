using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Capacity;
using Serverless.Core.Clusters;
using Serverless.Core.ContainerInstances;
using Serverless.Core.LoadBalancing;
using Serverless.Core.Reconciliation;
using Serverless.Core.Scheduling;
using Serverless.Core.Services;
using Serverless.Core.Tags;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Tasks;

/// <summary>RunTask, StartTask, StopTask, DescribeTasks, ListTasks.</summary>
public sealed class TaskActions(
    ClusterStore clusters,
    ContainerInstanceStore instances,
    TaskDefinitionStore definitions,
    TaskStore tasks,
    TaskLauncher launcher,
    ClientTokens clientTokens,
    TaskJson json,
    Arns arns,
    TimeProvider time,
    ServiceStore services,
    ReconcileQueue reconcile,
    ILogger<TaskActions> logger,
    ServiceTargets? targets = null) : IActionSource
{
    public void MapActions(ActionRegistry registry)
    {
        registry.Map("RunTask", RunTaskAsync);
        registry.Map("StartTask", StartTaskAsync);
        registry.Map("StopTask", StopTaskAsync);
        registry.Map("DescribeTasks", DescribeTasksAsync);
        registry.Map("ListTasks", ListTasksAsync);
    }

    private async Task<JsonObject> RunTaskAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        var count = request.Int("count") ?? 1;
        if (count is < 1 or > 10) throw new InvalidParameterException("count must be between 1 and 10.");
        var token = request.String("clientToken");
        ClientTokens.Validate(token);

        // The cluster (its capacity providers and default strategy), its instances, the task
        // definition and the clientToken's claim are read side by side; a missing cluster is the
        // error, whatever else is wrong, and any error of the request comes before the token's.
        // The cluster row from a view shared by the launches of the last few seconds (no read per call).
        var row = clusters.GetActiveSharedAsync(cluster, cancellationToken);
        // Placement's shared view of the instances (a few seconds old at most), not a read of every row per call.
        var hosts = instances.ListForPlacementAsync(cluster, fresh: false, cancellationToken);
        var definition = LaunchRequestAsync(cluster, request, count, row, cancellationToken);
        // clientToken: claimed (an insert) before anything is placed, so a retry, or a duplicate
        // running alongside, waits for this call's answer and places nothing.
        var claiming = clientTokens.ClaimAsync(cluster, "RunTask", token, request, cancellationToken);
        try
        {
            await Task.WhenAll(row, hosts, definition, claiming);
        }
        catch
        {
            // All have finished; which error the client gets is decided below.
        }
        LaunchRequest launch;
        IReadOnlyList<ContainerInstanceRecord> listed;
        bool cached;
        try
        {
            await row;
            launch = await definition;
            (listed, cached) = await hosts;
            // A capacity provider strategy's tasks wait for their pools instead (PROVISIONING).
            if (launch.Pool is null && launch.CapacityProviderStrategy.Count == 0 && CapacityPools.Eligible(listed, null).Count == 0 && cached)
                (listed, cached) = await instances.ListForPlacementAsync(cluster, fresh: true, cancellationToken);
            if (launch.Pool is null && launch.CapacityProviderStrategy.Count == 0 && CapacityPools.Eligible(listed, null).Count == 0)
                throw new InvalidParameterException(TaskLauncher.NoInstancesMessage);
        }
        catch
        {
            // The request is refused: a claim taken meanwhile goes, so that the token's retry runs again.
            if (claiming.IsCompletedSuccessfully && claiming.Result is { Answer: null } taken) await clientTokens.ReleaseAsync(taken);
            throw;
        }
        var claim = await claiming;
        if (claim?.Answer is { } recorded) return recorded;   // the token's recorded answer
        if (claim is { TookOver: true } && await ResumeAsync(claim, launch, token!, cancellationToken) is { } resumed) return resumed;

        LaunchResult placed;
        try
        {
            placed = await PlaceAsync(launch with { ClientToken = token }, listed, cached, cancellationToken);
        }
        catch
        {
            if (claim is not null) await clientTokens.ReleaseAsync(claim);
            throw;
        }
        // From here on the client going away changes nothing: what was placed is started, never left
        // holding reservations with no Start sent (a crash is left to TaskDeliverySweep). The Starts
        // leave beside the answer's record, not after it: a run that dies between the two leaves a
        // claim with no answer, and the retry that takes it over finds these tasks by their token
        // (ResumeAsync) instead of placing again.
        var starting = launcher.StartAsync(placed, CancellationToken.None);
        if (claim is not null)
        {
            try
            {
                await clientTokens.RecordAsync(claim, Response(placed));
            }
            catch (Exception e)
            {
                // Placed and started, not answered: a retry waits for the claim to go stale, then resumes.
                logger.LogWarning(e, "RunTask's answer for clientToken {ClientToken} could not be recorded; a retry finds its tasks", token);
            }
        }
        return Response(await starting);
    }

    /// <summary>
    /// A RunTask retried after its first run died with the token claimed and no answer recorded: the
    /// tasks that run placed (found by the token on their rows, each held by its instance's
    /// reservation or waiting for capacity) are the answer, and their Starts go again (a worker that
    /// has one already takes the second as a duplicate). A row its run inserted without winning the
    /// reservation is nobody's: TaskDeliverySweep stops it. Null when the run placed none: this run
    /// places them.
    /// </summary>
    private async Task<JsonObject?> ResumeAsync(ClientTokens.Claim claim, LaunchRequest launch, string token, CancellationToken cancellationToken)
    {
        var found = await tasks.ListForClientTokenAsync(launch.Cluster, launch.Group, token, cancellationToken);
        var hosts = (await Task.WhenAll(found.Where(t => !t.IsWaitingForCapacity).Select(t => t.ContainerInstanceId).Distinct()
            .Select(id => instances.FindAsync(launch.Cluster, id, cancellationToken)))).OfType<ContainerInstanceRecord>().ToDictionary(h => h.Id);
        var placed = found.Where(t => t.IsWaitingForCapacity || (hosts.TryGetValue(t.ContainerInstanceId, out var host) && host.HoldsReservationFor(t.Id))).ToList();
        if (placed.Count == 0) return null;
        logger.LogInformation("RunTask with clientToken {ClientToken} resumes the {Count} task(s) of a run that died before answering", token, placed.Count);
        var pending = placed.Where(t => !t.IsStopped && t.LastStatus == EcsTaskStatus.Pending).ToList();
        var started = (await launcher.StartAsync(new LaunchResult(pending, []), CancellationToken.None)).Tasks.ToDictionary(t => t.Id);
        var answer = Response(new LaunchResult([.. placed.Select(t => started.GetValueOrDefault(t.Id) ?? t)], []));
        await clientTokens.RecordAsync(claim, answer);
        return answer;
    }

    private async Task<JsonObject> StartTaskAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = (await clusters.GetActiveAsync(arns.ClusterName(request.String("cluster")), cancellationToken)).Name;
        var named = request.Strings("containerInstances").Select(i => InstanceId(cluster, i)).ToList();
        if (named.Count is < 1 or > 10) throw new InvalidParameterException("containerInstances must name between 1 and 10 container instances.");
        var launch = await LaunchRequestAsync(cluster, request, named.Count, null, cancellationToken) with { OnInstances = named };
        // All placed before any Start leaves: a call that fails part way leaves nothing behind for its retry to duplicate.
        return Response(await launcher.StartAsync(await launcher.PlaceAsync(launch, known: null, cancellationToken), CancellationToken.None));
    }

    private async Task<JsonObject> StopTaskAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = (await clusters.GetActiveAsync(arns.ClusterName(request.String("cluster")), cancellationToken)).Name;
        var taskId = TaskId(cluster, request.String("task")!);
        var reason = request.String("reason") is { Length: > 0 } given ? given : "Task stopped by user";
        var now = time.GetUtcNow();
        // Read once: the draining decision and the first attempt of the stop both use this row.
        var task = await tasks.FindAsync(cluster, taskId, cancellationToken) ?? throw new InvalidParameterException("The referenced task was not found.");
        var drainingUntil = await DrainAsync(task, now, cancellationToken);
        var stopped = await tasks.UpdateAsync(cluster, taskId, t => t.RequestStop("UserInitiated", reason, now, drainingUntil), cancellationToken, known: task)
            ?? throw new InvalidParameterException("The referenced task was not found.");

        if (stopped.ServiceName is { } service && drainingUntil is not null)
            // ECS's DEACTIVATING: the service's reconcile starts a replacement now and sends Stop once the draining ends.
            await reconcile.EnqueueAsync(new ServiceKey(cluster, service), null, cancellationToken);
        // Sent even when the task was already stopping: a repeated StopTask re-delivers a lost command.
        else if (!stopped.IsStopped && (stopped.DrainingUntil is null || stopped.StopSentAt is not null)) await launcher.SendStopAsync(stopped, cancellationToken);
        return new JsonObject { ["task"] = json.ToJson(stopped, includeTags: false) };
    }

    /// <summary>
    /// For a running task of a service behind a load balancer: deregisters its targets (they drain for their
    /// groups' deregistration delay) and returns when the draining ends, before which no Stop is sent, as ECS's
    /// DEACTIVATING. Null when nothing drains (a standalone task, no load balancer, no target, already stopping).
    /// </summary>
    private async Task<DateTimeOffset?> DrainAsync(TaskRecord task, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (targets is null || task is not { DesiredStatus: EcsTaskStatus.Running, ServiceName: { } name }) return null;
        if (await services.FindAsync(task.Cluster, name, cancellationToken) is not { } service || ServiceTargets.Of(service).Count == 0) return null;
        return await targets.DrainAsync(service, task, cancellationToken) is ({ } until, _) && until > now ? until : null;
    }

    private async Task<JsonObject> DescribeTasksAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        // The list is checked before the cluster, as in DescribeContainerInstances.
        var names = request.Strings("tasks").ToList().AtMost(ListLimits.DescribeTasks, "taskIds");
        if (names.Count == 0) throw new InvalidParameterException("Tasks cannot be empty.");
        var cluster = arns.ClusterName(request.String("cluster"));
        var includeTags = request.Strings("include").Contains("TAGS");

        var ids = names.Select(n => TryTaskId(cluster, n)).ToList();
        var found = await clusters.ReadInActiveAsync(cluster, tasks.FindManyAsync(cluster, ids.OfType<string>(), cancellationToken), cancellationToken);
        var described = new JsonArray();
        var failures = new JsonArray();
        for (var i = 0; i < names.Count; i++)
        {
            if (ids[i] is { } id && found.GetValueOrDefault(id) is { } task) described.Add(json.ToJson(task, includeTags));
            else failures.Add(new JsonObject { ["arn"] = names[i].StartsWith("arn:", StringComparison.Ordinal) ? names[i] : arns.Task(cluster, names[i]), ["reason"] = "MISSING" });
        }
        return new JsonObject { ["tasks"] = described, ["failures"] = failures };
    }

    private async Task<JsonObject> ListTasksAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        var launchType = request.String("launchType");
        var filter = new TaskFilter(
            Group: request.String("serviceName") is { } service ? $"service:{arns.ResourcePath(service, "service")?[^1] ?? service}" : null,
            Family: request.String("family"),
            StartedBy: request.String("startedBy"),
            ContainerInstanceId: request.String("containerInstance") is { } instance ? InstanceId(cluster, instance) : null,
            DesiredStatus: request.String("desiredStatus") ?? EcsTaskStatus.Running,
            LaunchType: launchType);
        var (page, more) = await clusters.ReadInActiveAsync(
            cluster, tasks.ListKeysAsync(cluster, filter, Paging.MaxResults(request), Paging.AfterKey(request), cancellationToken), cancellationToken);
        var response = new JsonObject { ["taskArns"] = page.Select(t => arns.Task(t.Cluster, t.Id)).ToJsonArray() };
        Paging.AddNextToken(response, more, page.Count > 0 ? TaskStore.PageKey(page[^1]) : null);
        return response;
    }

    /// <summary>
    /// Places the tasks of a RunTask: all on one pool, or spread over its capacity provider strategy
    /// (one placement per provider); the tasks of every part make one answer.
    /// </summary>
    private async Task<LaunchResult> PlaceAsync(LaunchRequest launch, IReadOnlyList<ContainerInstanceRecord> hosts, bool cached, CancellationToken cancellationToken)
    {
        if (launch.CapacityProviderStrategy.Count == 0) return await launcher.PlaceAsync(launch, hosts, cached, cancellationToken);
        var parts = CapacityProviderStrategy.Distribute(launch.CapacityProviderStrategy, launch.Count).GroupBy(p => p).ToList();
        var results = new List<LaunchResult>();
        try
        {
            foreach (var part in parts)
                results.Add(await launcher.PlaceAsync(launch with { Count = part.Count(), CapacityProviderName = part.Key }, hosts, cached, cancellationToken));
        }
        catch
        {
            foreach (var placed in results) await launcher.AbandonAsync(placed, CancellationToken.None);
            throw;
        }
        return new LaunchResult([.. results.SelectMany(r => r.Tasks)], [.. results.SelectMany(r => r.Failures)]);
    }

    private async Task<LaunchRequest> LaunchRequestAsync(string cluster, JsonObject request, int count, Task<ClusterRecord>? row, CancellationToken cancellationToken)
    {
        var definition = await ResolveDefinitionAsync(request.String("taskDefinition")!, cancellationToken);
        // StartTask names its instances: the EC2 launch type, nothing else.
        var target = row is null ? new LaunchTarget(LaunchTargets.Ec2, [], null) : LaunchTargets.Resolve(request, await row, definition);
        var overrides = request["overrides"]?.DeepClone().AsObject();
        CheckOverrides(overrides);
        if (TaskSizing.UnknownOverrideNames(definition, overrides).FirstOrDefault() is { } unknown)
            throw new InvalidParameterException($"Override for container named {unknown} is not a container in the TaskDefinition.");
        var network = AwsVpcConfiguration.Check(definition, request["networkConfiguration"], target.IsFargate);
        var startedBy = request.String("startedBy");
        if (startedBy is { Length: > 36 }) throw new InvalidParameterException("startedBy may not be more than 36 characters.");
        if (request.String("group") is { Length: > MaxGroupLength })
            throw new InvalidParameterException($"Group name must be at most {MaxGroupLength} characters.");

        var constraints = request["placementConstraints"] as JsonArray ?? [];
        var strategies = PlacementStrategies.Parse(request["placementStrategy"] as JsonArray, Placement.RunTaskDefault);
        return new LaunchRequest
        {
            Cluster = cluster,
            Definition = definition,
            Count = count,
            Group = request.String("group") ?? $"family:{definition.Family}",
            Overrides = overrides,
            StartedBy = startedBy,
            Tags = Tag.FromRequest(request),
            Network = network,
            LaunchType = target.LaunchType,
            PlatformVersion = target.PlatformVersion,
            CapacityProviderStrategy = target.Strategy,
            Strategies = strategies,
            DistinctInstance = PlacementStrategies.HasDistinctInstance(constraints),
            MemberOf = PlacementStrategies.MemberOf(constraints),
            MemberOfExpressions = PlacementStrategies.MemberOfExpressions(constraints),
        };
    }

    /// <summary>ECS: "A total of 8192 characters are allowed for overrides. This limit includes the JSON formatting characters."</summary>
    public const int MaxContainerOverridesLength = 8192;

    /// <summary>A task group is a name like a family's (<c>family:</c>, <c>service:</c> plus up to 255 characters).</summary>
    public const int MaxGroupLength = 255;

    // Overrides travel with the task row and its Start command, so their size is ECS's limit, not ours;
    // and one container cannot take two overrides.
    private static void CheckOverrides(JsonObject? overrides)
    {
        if (overrides is null) return;
        if (overrides.ToJsonString(AwsJson.Options).Length > MaxContainerOverridesLength)
            throw new InvalidParameterException($"Container Overrides length must be at most {MaxContainerOverridesLength}");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in TaskOverrides.ContainerNames(overrides))
        {
            if (!names.Add(name))
                throw new InvalidParameterException($"Container overrides contain more than one override for container named {name}.");
        }
    }

    private async Task<TaskDefinitionRecord> ResolveDefinitionAsync(string reference, CancellationToken cancellationToken)
    {
        var definition = await definitions.FindByReferenceAsync(reference, cancellationToken)
            ?? throw new ClientException("Unable to find task definition.");
        if (definition.Status != TaskDefinitionRecord.Active) throw new ClientException("TaskDefinition is inactive");
        return definition;
    }

    private JsonObject Response(LaunchResult result) => new()
    {
        ["tasks"] = result.Tasks.Select(t => (JsonNode?)json.ToJson(t, includeTags: true)).ToJsonArray(),
        ["failures"] = result.Failures.Select(f =>
        {
            var failure = new JsonObject { ["reason"] = f.Reason };
            if (f.Arn is not null) failure["arn"] = f.Arn;
            if (f.Detail is not null) failure["detail"] = f.Detail;
            return (JsonNode?)failure;
        }).ToJsonArray(),
    };

    private string? TryTaskId(string cluster, string nameOrArn)
    {
        if (!Arn.IsArn(nameOrArn)) return TaskIds.IsValid(nameOrArn) ? nameOrArn : null;
        // Long format task/<cluster>/<id>; the old short format task/<id> names the default scope.
        return arns.ResourcePath(nameOrArn, "task") switch
        {
            [var owner, var id] when owner == cluster && TaskIds.IsValid(id) => id,
            [var id] when TaskIds.IsValid(id) => id,
            _ => null,
        };
    }

    private string TaskId(string cluster, string nameOrArn)
        => TryTaskId(cluster, nameOrArn) ?? throw new InvalidParameterException("The referenced task was not found.");

    private string InstanceId(string cluster, string nameOrArn)
        => Arns.LastSegment(arns.ResourcePart(nameOrArn, "container-instance") ?? nameOrArn);
}
