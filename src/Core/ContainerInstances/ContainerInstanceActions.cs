using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.Reconciliation;
using Serverless.Core.Scheduling;
using Serverless.Core.Tags;

namespace Serverless.Core.ContainerInstances;

/// <summary>
/// RegisterContainerInstance, DeregisterContainerInstance, DescribeContainerInstances,
/// ListContainerInstances, UpdateContainerInstancesState, and the attribute actions PutAttributes,
/// DeleteAttributes and ListAttributes (whose only target type is a container instance): parse the
/// request, call the store, shape the answer as ECS's <c>ContainerInstance</c>.
/// </summary>
public sealed partial class ContainerInstanceActions(
    ContainerInstanceStore store,
    ClusterStore clusters,
    ServiceResync resync,
    Arns arns,
    EcsOptions options,
    TimeProvider time,
    ILogger<ContainerInstanceActions> logger) : IActionSource
{
    public const string TargetType = "container-instance";
    public const int MaxStateUpdates = 10;
    public const int MaxAttributesPerCall = 10;
    public const int MaxCustomAttributes = 10;

    public const string FoundRunningTasks = "Found running tasks on the instance.";

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("RegisterContainerInstance", RegisterAsync);
        registry.Map("DeregisterContainerInstance", DeregisterAsync);
        registry.Map("DescribeContainerInstances", DescribeAsync);
        registry.Map("ListContainerInstances", ListAsync);
        registry.Map("UpdateContainerInstancesState", UpdateStateAsync);
        registry.Map("PutAttributes", PutAttributesAsync);
        registry.Map("DeleteAttributes", DeleteAttributesAsync);
        registry.Map("ListAttributes", ListAttributesAsync);
    }

    [GeneratedRegex(@"^[a-zA-Z0-9_\-./\\]{1,128}$")]
    private static partial Regex AttributeName();

    [GeneratedRegex(@"^[a-zA-Z0-9_\-.@/\\: ]{1,128}$")]
    private static partial Regex AttributeValue();

    /// <summary>
    /// The worker's (ECS agent's) registration. Without <c>containerInstanceArn</c> it is a new
    /// instance with a fresh id; with one, a re-registration of that instance (a restarted
    /// worker), which keeps its reservations — refused, as ECS refuses it, once the instance has
    /// been deregistered. An ARN naming an id this cluster has never seen registers under that id,
    /// so a worker keeps its identity across a control plane that lost its tables.
    /// </summary>
    private async Task<JsonObject> RegisterAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        await clusters.GetActiveAsync(cluster, cancellationToken);

        var document = ParseIdentityDocument(request.String("instanceIdentityDocument"));
        var resources = ParseResources(request["totalResources"] as JsonArray);
        var attributes = ReadAttributes(request["attributes"] as JsonArray);
        var tags = Tag.FromRequest(request);

        string id;
        if (request.String("containerInstanceArn") is { Length: > 0 } arn)
        {
            id = InstanceId(cluster, arn)
                ?? throw new InvalidParameterException($"The containerInstanceArn {arn} is not a container instance of cluster {cluster}.");
            if (await store.FindAsync(cluster, id, cancellationToken) is { Status: ContainerInstanceRecord.Inactive })
                throw new ClientException($"Container instance {id} is inactive.");
        }
        else
        {
            id = ContainerInstanceStore.NewId();
        }

        var versionInfo = request["versionInfo"] as JsonObject;
        var wanted = new ContainerInstanceRecord
        {
            Cluster = cluster,
            Id = id,
            Ec2InstanceId = document.String("instanceId") is { Length: > 0 } instanceId ? instanceId : id,
            RegisteredCpu = resources.Cpu,
            RegisteredMemory = resources.Memory,
            RegisteredTcpPorts = resources.TcpPorts ?? ContainerInstanceRecord.EcsReservedPorts,
            RegisteredUdpPorts = resources.UdpPorts ?? [],
            Attributes = WithEcsAttributes(attributes, document),
            Tags = tags,
            AgentVersion = versionInfo?.String("agentVersion"),
            AgentHash = versionInfo?.String("agentHash"),
            DockerVersion = versionInfo?.String("dockerVersion"),
        };
        var registered = await store.RegisterAsync(wanted, cancellationToken);
        logger.LogInformation("Registered {ContainerInstanceArn} ({Ec2InstanceId}, version {Version}) with {Cpu} cpu and {Memory} MiB",
            arns.ContainerInstance(cluster, id), registered.Ec2InstanceId, registered.Version, registered.RegisteredCpu, registered.RegisteredMemory);
        // New capacity: DAEMON services start a task on it, waiting services can place.
        await resync.ResyncClusterAsync(cluster, cancellationToken, newCapacity: true);
        return new JsonObject { ["containerInstance"] = ToJson(registered, includeTags: true, includeHealth: false) };
    }

    /// <summary>
    /// Moves the instance to INACTIVE. Without <c>force</c>, ECS refuses while tasks remain on it
    /// (a reservation, or tasks its worker reports). With <c>force</c>, the tasks are orphaned: the
    /// next <see cref="InstanceHealthSweep"/> records them STOPPED, sends each a Stop,
    /// releases their reservations and tells their services, which start replacements elsewhere.
    /// Deregistering an INACTIVE instance answers it unchanged.
    /// </summary>
    private async Task<JsonObject> DeregisterAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        await clusters.GetActiveAsync(cluster, cancellationToken);
        var given = request.String("containerInstance")!;
        var id = InstanceId(cluster, given);
        var existing = id is null ? null : await store.FindAsync(cluster, id, cancellationToken);
        if (existing is null) throw NotFound(cluster, given);
        if (existing.Status == ContainerInstanceRecord.Inactive)
            return new JsonObject { ["containerInstance"] = ToJson(existing, includeTags: true, includeHealth: false) };

        var force = request.Bool("force") ?? false;
        var deregistered = await store.UpdateAsync(cluster, existing.Id, instance =>
        {
            if (!force && HasTasks(instance)) throw new InvalidParameterException(FoundRunningTasks);
            return instance with { Status = ContainerInstanceRecord.Inactive };
        }, cancellationToken);
        logger.LogInformation("Deregistered {ContainerInstanceArn} (force: {Force}, {Reservations} task reservation(s) left)",
            arns.ContainerInstance(cluster, deregistered.Id), force, deregistered.Reservations.Count);
        await resync.ResyncClusterAsync(cluster, cancellationToken);
        return new JsonObject { ["containerInstance"] = ToJson(deregistered, includeTags: true, includeHealth: false) };
    }

    private async Task<JsonObject> DescribeAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        // The list is checked before the cluster, as in DescribeTasks and as ECS checks parameters.
        var given = request.Strings("containerInstances").ToList().AtMost(ListLimits.DescribeContainerInstances, "instanceIds");
        if (given.Count == 0) throw new InvalidParameterException("Container instance cannot be empty.");
        var cluster = arns.ClusterName(request.String("cluster"));
        await clusters.GetActiveAsync(cluster, cancellationToken);

        var include = request.Strings("include").ToHashSet(StringComparer.Ordinal);
        var found = await Task.WhenAll(given.Select(g => InstanceId(cluster, g) is { } id
            ? store.FindAsync(cluster, id, cancellationToken)
            : Task.FromResult<ContainerInstanceRecord?>(null)));

        var described = new JsonArray();
        var failures = new JsonArray();
        for (var i = 0; i < given.Count; i++)
        {
            if (found[i] is { IsFargateHost: false } instance)
                described.Add(ToJson(instance, include.Contains("TAGS"), include.Contains("CONTAINER_INSTANCE_HEALTH")));
            else
                failures.Add(Failure(FailureArn(cluster, given[i]), "MISSING"));
        }
        return new JsonObject { ["containerInstances"] = described, ["failures"] = failures };
    }

    /// <summary>
    /// The cluster's instances in id order, by <c>status</c> (all but INACTIVE when absent) and the
    /// cluster query language <c>filter</c>, evaluated in memory over the cluster's partition.
    /// </summary>
    private async Task<JsonObject> ListAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        var query = request.String("filter") is { } filter ? ClusterQuery.Parse(filter) : null;
        var status = request.String("status");
        var take = Paging.MaxResults(request);
        var after = Paging.AfterKey(request);
        await clusters.GetActiveAsync(cluster, cancellationToken);

        var now = time.GetUtcNow();
        var timeout = AgentTimeout;
        var matching = (await store.ListAsync(cluster, cancellationToken))
            .Where(i => !i.IsFargateHost) // Fargate hides its hosts
            .Where(i => status is null ? i.Status != ContainerInstanceRecord.Inactive : i.Status == status)
            .Where(i => after is null || string.CompareOrdinal(i.Id, after) > 0)
            .Where(i => query is null || query.Matches(QueryTarget.From(i, now, timeout)))
            .OrderBy(i => i.Id, StringComparer.Ordinal)
            .Take(take + 1)
            .ToList();

        var page = matching.Take(take).ToList();
        var response = new JsonObject { ["containerInstanceArns"] = page.Select(i => arns.ContainerInstance(cluster, i.Id)).ToJsonArray() };
        Paging.AddNextToken(response, matching.Count > take, page.LastOrDefault()?.Id);
        return response;
    }

    /// <summary>
    /// ACTIVE or DRAINING, each instance judged on its own: a missing one is a <c>MISSING</c>
    /// failure, an INACTIVE one an <c>INACTIVE</c> failure (only ACTIVE and DRAINING instances change
    /// state); one already in the wanted status is returned unchanged. What DRAINING does to the
    /// tasks on the instance is the reconciler's business; here only the status changes.
    /// </summary>
    private async Task<JsonObject> UpdateStateAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        var status = request.String("status")!;
        if (status is not (ContainerInstanceRecord.Active or ContainerInstanceRecord.Draining))
            throw new InvalidParameterException("Container instances can only be updated to ACTIVE or DRAINING.");
        var given = request.Strings("containerInstances").ToList();
        if (given.Count == 0) throw new InvalidParameterException("The list of container instances must not be empty.");
        if (given.Count > MaxStateUpdates) throw new InvalidParameterException($"At most {MaxStateUpdates} container instances can be updated at once.");
        await clusters.GetActiveAsync(cluster, cancellationToken);

        var updated = new JsonArray();
        var failures = new JsonArray();
        var changedCount = 0;
        foreach (var name in given)
        {
            var id = InstanceId(cluster, name);
            var existing = id is null ? null : await store.FindAsync(cluster, id, cancellationToken);
            if (existing is null)
            {
                failures.Add(Failure(FailureArn(cluster, name), "MISSING"));
                continue;
            }
            if (existing.Status == status)
            {
                updated.Add(ToJson(existing, includeTags: false, includeHealth: false));
                continue;
            }
            try
            {
                var changed = await store.UpdateAsync(cluster, existing.Id, instance => instance.Status == ContainerInstanceRecord.Inactive
                    ? throw new NotChangeableException()
                    : instance with { Status = status, StatusReason = null }, cancellationToken);
                updated.Add(ToJson(changed, includeTags: false, includeHealth: false));
                changedCount++;
                logger.LogInformation("Set {ContainerInstanceArn} to {Status}", arns.ContainerInstance(cluster, changed.Id), status);
            }
            catch (NotChangeableException)
            {
                failures.Add(Failure(arns.ContainerInstance(cluster, existing.Id), ContainerInstanceRecord.Inactive,
                    "Only an ACTIVE or DRAINING container instance can change state."));
            }
        }
        // Draining moves service tasks elsewhere and a returning instance takes tasks again: every
        // service of the cluster looks now, not at the next resync.
        if (changedCount > 0) await resync.ResyncClusterAsync(cluster, cancellationToken);
        return new JsonObject { ["containerInstances"] = updated, ["failures"] = failures };
    }

    /// <summary>
    /// Creates or replaces custom attributes, up to 10 per call and 10 per instance
    /// (<c>AttributeLimitExceededException</c> beyond). Names in ECS's own <c>ecs.</c> namespace
    /// are the agent's and the control plane's, not the caller's. Every target is checked before
    /// anything is written; each instance is then one conditional write.
    /// </summary>
    private async Task<JsonObject> PutAttributesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        var targeted = await ResolveTargetsAsync(cluster, (JsonArray)request["attributes"]!, cancellationToken);

        foreach (var group in targeted.GroupBy(t => t.InstanceId))
        {
            var added = group.Select(t => t.Attribute).ToList();
            await store.UpdateAsync(cluster, group.Key, instance =>
            {
                var merged = instance.Attributes.ToList();
                foreach (var attribute in added)
                {
                    var index = merged.FindIndex(a => a.Name == attribute.Name);
                    if (index >= 0) merged[index] = attribute; else merged.Add(attribute);
                }
                if (merged.Count(a => IsCustom(a.Name)) > MaxCustomAttributes)
                    throw new AttributeLimitExceededException($"A container instance can have at most {MaxCustomAttributes} custom attributes.");
                return instance with { Attributes = merged };
            }, cancellationToken);
        }
        return new JsonObject { ["attributes"] = targeted.Select(t => (JsonNode?)t.Echo).ToJsonArray() };
    }

    /// <summary>Removes custom attributes by name (a value, if given, is ignored); removing one that is not there is harmless.</summary>
    private async Task<JsonObject> DeleteAttributesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        var targeted = await ResolveTargetsAsync(cluster, (JsonArray)request["attributes"]!, cancellationToken);

        foreach (var group in targeted.GroupBy(t => t.InstanceId))
        {
            var names = group.Select(t => t.Attribute.Name).ToHashSet(StringComparer.Ordinal);
            await store.UpdateAsync(cluster, group.Key,
                instance => instance with { Attributes = instance.Attributes.Where(a => !names.Contains(a.Name)).ToList() },
                cancellationToken);
        }
        return new JsonObject { ["attributes"] = targeted.Select(t => (JsonNode?)t.Echo).ToJsonArray() };
    }

    /// <summary>
    /// One entry per attribute per registered instance of the cluster (the <c>ecs.*</c> ones
    /// included), in instance id then name order, optionally only those with
    /// <c>attributeName</c> (and <c>attributeValue</c>).
    /// </summary>
    private async Task<JsonObject> ListAttributesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var cluster = arns.ClusterName(request.String("cluster"));
        var name = request.String("attributeName");
        var value = request.String("attributeValue");
        if (value is not null && name is null)
            throw new InvalidParameterException("attributeValue can only be used together with attributeName.");
        var take = Paging.MaxResults(request);
        var after = Paging.AfterKey(request) is { } token ? ParseAttributeKey(token) : default;
        await clusters.GetActiveAsync(cluster, cancellationToken);

        var matching = (await store.ListAsync(cluster, cancellationToken))
            .Where(i => i.Status != ContainerInstanceRecord.Inactive)
            .SelectMany(i => i.Attributes.Select(a => (i.Id, Attribute: a)))
            .Where(e => (name is null || e.Attribute.Name == name) && (value is null || e.Attribute.Value == value))
            .OrderBy(e => e.Id, StringComparer.Ordinal)
            .ThenBy(e => e.Attribute.Name, StringComparer.Ordinal)
            .Where(e => after.Id is null || CompareKeys((e.Id, e.Attribute.Name), after) > 0)
            .Take(take + 1)
            .ToList();

        var page = matching.Take(take).ToList();
        var response = new JsonObject
        {
            ["attributes"] = page.Select(e => (JsonNode?)AttributeJson(e.Attribute, arns.ContainerInstance(cluster, e.Id))).ToJsonArray(),
        };
        Paging.AddNextToken(response, matching.Count > take, page.Count > 0 ? $"{page[^1].Id}/{page[^1].Attribute.Name}" : null);
        return response;
    }

    private static (string? Id, string? Name) ParseAttributeKey(string key)
    {
        var slash = key.IndexOf('/');
        if (slash <= 0) throw new InvalidParameterException("Invalid nextToken.");
        return (key[..slash], key[(slash + 1)..]);
    }

    private static int CompareKeys((string Id, string Name) key, (string? Id, string? Name) after)
    {
        var byId = string.CompareOrdinal(key.Id, after.Id);
        return byId != 0 ? byId : string.CompareOrdinal(key.Name, after.Name);
    }

    /// <summary>One attribute of a Put/DeleteAttributes call, with the instance it names and the entry to answer with.</summary>
    private sealed record TargetedAttribute(string InstanceId, InstanceAttribute Attribute, JsonObject Echo);

    /// <summary>
    /// Validates a Put/DeleteAttributes list (1 to 10 entries, valid names and values, a target
    /// named by ARN or by id with <c>targetType</c>) and checks that each target is a registered
    /// instance of the cluster (else <c>TargetNotFoundException</c>), before anything is written.
    /// </summary>
    private async Task<List<TargetedAttribute>> ResolveTargetsAsync(string cluster, JsonArray attributes, CancellationToken cancellationToken)
    {
        if (attributes.Count == 0) throw new InvalidParameterException("At least one attribute must be given.");
        if (attributes.Count > MaxAttributesPerCall)
            throw new InvalidParameterException($"At most {MaxAttributesPerCall} attributes can be given in one call.");
        await clusters.GetActiveAsync(cluster, cancellationToken);

        var parsed = new List<(JsonObject Item, InstanceAttribute Attribute, string TargetId)>();
        foreach (var item in attributes.Select(a => (JsonObject)a!))
        {
            var attribute = ParseAttribute(item);
            if (!IsCustom(attribute.Name))
                throw new InvalidParameterException($"Attribute {attribute.Name} is reserved for Amazon ECS and cannot be changed.");
            var targetId = item.String("targetId") is { Length: > 0 } target
                ? target
                : throw new InvalidParameterException($"Attribute {attribute.Name} needs a targetId.");
            if (!targetId.StartsWith("arn:", StringComparison.Ordinal) && item.String("targetType") is null)
                throw new InvalidParameterException($"targetType is required when targetId {targetId} is not an ARN.");
            parsed.Add((item, attribute, targetId));
        }

        var targets = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var targetId in parsed.Select(p => p.TargetId).Distinct(StringComparer.Ordinal))
        {
            var id = InstanceId(cluster, targetId);
            var instance = id is null ? null : await store.FindAsync(cluster, id, cancellationToken);
            if (instance is null || instance.Status == ContainerInstanceRecord.Inactive)
                throw new TargetNotFoundException($"Could not find container instance {targetId} in cluster {cluster}. " +
                    "You can view your available container instances with ListContainerInstances.");
            targets[targetId] = instance.Id;
        }

        return parsed.Select(p =>
        {
            var echo = new JsonObject { ["name"] = p.Attribute.Name };
            if (p.Attribute.Value is not null) echo["value"] = p.Attribute.Value;
            echo["targetType"] = TargetType;
            echo["targetId"] = p.TargetId;
            return new TargetedAttribute(targets[p.TargetId], p.Attribute, echo);
        }).ToList();
    }

    private static IReadOnlyList<InstanceAttribute> ReadAttributes(JsonArray? attributes)
    {
        var result = new List<InstanceAttribute>();
        foreach (var item in attributes ?? [])
        {
            var attribute = ParseAttribute((JsonObject)item!);
            var index = result.FindIndex(a => a.Name == attribute.Name);
            if (index >= 0) result[index] = attribute; else result.Add(attribute);
        }
        return result;
    }

    /// <summary>ECS's attribute rules: a name of 1-128 letters, numbers, <c>-_./\</c>; an optional value of 1-128 characters that also allows <c>@:</c> and inner spaces.</summary>
    private static InstanceAttribute ParseAttribute(JsonObject item)
    {
        var name = item.String("name")!;
        if (!AttributeName().IsMatch(name))
            throw new InvalidParameterException($"Attribute name {name} is invalid: use 1 to 128 letters, numbers, hyphens, underscores, periods, forward or back slashes.");
        var value = item.String("value");
        if (value is not null && (!AttributeValue().IsMatch(value) || value.StartsWith(' ') || value.EndsWith(' ')))
            throw new InvalidParameterException($"The value of attribute {name} is invalid: use 1 to 128 letters, numbers, hyphens, underscores, periods, at signs, " +
                "forward or back slashes, colons or spaces, not starting or ending with a space.");
        return new InstanceAttribute(name, value);
    }

    /// <summary>Custom attributes are the caller's; <c>ecs.*</c> (and the agent's legacy <c>com.amazonaws.ecs.*</c>) are ECS's own.</summary>
    private static bool IsCustom(string name)
        => !name.StartsWith("ecs.", StringComparison.Ordinal) && !name.StartsWith("com.amazonaws.ecs.", StringComparison.Ordinal);

    /// <summary>
    /// The attributes ECS adds itself at registration, from the instance identity document, unless
    /// the agent reported them: <c>ecs.os-type</c> (a worker here always runs Linux containers),
    /// <c>ecs.os-family</c>, <c>ecs.availability-zone</c>, <c>ecs.instance-type</c>,
    /// <c>ecs.ami-id</c>, <c>ecs.cpu-architecture</c>.
    /// </summary>
    private static IReadOnlyList<InstanceAttribute> WithEcsAttributes(IReadOnlyList<InstanceAttribute> reported, JsonObject document)
    {
        var result = reported.ToList();
        void Add(string name, string? value)
        {
            if (value is { Length: > 0 } && result.All(a => a.Name != name)) result.Add(new InstanceAttribute(name, value));
        }
        Add("ecs.os-type", "linux");
        Add("ecs.os-family", "LINUX");
        Add("ecs.availability-zone", document.String("availabilityZone"));
        Add("ecs.instance-type", document.String("instanceType"));
        Add("ecs.ami-id", document.String("imageId"));
        Add("ecs.cpu-architecture", document.String("architecture"));
        return result;
    }

    /// <summary>The instance identity document (JSON, as EC2's metadata service serves it); only its string members are read.</summary>
    private static JsonObject ParseIdentityDocument(string? document)
    {
        if (string.IsNullOrWhiteSpace(document)) return [];
        try
        {
            if (JsonNode.Parse(document) is not JsonObject parsed) throw new InvalidParameterException("The instance identity document must be a JSON object.");
            var strings = new JsonObject();
            foreach (var (name, value) in parsed)
            {
                if (value is JsonValue v && v.GetValueKind() == JsonValueKind.String) strings[name] = v.GetValue<string>();
            }
            return strings;
        }
        catch (JsonException)
        {
            throw new InvalidParameterException("The instance identity document is not valid JSON.");
        }
    }

    private sealed record Resources(int Cpu, int Memory, IReadOnlyList<int>? TcpPorts, IReadOnlyList<int>? UdpPorts);

    /// <summary>
    /// <c>totalResources</c> as the agent reports it: CPU (units) and MEMORY (MiB) as numbers,
    /// PORTS and PORTS_UDP as string sets of host ports the host keeps for itself. Other resources
    /// (GPUs, custom ones) are not scheduled here and are ignored.
    /// </summary>
    private static Resources ParseResources(JsonArray? resources)
    {
        int? cpu = null, memory = null;
        IReadOnlyList<int>? tcp = null, udp = null;
        foreach (var item in (resources ?? []).Select(r => (JsonObject)r!))
        {
            switch (item.String("name"))
            {
                case "CPU": cpu = Amount(item, "CPU"); break;
                case "MEMORY": memory = Amount(item, "MEMORY"); break;
                case "PORTS": tcp = Ports(item, "PORTS"); break;
                case "PORTS_UDP": udp = Ports(item, "PORTS_UDP"); break;
            }
        }
        if (cpu is null || memory is null)
            throw new InvalidParameterException("totalResources must include CPU and MEMORY.");
        return new Resources(cpu.Value, memory.Value, tcp, udp);
    }

    private static int Amount(JsonObject resource, string name)
    {
        double? value = resource["integerValue"]?.GetValue<int>()
            ?? (double?)resource["longValue"]?.GetValue<long>()
            ?? resource["doubleValue"]?.GetValue<double>();
        if (value is not { } amount || amount < 0 || amount > int.MaxValue)
            throw new InvalidParameterException($"Resource {name} needs a non-negative integerValue.");
        return (int)amount;
    }

    private static IReadOnlyList<int> Ports(JsonObject resource, string name)
    {
        var ports = new List<int>();
        foreach (var text in resource.Strings("stringSetValue"))
        {
            if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
                throw new InvalidParameterException($"Resource {name} lists '{text}', which is not a port number.");
            if (!ports.Contains(port)) ports.Add(port);
        }
        return ports;
    }

    /// <summary>
    /// The instance id named by <paramref name="nameOrArn"/> (an id, or a container instance ARN of
    /// this region and account in <paramref name="cluster"/>); null when it names nothing here.
    /// The old ARN format without the cluster (<c>container-instance/id</c>) is read in <paramref name="cluster"/>.
    /// </summary>
    private string? InstanceId(string cluster, string nameOrArn)
    {
        // Another region's or account's ARN names nothing here.
        var part = Arn.IsArn(nameOrArn) ? arns.ParseOwn(nameOrArn, "container-instance")?.ResourceId : nameOrArn;
        if (part is null) return null;
        var slash = part.IndexOf('/');
        if (slash >= 0 && part[..slash] != cluster) return null;
        var id = slash >= 0 ? part[(slash + 1)..] : part;
        return ContainerInstanceStore.IsId(id) ? id : null;
    }

    private string FailureArn(string cluster, string given)
        => given.StartsWith("arn:", StringComparison.Ordinal) ? given : arns.ContainerInstance(cluster, given);

    private InvalidParameterException NotFound(string cluster, string given)
        => new($"The referenced container instance {FailureArn(cluster, given)} was not found.");

    private static bool HasTasks(ContainerInstanceRecord instance)
        => instance.Reservations.Count > 0 || instance.RunningTasksCount + instance.PendingTasksCount > 0;

    private TimeSpan AgentTimeout => TimeSpan.FromSeconds(options.AgentDisconnectedAfterSeconds);

    private static JsonObject Failure(string arn, string reason, string? detail = null)
    {
        var failure = new JsonObject { ["arn"] = arn, ["reason"] = reason };
        if (detail is not null) failure["detail"] = detail;
        return failure;
    }

    private static JsonObject AttributeJson(InstanceAttribute attribute, string? targetArn = null)
    {
        var json = new JsonObject { ["name"] = attribute.Name };
        if (attribute.Value is not null) json["value"] = attribute.Value;
        if (targetArn is not null)
        {
            json["targetType"] = TargetType;
            json["targetId"] = targetArn;
        }
        return json;
    }

    /// <summary>
    /// ECS's <c>ContainerInstance</c>. Resources come as ECS shows them: CPU and MEMORY as integers
    /// (registered, and what reservations leave), PORTS and PORTS_UDP as string sets of host
    /// ports (registered: the ports the host keeps; remaining: those plus every port a task holds —
    /// the ports in use, despite the name). <c>agentConnected</c> is a heartbeat within
    /// <see cref="EcsOptions.AgentDisconnectedAfterSeconds"/>.
    /// </summary>
    private JsonObject ToJson(ContainerInstanceRecord instance, bool includeTags, bool includeHealth)
    {
        var now = time.GetUtcNow();
        var connected = instance.Status != ContainerInstanceRecord.Inactive && instance.IsAgentConnected(now, AgentTimeout);
        var versionInfo = new JsonObject();
        if (instance.AgentVersion is not null) versionInfo["agentVersion"] = instance.AgentVersion;
        if (instance.AgentHash is not null) versionInfo["agentHash"] = instance.AgentHash;
        if (instance.DockerVersion is not null) versionInfo["dockerVersion"] = instance.DockerVersion;

        var json = new JsonObject
        {
            ["containerInstanceArn"] = arns.ContainerInstance(instance.Cluster, instance.Id),
            ["ec2InstanceId"] = instance.Ec2InstanceId,
            ["version"] = instance.Version,
            ["versionInfo"] = versionInfo,
            ["remainingResources"] = new JsonArray(
                IntegerResource("CPU", instance.RemainingCpu),
                IntegerResource("MEMORY", instance.RemainingMemory),
                PortsResource("PORTS", instance.UsedTcpPorts),
                PortsResource("PORTS_UDP", instance.UsedUdpPorts)),
            ["registeredResources"] = new JsonArray(
                IntegerResource("CPU", instance.RegisteredCpu),
                IntegerResource("MEMORY", instance.RegisteredMemory),
                PortsResource("PORTS", instance.RegisteredTcpPorts),
                PortsResource("PORTS_UDP", instance.RegisteredUdpPorts)),
            ["status"] = instance.Status,
        };
        if (instance.StatusReason is not null) json["statusReason"] = instance.StatusReason;
        json["agentConnected"] = connected;
        json["runningTasksCount"] = instance.CountedRunningTasks;
        json["pendingTasksCount"] = instance.CountedPendingTasks;
        json["attributes"] = instance.Attributes.Select(a => (JsonNode?)AttributeJson(a)).ToJsonArray();
        json["registeredAt"] = AwsJson.Timestamp(instance.RegisteredAt);
        json["attachments"] = new JsonArray();
        if (includeTags) json["tags"] = Tag.ToJson(instance.Tags);
        if (includeHealth)
        {
            // The worker's heartbeat is the only health signal there is: OK while it arrives.
            var state = connected ? "OK" : "INSUFFICIENT_DATA";
            json["healthStatus"] = new JsonObject
            {
                ["overallStatus"] = state,
                ["details"] = new JsonArray(new JsonObject
                {
                    ["type"] = "CONTAINER_RUNTIME",
                    ["status"] = state,
                    ["lastUpdated"] = AwsJson.Timestamp(instance.LastHeartbeat),
                }),
            };
        }
        if (instance.CapacityProviderName is { } provider) json["capacityProviderName"] = provider;
        return json;
    }

    private static JsonObject IntegerResource(string name, int value) => new()
    {
        ["name"] = name,
        ["type"] = "INTEGER",
        ["doubleValue"] = 0.0,
        ["longValue"] = 0,
        ["integerValue"] = value,
    };

    private static JsonObject PortsResource(string name, IEnumerable<int> ports) => new()
    {
        ["name"] = name,
        ["type"] = "STRINGSET",
        ["doubleValue"] = 0.0,
        ["longValue"] = 0,
        ["integerValue"] = 0,
        ["stringSetValue"] = ports.Distinct().Select(p => p.ToString(CultureInfo.InvariantCulture)).ToJsonArray(),
    };

    /// <summary>A state change met an INACTIVE instance (possibly deregistered while we looked).</summary>
    private sealed class NotChangeableException : Exception;
}
