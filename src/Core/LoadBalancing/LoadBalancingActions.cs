using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ETag = Azure.ETag;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;

namespace Serverless.Core.LoadBalancing;

/// <summary>
/// The ELBv2 API (application load balancers over HTTP): load balancers, target groups and their
/// attributes, listeners, rules, targets and tags, with the model's shapes, AWS's defaults and errors.
/// Every change commits in one transaction of the configuration partition with a new version, which is
/// how the data plane learns of it.
/// </summary>
public sealed class LoadBalancingActions(LoadBalancingStore store, ElbArns arns, TimeProvider time, ILogger<LoadBalancingActions> logger) : IActionSource
{
    /// <summary>The ELBv2 signing name, under which its actions are registered.</summary>
    public const string Prefix = "elasticloadbalancing";

    public void MapActions(ActionRegistry registry)
    {
        void Map(string action, ActionHandler handler) => registry.Map(action, handler, Prefix);
        Map("CreateLoadBalancer", CreateLoadBalancerAsync);
        Map("DescribeLoadBalancers", DescribeLoadBalancersAsync);
        Map("DeleteLoadBalancer", DeleteLoadBalancerAsync);
        Map("CreateTargetGroup", CreateTargetGroupAsync);
        Map("DescribeTargetGroups", DescribeTargetGroupsAsync);
        Map("ModifyTargetGroup", ModifyTargetGroupAsync);
        Map("DeleteTargetGroup", DeleteTargetGroupAsync);
        Map("DescribeTargetGroupAttributes", DescribeTargetGroupAttributesAsync);
        Map("ModifyTargetGroupAttributes", ModifyTargetGroupAttributesAsync);
        Map("CreateListener", CreateListenerAsync);
        Map("DescribeListeners", DescribeListenersAsync);
        Map("ModifyListener", ModifyListenerAsync);
        Map("DeleteListener", DeleteListenerAsync);
        Map("CreateRule", CreateRuleAsync);
        Map("DescribeRules", DescribeRulesAsync);
        Map("ModifyRule", ModifyRuleAsync);
        Map("DeleteRule", DeleteRuleAsync);
        Map("SetRulePriorities", SetRulePrioritiesAsync);
        Map("RegisterTargets", RegisterTargetsAsync);
        Map("DeregisterTargets", DeregisterTargetsAsync);
        Map("DescribeTargetHealth", DescribeTargetHealthAsync);
        Map("AddTags", AddTagsAsync);
        Map("RemoveTags", RemoveTagsAsync);
        Map("DescribeTags", DescribeTagsAsync);
    }

    private static string LbKey(string name) => $"lb|{name}";
    private static string TgKey(string name) => $"tg|{name}";
    private static string ListenerKey(string id) => $"listener|{id}";
    private static string PortKey(int port) => $"port|{port:D5}";
    private static string RuleKey(string listenerId, string id) => $"rule|{listenerId}|{id}";
    private static string PriorityKey(string listenerId, string priority) => $"priority|{listenerId}|{priority}";

    private static TableTransactionAction Add(TableEntity entity) => new(TableTransactionActionType.Add, entity);
    private static TableTransactionAction Replace(ElbRow row) => new(TableTransactionActionType.UpdateReplace, LoadBalancingStore.ToEntity(row.RowKey, row.Doc, row.Tags), row.ETag);
    private static TableTransactionAction Delete(string rowKey, ETag etag) => new(TableTransactionActionType.Delete, new TableEntity(LoadBalancingStore.ConfigPartition, rowKey), etag);

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static JsonObject Public(JsonObject doc)
    {
        var copy = doc.DeepClone().AsObject();
        foreach (var key in copy.Select(p => p.Key).Where(k => k.StartsWith('_')).ToList()) copy.Remove(key);
        return copy;
    }

    private static List<string> Strings(JsonNode? node) => node?.AsArray().Select(n => n!.GetValue<string>()).ToList() ?? [];

    /// <summary>Runs a transaction, naming a lost reservation or a changed row in AWS's words.</summary>
    private async Task CommitAsync(IReadOnlyList<TableTransactionAction> actions, Func<int, Exception?> explain, CancellationToken cancellationToken)
    {
        try
        {
            await store.CommitAsync(actions, cancellationToken);
        }
        catch (TableTransactionFailedException e) when (e.FailedTransactionActionIndex is { } index && index < actions.Count)
        {
            if (explain(index) is { } error) throw error;
            throw new ConcurrentUpdateException(actions[index].Entity.RowKey);
        }
    }

    // ---- load balancers ----

    private async Task<JsonObject> CreateLoadBalancerAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request["Name"]!.GetValue<string>();
        ElbRules.CheckName(name, "Load balancer");
        var type = request["Type"]?.GetValue<string>() ?? "application";
        if (type != "application")
            throw ElbException.InvalidConfiguration($"Load balancer type '{type}' is not supported here; only 'application' load balancers are");
        var scheme = request["Scheme"]?.GetValue<string>() ?? "internet-facing";
        var tags = CheckTags(request["Tags"]?.AsArray() ?? []);

        var existing = await store.GetAsync(LbKey(name), cancellationToken);
        if (existing is not null)
        {
            // ELBv2 answers a repeated create with the same settings with the existing load balancer.
            if (existing.Doc["Scheme"]?.GetValue<string>() == scheme) return new JsonObject { ["LoadBalancers"] = new JsonArray(Public(existing.Doc)) };
            throw new ElbException("DuplicateLoadBalancerName", $"A load balancer with the same name '{name}' exists, but with different settings");
        }

        var id = ElbArns.NewId();
        var doc = new JsonObject
        {
            ["LoadBalancerArn"] = arns.LoadBalancer(name, id),
            // *.localhost resolves to loopback, where the data plane serves every listener.
            ["DNSName"] = $"{name}-{id}.elb.localhost",
            ["CanonicalHostedZoneId"] = "Z35SXDOTRQ7X7K",
            ["CreatedTime"] = Iso(time.GetUtcNow()),
            ["LoadBalancerName"] = name,
            ["Scheme"] = scheme,
            ["VpcId"] = "vpc-local",
            ["State"] = new JsonObject { ["Code"] = "active" },
            ["Type"] = "application",
            ["AvailabilityZones"] = new JsonArray(),
            ["SecurityGroups"] = request["SecurityGroups"]?.DeepClone() ?? new JsonArray(),
            ["IpAddressType"] = request["IpAddressType"]?.GetValue<string>() ?? "ipv4",
            [ElbDocs.Id] = id,
        };
        await CommitAsync([Add(LoadBalancingStore.ToEntity(LbKey(name), doc, tags))],
            _ => new ElbException("DuplicateLoadBalancerName", $"A load balancer with the same name '{name}' exists, but with different settings"), cancellationToken);
        logger.LogInformation("Created load balancer {LoadBalancerArn}", doc["LoadBalancerArn"]!.GetValue<string>());
        return new JsonObject { ["LoadBalancers"] = new JsonArray(Public(doc)) };
    }

    private async Task<JsonObject> DescribeLoadBalancersAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var byArn = Strings(request["LoadBalancerArns"]);
        var byName = Strings(request["Names"]);
        if (byArn.Count > 0 && byName.Count > 0) throw ElbException.Validation("Load balancer names and load balancer ARNs cannot be specified at the same time");
        List<ElbRow> rows;
        if (byArn.Count > 0 || byName.Count > 0)
        {
            rows = [];
            foreach (var arn in byArn) rows.Add(await FindLoadBalancerAsync(arn, cancellationToken) ?? throw ElbException.LoadBalancerNotFound($"Load balancers '[{arn}]' not found"));
            foreach (var name in byName) rows.Add(await store.GetAsync(LbKey(name), cancellationToken) ?? throw ElbException.LoadBalancerNotFound($"Load balancers '[{name}]' not found"));
        }
        else rows = await store.ListAsync("lb|", cancellationToken);
        return Page("LoadBalancers", rows.Select(r => Public(r.Doc)).ToList(), request);
    }

    private async Task<ElbRow?> FindLoadBalancerAsync(string arn, CancellationToken cancellationToken)
    {
        if (arns.Parse(arn) is not ("loadbalancer", var parts)) throw ElbException.Validation($"'{arn}' is not a valid load balancer ARN");
        var row = await store.GetAsync(LbKey(parts[0]), cancellationToken);
        return row?.Doc["LoadBalancerArn"]?.GetValue<string>() == arn ? row : null;
    }

    private async Task<JsonObject> DeleteLoadBalancerAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var arn = request["LoadBalancerArn"]!.GetValue<string>();
        var lb = await FindLoadBalancerAsync(arn, cancellationToken);
        // Deleting a load balancer that is gone succeeds, as in ELBv2; its listeners and rules go with it.
        if (lb is null) return [];
        var listeners = (await store.ListAsync("listener|", cancellationToken)).Where(l => l.Doc["LoadBalancerArn"]?.GetValue<string>() == arn).ToList();
        var actions = new List<TableTransactionAction>();
        foreach (var listener in listeners) actions.AddRange(await ListenerDeletionAsync(listener, cancellationToken));
        actions.Add(Delete(lb.RowKey, lb.ETag));
        foreach (var chunk in Chunk(actions)) await CommitAsync(chunk, _ => null, cancellationToken);
        logger.LogInformation("Deleted load balancer {LoadBalancerArn}", arn);
        return [];
    }

    // A transaction holds 100 operations with the version row; a very large load balancer takes several.
    private static IEnumerable<List<TableTransactionAction>> Chunk(List<TableTransactionAction> actions)
        => actions.Chunk(99).Select(c => c.ToList());

    // ---- target groups ----

    private async Task<JsonObject> CreateTargetGroupAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request["Name"]!.GetValue<string>();
        ElbRules.CheckName(name, "Target group");
        var targetType = request["TargetType"]?.GetValue<string>() ?? "instance";
        if (targetType is not ("instance" or "ip"))
            throw ElbException.Validation($"Target type '{targetType}' is not supported here; use 'instance' or 'ip'");
        var protocol = request["Protocol"]?.GetValue<string>() ?? throw ElbException.Validation("A protocol must be specified");
        if (protocol != "HTTP") throw ElbException.Validation($"Protocol '{protocol}' is not supported here; target groups of application load balancers here are HTTP");
        var port = request["Port"]?.GetValue<int>() ?? throw ElbException.Validation("A port must be specified");
        var tags = CheckTags(request["Tags"]?.AsArray() ?? []);

        var id = ElbArns.NewId();
        var doc = new JsonObject
        {
            ["TargetGroupArn"] = arns.TargetGroup(name, id),
            ["TargetGroupName"] = name,
            ["Protocol"] = protocol,
            ["Port"] = port,
            ["VpcId"] = request["VpcId"]?.GetValue<string>() ?? "vpc-local",
        };
        ElbRules.ApplyHealthCheck(doc, request, creating: true);
        doc["TargetType"] = targetType;
        doc["ProtocolVersion"] = request["ProtocolVersion"]?.GetValue<string>() ?? "HTTP1";
        if (doc["ProtocolVersion"]!.GetValue<string>() != "HTTP1") throw ElbException.Validation("Protocol version must be HTTP1 here");
        doc["IpAddressType"] = request["IpAddressType"]?.GetValue<string>() ?? "ipv4";
        doc[ElbDocs.Id] = id;
        doc[ElbDocs.Attributes] = ElbRules.DefaultAttributes();

        var existing = await store.GetAsync(TgKey(name), cancellationToken);
        if (existing is not null)
        {
            // Same name and same settings is the same target group, as in ELBv2.
            if (Same(existing.Doc, doc, "Protocol", "Port", "TargetType")) return new JsonObject { ["TargetGroups"] = new JsonArray(await DescribeGroupAsync(existing.Doc, cancellationToken)) };
            throw new ElbException("DuplicateTargetGroupName", $"A target group with the same name '{name}' exists, but with different settings");
        }
        await CommitAsync([Add(LoadBalancingStore.ToEntity(TgKey(name), doc, tags))],
            _ => new ElbException("DuplicateTargetGroupName", $"A target group with the same name '{name}' exists, but with different settings"), cancellationToken);
        var output = Public(doc);
        output["LoadBalancerArns"] = new JsonArray();
        return new JsonObject { ["TargetGroups"] = new JsonArray(output) };
    }

    private static bool Same(JsonObject a, JsonObject b, params string[] members)
        => members.All(m => JsonNode.DeepEquals(a[m], b[m]));

    private async Task<ElbRow?> FindTargetGroupAsync(string arn, CancellationToken cancellationToken)
    {
        if (arns.Parse(arn) is not ("targetgroup", var parts)) throw ElbException.Validation($"'{arn}' is not a valid target group ARN");
        var row = await store.GetAsync(TgKey(parts[0]), cancellationToken);
        return row?.Doc["TargetGroupArn"]?.GetValue<string>() == arn ? row : null;
    }

    private async Task<ElbRow> GetTargetGroupAsync(string arn, CancellationToken cancellationToken)
        => await FindTargetGroupAsync(arn, cancellationToken) ?? throw ElbException.TargetGroupNotFound($"Target groups '{arn}' not found");

    /// <summary>Target group ARN to the load balancers whose listeners or rules forward to it.</summary>
    private async Task<Dictionary<string, SortedSet<string>>> UsageAsync(CancellationToken cancellationToken)
    {
        var usage = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach (var rule in await store.ListAsync("rule|", cancellationToken))
        {
            var lb = rule.Doc[ElbDocs.LoadBalancerArn]!.GetValue<string>();
            foreach (var tg in Strings(rule.Doc[ElbDocs.TargetGroupArns]))
            {
                if (!usage.TryGetValue(tg, out var set)) usage[tg] = set = new SortedSet<string>(StringComparer.Ordinal);
                set.Add(lb);
            }
        }
        return usage;
    }

    private async Task<JsonObject> DescribeGroupAsync(JsonObject doc, CancellationToken cancellationToken)
    {
        var usage = await UsageAsync(cancellationToken);
        return WithUsage(doc, usage);
    }

    private static JsonObject WithUsage(JsonObject doc, Dictionary<string, SortedSet<string>> usage)
    {
        var output = Public(doc);
        output["LoadBalancerArns"] = new JsonArray([.. (usage.GetValueOrDefault(doc["TargetGroupArn"]!.GetValue<string>()) ?? []).Select(a => JsonValue.Create(a))]);
        return output;
    }

    private async Task<JsonObject> DescribeTargetGroupsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var byArn = Strings(request["TargetGroupArns"]);
        var byName = Strings(request["Names"]);
        var lbArn = request["LoadBalancerArn"]?.GetValue<string>();
        if ((byArn.Count > 0 ? 1 : 0) + (byName.Count > 0 ? 1 : 0) + (lbArn is null ? 0 : 1) > 1)
            throw ElbException.Validation("Only one of load balancer ARN, target group ARNs or names can be specified");
        var usage = await UsageAsync(cancellationToken);
        List<ElbRow> rows;
        if (byArn.Count > 0 || byName.Count > 0)
        {
            rows = [];
            foreach (var arn in byArn) rows.Add(await GetTargetGroupAsync(arn, cancellationToken));
            foreach (var name in byName) rows.Add(await store.GetAsync(TgKey(name), cancellationToken) ?? throw ElbException.TargetGroupNotFound($"Target groups '[{name}]' not found"));
        }
        else
        {
            rows = await store.ListAsync("tg|", cancellationToken);
            if (lbArn is not null)
            {
                _ = await FindLoadBalancerAsync(lbArn, cancellationToken) ?? throw ElbException.LoadBalancerNotFound($"Load balancer '{lbArn}' not found");
                rows = rows.Where(r => usage.GetValueOrDefault(r.Doc["TargetGroupArn"]!.GetValue<string>())?.Contains(lbArn) == true).ToList();
            }
        }
        return Page("TargetGroups", rows.Select(r => WithUsage(r.Doc, usage)).ToList(), request);
    }

    private async Task<JsonObject> ModifyTargetGroupAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var row = await GetTargetGroupAsync(request["TargetGroupArn"]!.GetValue<string>(), cancellationToken);
        ElbRules.ApplyHealthCheck(row.Doc, request, creating: false);
        await CommitAsync([Replace(row)], _ => null, cancellationToken);
        return new JsonObject { ["TargetGroups"] = new JsonArray(await DescribeGroupAsync(row.Doc, cancellationToken)) };
    }

    private async Task<JsonObject> DeleteTargetGroupAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var arn = request["TargetGroupArn"]!.GetValue<string>();
        var row = await FindTargetGroupAsync(arn, cancellationToken);
        if (row is null) return [];
        if ((await UsageAsync(cancellationToken)).TryGetValue(arn, out var lbs))
            throw new ElbException("ResourceInUse", $"Target group '{arn}' is currently in use by a listener or a rule of '{lbs.First()}'");
        await CommitAsync([Delete(row.RowKey, row.ETag)], _ => null, cancellationToken);
        await store.DeleteTargetGroupTargetsAsync(row.Doc[ElbDocs.Id]!.GetValue<string>(), cancellationToken);
        logger.LogInformation("Deleted target group {TargetGroupArn}", arn);
        return [];
    }

    private async Task<JsonObject> DescribeTargetGroupAttributesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var row = await GetTargetGroupAsync(request["TargetGroupArn"]!.GetValue<string>(), cancellationToken);
        return new JsonObject { ["Attributes"] = AttributeList(row.Doc) };
    }

    private static JsonArray AttributeList(JsonObject doc)
        => new([.. doc[ElbDocs.Attributes]!.AsObject().Select(p => (JsonNode)new JsonObject { ["Key"] = p.Key, ["Value"] = p.Value!.GetValue<string>() })]);

    private async Task<JsonObject> ModifyTargetGroupAttributesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var row = await GetTargetGroupAsync(request["TargetGroupArn"]!.GetValue<string>(), cancellationToken);
        var attributes = row.Doc[ElbDocs.Attributes]!.AsObject();
        foreach (var attribute in request["Attributes"]!.AsArray())
        {
            var key = attribute!["Key"]?.GetValue<string>() ?? throw ElbException.Validation("An attribute key must be specified");
            var value = attribute["Value"]?.GetValue<string>() ?? throw ElbException.Validation($"A value must be specified for attribute '{key}'");
            ElbRules.CheckAttribute(key, value);
            attributes[key] = value;
        }
        await CommitAsync([Replace(row)], _ => null, cancellationToken);
        return new JsonObject { ["Attributes"] = AttributeList(row.Doc) };
    }

    // ---- listeners ----

    /// <summary>
    /// Checks actions and resolves the target groups they forward to: each must exist and may serve only
    /// this one load balancer (an application target group belongs to one load balancer).
    /// </summary>
    private async Task<(JsonArray Actions, List<string> TargetGroups)> ResolveActionsAsync(JsonArray actions, string lbArn, CancellationToken cancellationToken)
    {
        var (normalized, groups) = ElbRules.NormalizeActions(actions);
        if (groups.Count == 0) return (normalized, groups);
        var usage = await UsageAsync(cancellationToken);
        foreach (var arn in groups)
        {
            _ = await GetTargetGroupAsync(arn, cancellationToken);
            if (usage.TryGetValue(arn, out var lbs) && lbs.Any(l => l != lbArn))
                throw new ElbException("TargetGroupAssociationLimit", $"The following target groups cannot be associated with more than one load balancer: {arn}");
        }
        return (normalized, groups);
    }

    private async Task<JsonObject> CreateListenerAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var lbArn = request["LoadBalancerArn"]!.GetValue<string>();
        var lb = await FindLoadBalancerAsync(lbArn, cancellationToken) ?? throw ElbException.LoadBalancerNotFound($"Load balancer '{lbArn}' not found");
        var protocol = request["Protocol"]?.GetValue<string>() ?? "HTTP";
        if (protocol != "HTTP")
            throw new ElbException("UnsupportedProtocol", $"Protocol '{protocol}' is not supported here: listeners serve HTTP (there are no certificates)");
        var port = request["Port"]?.GetValue<int>() ?? throw ElbException.Validation("A listener port must be specified");
        var (actions, groups) = await ResolveActionsAsync(request["DefaultActions"]!.AsArray(), lbArn, cancellationToken);
        var tags = CheckTags(request["Tags"]?.AsArray() ?? []);

        var lbName = lb.Doc["LoadBalancerName"]!.GetValue<string>();
        var lbId = lb.Doc[ElbDocs.Id]!.GetValue<string>();
        var id = ElbArns.NewId();
        var listenerArn = arns.Listener(lbName, lbId, id);
        var doc = new JsonObject
        {
            ["ListenerArn"] = listenerArn, ["LoadBalancerArn"] = lbArn, ["Port"] = port, ["Protocol"] = protocol,
            ["DefaultActions"] = actions, [ElbDocs.Id] = id,
        };
        var defaultRule = DefaultRule(arns.Rule(lbName, lbId, id, ElbArns.NewId()), listenerArn, lbArn, actions, groups);
        await CommitAsync(
            [
                Add(LoadBalancingStore.ToEntity(ListenerKey(id), doc, tags)),
                // Every listener here shares the data plane's host, so a port is unique across load balancers.
                Add(LoadBalancingStore.Reservation(PortKey(port), listenerArn)),
                Add(LoadBalancingStore.ToEntity(RuleKey(id, "default"), defaultRule, [])),
            ],
            index => index == 1 ? new ElbException("DuplicateListener", $"A listener already exists on port {port}: load balancers here share one host, so each listener port is used once") : null,
            cancellationToken);
        logger.LogInformation("Created listener {ListenerArn} on port {Port}", listenerArn, port);
        return new JsonObject { ["Listeners"] = new JsonArray(Public(doc)) };
    }

    private static JsonObject DefaultRule(string ruleArn, string listenerArn, string lbArn, JsonArray actions, List<string> groups) => new()
    {
        ["RuleArn"] = ruleArn, ["Priority"] = "default", ["Conditions"] = new JsonArray(), ["Actions"] = actions.DeepClone(), ["IsDefault"] = true,
        [ElbDocs.ListenerArn] = listenerArn, [ElbDocs.LoadBalancerArn] = lbArn,
        [ElbDocs.TargetGroupArns] = new JsonArray([.. groups.Select(g => JsonValue.Create(g))]),
    };

    private async Task<ElbRow> GetListenerAsync(string arn, CancellationToken cancellationToken)
    {
        if (arns.Parse(arn) is not ("listener", var parts)) throw ElbException.Validation($"'{arn}' is not a valid listener ARN");
        var row = await store.GetAsync(ListenerKey(parts[2]), cancellationToken);
        return row?.Doc["ListenerArn"]?.GetValue<string>() == arn ? row : throw ElbException.ListenerNotFound($"Listener '{arn}' not found");
    }

    private async Task<JsonObject> DescribeListenersAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var byArn = Strings(request["ListenerArns"]);
        var lbArn = request["LoadBalancerArn"]?.GetValue<string>();
        if (byArn.Count == 0 && lbArn is null) throw ElbException.Validation("You must specify either listener ARNs or a load balancer ARN");
        if (byArn.Count > 0 && lbArn is not null) throw ElbException.Validation("Listener ARNs and a load balancer ARN cannot be specified at the same time");
        List<ElbRow> rows = [];
        if (lbArn is not null)
        {
            _ = await FindLoadBalancerAsync(lbArn, cancellationToken) ?? throw ElbException.LoadBalancerNotFound($"Load balancer '{lbArn}' not found");
            rows = (await store.ListAsync("listener|", cancellationToken)).Where(l => l.Doc["LoadBalancerArn"]?.GetValue<string>() == lbArn).ToList();
        }
        foreach (var arn in byArn) rows.Add(await GetListenerAsync(arn, cancellationToken));
        return Page("Listeners", rows.Select(r => Public(r.Doc)).ToList(), request);
    }

    private async Task<JsonObject> ModifyListenerAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var listener = await GetListenerAsync(request["ListenerArn"]!.GetValue<string>(), cancellationToken);
        var listenerArn = listener.Doc["ListenerArn"]!.GetValue<string>();
        var lbArn = listener.Doc["LoadBalancerArn"]!.GetValue<string>();
        var id = listener.Doc[ElbDocs.Id]!.GetValue<string>();
        if (request["Protocol"]?.GetValue<string>() is { } protocol && protocol != "HTTP")
            throw new ElbException("UnsupportedProtocol", $"Protocol '{protocol}' is not supported here: listeners serve HTTP (there are no certificates)");
        var batch = new List<TableTransactionAction>();
        var oldPort = listener.Doc["Port"]!.GetValue<int>();
        var newPort = request["Port"]?.GetValue<int>() ?? oldPort;
        if (newPort != oldPort)
        {
            var reservation = await store.GetAsync(PortKey(oldPort), cancellationToken);
            batch.Add(Add(LoadBalancingStore.Reservation(PortKey(newPort), listenerArn)));
            if (reservation is not null) batch.Add(Delete(reservation.RowKey, reservation.ETag));
            listener.Doc["Port"] = newPort;
        }
        if (request["DefaultActions"] is JsonArray given)
        {
            var (actions, groups) = await ResolveActionsAsync(given, lbArn, cancellationToken);
            listener.Doc["DefaultActions"] = actions;
            var rule = await store.GetAsync(RuleKey(id, "default"), cancellationToken) ?? throw new ConcurrentUpdateException(listenerArn);
            rule.Doc["Actions"] = actions.DeepClone();
            rule.Doc[ElbDocs.TargetGroupArns] = new JsonArray([.. groups.Select(g => JsonValue.Create(g))]);
            batch.Add(Replace(rule));
        }
        batch.Insert(0, Replace(listener));
        await CommitAsync(batch,
            index => index == 1 && newPort != oldPort ? new ElbException("DuplicateListener", $"A listener already exists on port {newPort}: load balancers here share one host, so each listener port is used once") : null,
            cancellationToken);
        return new JsonObject { ["Listeners"] = new JsonArray(Public(listener.Doc)) };
    }

    private async Task<JsonObject> DeleteListenerAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var listener = await GetListenerAsync(request["ListenerArn"]!.GetValue<string>(), cancellationToken);
        foreach (var chunk in Chunk(await ListenerDeletionAsync(listener, cancellationToken))) await CommitAsync(chunk, _ => null, cancellationToken);
        logger.LogInformation("Deleted listener {ListenerArn}", listener.Doc["ListenerArn"]!.GetValue<string>());
        return [];
    }

    /// <summary>The deletions that remove a listener: its rules, their priorities, its port and itself.</summary>
    private async Task<List<TableTransactionAction>> ListenerDeletionAsync(ElbRow listener, CancellationToken cancellationToken)
    {
        var id = listener.Doc[ElbDocs.Id]!.GetValue<string>();
        var actions = new List<TableTransactionAction>();
        foreach (var row in await store.ListAsync($"rule|{id}|", cancellationToken)) actions.Add(Delete(row.RowKey, row.ETag));
        foreach (var row in await store.ListAsync($"priority|{id}|", cancellationToken)) actions.Add(Delete(row.RowKey, row.ETag));
        if (await store.GetAsync(PortKey(listener.Doc["Port"]!.GetValue<int>()), cancellationToken) is { } port) actions.Add(Delete(port.RowKey, port.ETag));
        actions.Add(Delete(listener.RowKey, listener.ETag));
        return actions;
    }

    // ---- rules ----

    private async Task<JsonObject> CreateRuleAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var listener = await GetListenerAsync(request["ListenerArn"]!.GetValue<string>(), cancellationToken);
        var listenerArn = listener.Doc["ListenerArn"]!.GetValue<string>();
        var lbArn = listener.Doc["LoadBalancerArn"]!.GetValue<string>();
        var conditions = ElbRules.NormalizeConditions(request["Conditions"]!.AsArray());
        var (actions, groups) = await ResolveActionsAsync(request["Actions"]!.AsArray(), lbArn, cancellationToken);
        var tags = CheckTags(request["Tags"]?.AsArray() ?? []);
        var priority = request["Priority"]!.GetValue<int>().ToString(CultureInfo.InvariantCulture);
        var listenerId = listener.Doc[ElbDocs.Id]!.GetValue<string>();
        var parts = arns.Parse(listenerArn)!.Value.Parts;
        var id = ElbArns.NewId();
        var doc = new JsonObject
        {
            ["RuleArn"] = arns.Rule(parts[0], parts[1], listenerId, id), ["Priority"] = priority, ["Conditions"] = conditions,
            ["Actions"] = actions, ["IsDefault"] = false,
            [ElbDocs.ListenerArn] = listenerArn, [ElbDocs.LoadBalancerArn] = lbArn,
            [ElbDocs.TargetGroupArns] = new JsonArray([.. groups.Select(g => JsonValue.Create(g))]),
        };
        await CommitAsync(
            [Add(LoadBalancingStore.Reservation(PriorityKey(listenerId, Priority(priority)), id)), Add(LoadBalancingStore.ToEntity(RuleKey(listenerId, id), doc, tags))],
            index => index == 0 ? new ElbException("PriorityInUse", $"Priority '{priority}' is currently in use") : null,
            cancellationToken);
        return new JsonObject { ["Rules"] = new JsonArray(Public(doc)) };
    }

    private static string Priority(string priority) => int.Parse(priority, CultureInfo.InvariantCulture).ToString("D5", CultureInfo.InvariantCulture);

    private async Task<ElbRow> GetRuleAsync(string arn, CancellationToken cancellationToken)
    {
        if (arns.Parse(arn) is not ("listener-rule", var parts)) throw ElbException.Validation($"'{arn}' is not a valid rule ARN");
        var row = await store.GetAsync(RuleKey(parts[2], parts[3]), cancellationToken)
                  ?? (await store.GetAsync(RuleKey(parts[2], "default"), cancellationToken) is { } d && d.Doc["RuleArn"]?.GetValue<string>() == arn ? d : null);
        return row?.Doc["RuleArn"]?.GetValue<string>() == arn ? row : throw ElbException.RuleNotFound($"Rule '{arn}' not found");
    }

    private async Task<JsonObject> DescribeRulesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var byArn = Strings(request["RuleArns"]);
        var listenerArn = request["ListenerArn"]?.GetValue<string>();
        if (byArn.Count == 0 && listenerArn is null) throw ElbException.Validation("You must specify either listener ARN or rule ARNs");
        if (byArn.Count > 0 && listenerArn is not null) throw ElbException.Validation("Listener ARN and rule ARNs cannot be specified at the same time");
        List<ElbRow> rows = [];
        if (listenerArn is not null)
        {
            var listener = await GetListenerAsync(listenerArn, cancellationToken);
            rows = await store.ListAsync($"rule|{listener.Doc[ElbDocs.Id]!.GetValue<string>()}|", cancellationToken);
        }
        foreach (var arn in byArn) rows.Add(await GetRuleAsync(arn, cancellationToken));
        // By priority, the default rule last, as ELBv2 lists them.
        var ordered = rows.OrderBy(r => r.Doc["IsDefault"]!.GetValue<bool>()).ThenBy(r => r.Doc["IsDefault"]!.GetValue<bool>() ? 0 : int.Parse(r.Doc["Priority"]!.GetValue<string>(), CultureInfo.InvariantCulture));
        return Page("Rules", ordered.Select(r => Public(r.Doc)).ToList(), request);
    }

    private async Task<JsonObject> ModifyRuleAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var rule = await GetRuleAsync(request["RuleArn"]!.GetValue<string>(), cancellationToken);
        var isDefault = rule.Doc["IsDefault"]!.GetValue<bool>();
        if (request["Conditions"] is JsonArray conditions)
        {
            if (isDefault) throw new ElbException("OperationNotPermitted", "Conditions cannot be set on a default rule");
            rule.Doc["Conditions"] = ElbRules.NormalizeConditions(conditions);
        }
        var batch = new List<TableTransactionAction>();
        if (request["Actions"] is JsonArray given)
        {
            var (actions, groups) = await ResolveActionsAsync(given, rule.Doc[ElbDocs.LoadBalancerArn]!.GetValue<string>(), cancellationToken);
            rule.Doc["Actions"] = actions;
            rule.Doc[ElbDocs.TargetGroupArns] = new JsonArray([.. groups.Select(g => JsonValue.Create(g))]);
            if (isDefault)
            {
                // The default rule is the listener's default actions: both change together.
                var listener = await GetListenerAsync(rule.Doc[ElbDocs.ListenerArn]!.GetValue<string>(), cancellationToken);
                listener.Doc["DefaultActions"] = actions.DeepClone();
                batch.Add(Replace(listener));
            }
        }
        batch.Insert(0, Replace(rule));
        await CommitAsync(batch, _ => null, cancellationToken);
        return new JsonObject { ["Rules"] = new JsonArray(Public(rule.Doc)) };
    }

    /// <summary>
    /// The forward weights <paramref name="ruleArn"/> gives <paramref name="blueArn"/> and <paramref name="greenArn"/>
    /// (0 for one it does not name); null when the rule does not forward.
    /// </summary>
    public async Task<(int Blue, int Green)?> ForwardWeightsAsync(string ruleArn, string blueArn, string greenArn, CancellationToken cancellationToken)
    {
        var rule = await GetRuleAsync(ruleArn, cancellationToken);
        var forward = rule.Doc["Actions"]?.AsArray().OfType<JsonObject>().FirstOrDefault(a => a["Type"]?.GetValue<string>() == "forward");
        if (forward?["ForwardConfig"]?["TargetGroups"] is not JsonArray groups) return null;
        int Weight(string arn) => groups.OfType<JsonObject>().FirstOrDefault(g => g["TargetGroupArn"]?.GetValue<string>() == arn)?["Weight"]?.GetValue<int>() ?? 0;
        return (Weight(blueArn), Weight(greenArn));
    }

    /// <summary>
    /// Rewrites <paramref name="ruleArn"/>'s forward action so that it sends <paramref name="blue"/> and
    /// <paramref name="green"/> weights to the two groups (other groups keep theirs), as ModifyRule would: same
    /// checks, one transaction with the configuration's new version, and the data planes woken.
    /// </summary>
    public async Task SetForwardWeightsAsync(string ruleArn, string blueArn, int blue, string greenArn, int green, CancellationToken cancellationToken)
    {
        var rule = await GetRuleAsync(ruleArn, cancellationToken);
        var actions = rule.Doc["Actions"]!.DeepClone().AsArray();
        var forward = actions.OfType<JsonObject>().FirstOrDefault(a => a["Type"]?.GetValue<string>() == "forward")
            ?? throw ElbException.Validation($"Rule '{ruleArn}' has no forward action to shift traffic with");
        var groups = forward["ForwardConfig"]?["TargetGroups"]?.DeepClone().AsArray() ?? [];
        var weights = groups.OfType<JsonObject>()
            .Select(g => (Arn: g["TargetGroupArn"]!.GetValue<string>(), Weight: g["Weight"]?.GetValue<int>() ?? 1))
            .Where(g => g.Arn != blueArn && g.Arn != greenArn)
            .Append((Arn: blueArn, Weight: blue)).Append((Arn: greenArn, Weight: green));
        forward.Remove("TargetGroupArn");
        forward["ForwardConfig"] = new JsonObject
        {
            ["TargetGroups"] = new JsonArray([.. weights.Select(w => (JsonNode)new JsonObject { ["TargetGroupArn"] = w.Arn, ["Weight"] = w.Weight })]),
            ["TargetGroupStickinessConfig"] = forward["ForwardConfig"]?["TargetGroupStickinessConfig"]?.DeepClone() ?? new JsonObject { ["Enabled"] = false },
        };
        await ModifyRuleAsync(new JsonObject { ["RuleArn"] = ruleArn, ["Actions"] = actions }, new RequestContext(null), cancellationToken);
        logger.LogInformation("Rule {RuleArn} forwards with weights {Blue} to {BlueTargetGroupArn} and {Green} to {GreenTargetGroupArn}", ruleArn, blue, blueArn, green, greenArn);
    }

    private async Task<JsonObject> DeleteRuleAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var rule = await GetRuleAsync(request["RuleArn"]!.GetValue<string>(), cancellationToken);
        if (rule.Doc["IsDefault"]!.GetValue<bool>()) throw new ElbException("OperationNotPermitted", "Default rule cannot be deleted");
        var listenerId = arns.Parse(rule.Doc["RuleArn"]!.GetValue<string>())!.Value.Parts[2];
        var reservation = await store.GetAsync(PriorityKey(listenerId, Priority(rule.Doc["Priority"]!.GetValue<string>())), cancellationToken);
        var batch = new List<TableTransactionAction> { Delete(rule.RowKey, rule.ETag) };
        if (reservation is not null) batch.Add(Delete(reservation.RowKey, reservation.ETag));
        await CommitAsync(batch, _ => null, cancellationToken);
        return [];
    }

    private async Task<JsonObject> SetRulePrioritiesAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var pairs = request["RulePriorities"]!.AsArray();
        var rules = new List<(ElbRow Rule, string Priority)>();
        foreach (var pair in pairs)
        {
            var arn = pair!["RuleArn"]?.GetValue<string>() ?? throw ElbException.Validation("A rule ARN must be specified");
            var priority = pair["Priority"]?.GetValue<int>() ?? throw ElbException.Validation("A priority must be specified");
            var rule = await GetRuleAsync(arn, cancellationToken);
            if (rule.Doc["IsDefault"]!.GetValue<bool>()) throw new ElbException("OperationNotPermitted", "Default rule priority cannot be modified");
            if (rules.Exists(r => r.Rule.RowKey == rule.RowKey)) throw ElbException.Validation($"Rule '{arn}' is specified more than once");
            rules.Add((rule, priority.ToString(CultureInfo.InvariantCulture)));
        }
        var listenerIds = rules.Select(r => arns.Parse(r.Rule.Doc["RuleArn"]!.GetValue<string>())!.Value.Parts[2]).Distinct().ToList();
        if (listenerIds.Count > 1) throw ElbException.Validation("All rules must belong to the same listener");
        var duplicate = rules.GroupBy(r => r.Priority).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ElbException("PriorityInUse", $"Priority '{duplicate.Key}' is currently in use");
        if (rules.Count == 0) return new JsonObject { ["Rules"] = new JsonArray() };

        // Swapping priorities is one transaction: the reservations released and taken change together.
        var listenerId = listenerIds[0];
        var batch = new List<TableTransactionAction>();
        var released = new HashSet<string>();
        foreach (var (rule, _) in rules)
        {
            var key = PriorityKey(listenerId, Priority(rule.Doc["Priority"]!.GetValue<string>()));
            if (await store.GetAsync(key, cancellationToken) is { } reservation) { batch.Add(Delete(key, reservation.ETag)); released.Add(key); }
        }
        foreach (var (rule, priority) in rules)
        {
            var key = PriorityKey(listenerId, Priority(priority));
            var id = rule.RowKey.Split('|')[2];
            if (released.Contains(key))
            {
                // Taken back in the same transaction: an entity may appear once, so replace the delete.
                var at = batch.FindIndex(a => a.Entity.RowKey == key);
                batch[at] = new TableTransactionAction(TableTransactionActionType.UpdateReplace, LoadBalancingStore.Reservation(key, id), batch[at].ETag);
            }
            else batch.Add(Add(LoadBalancingStore.Reservation(key, id)));
            rule.Doc["Priority"] = priority;
            batch.Add(Replace(rule));
        }
        await CommitAsync(batch, index => batch[index].ActionType == TableTransactionActionType.Add && batch[index].Entity.RowKey.StartsWith("priority|", StringComparison.Ordinal)
            ? new ElbException("PriorityInUse", $"Priority '{int.Parse(batch[index].Entity.RowKey.Split('|')[2], CultureInfo.InvariantCulture)}' is currently in use") : null, cancellationToken);
        return new JsonObject { ["Rules"] = new JsonArray([.. rules.Select(r => (JsonNode)Public(r.Rule.Doc))]) };
    }

    // ---- targets ----

    private async Task<JsonObject> RegisterTargetsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var group = await GetTargetGroupAsync(request["TargetGroupArn"]!.GetValue<string>(), cancellationToken);
        var groupId = group.Doc[ElbDocs.Id]!.GetValue<string>();
        var now = time.GetUtcNow();
        var targets = new List<TargetRow>();
        foreach (var target in request["Targets"]!.AsArray())
        {
            var (id, port) = TargetOf(group.Doc, target!.AsObject());
            targets.Add(new TargetRow(groupId, id, port, target["AvailabilityZone"]?.GetValue<string>(), now, null, null, null, null));
        }
        await store.SaveTargetsAsync(groupId, targets.DistinctBy(t => TargetRow.Key(t.Id, t.Port)), cancellationToken);
        return [];
    }

    private static (string Id, int Port) TargetOf(JsonObject group, JsonObject target)
    {
        var id = target["Id"]!.GetValue<string>();
        var port = target["Port"]?.GetValue<int>() ?? group["Port"]!.GetValue<int>();
        if (group["TargetType"]!.GetValue<string>() == "ip" && !ElbRules.IsIpAddress(id))
            throw new ElbException("InvalidTarget", $"The IP address '{id}' is not a valid IPv4 address");
        if (id.Contains('|')) throw new ElbException("InvalidTarget", $"The following targets are not valid: '{id}'");
        return (id, port);
    }

    private async Task<JsonObject> DeregisterTargetsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var group = await GetTargetGroupAsync(request["TargetGroupArn"]!.GetValue<string>(), cancellationToken);
        var groupId = group.Doc[ElbDocs.Id]!.GetValue<string>();
        var registered = (await store.ListTargetsAsync(groupId, cancellationToken)).ToDictionary(t => TargetRow.Key(t.Id, t.Port));
        var now = time.GetUtcNow();
        var draining = new List<TargetRow>();
        foreach (var target in request["Targets"]!.AsArray())
        {
            var (id, port) = TargetOf(group.Doc, target!.AsObject());
            if (!registered.TryGetValue(TargetRow.Key(id, port), out var row))
                throw new ElbException("InvalidTarget", $"The following targets are not registered in target group '{group.Doc["TargetGroupArn"]}': 'Id={id},Port={port}'");
            // Requests in flight complete for the deregistration delay; no new ones start (the data plane's part).
            if (row.DrainingSince is null) draining.Add(row with { DrainingSince = now });
        }
        if (draining.Count > 0) await store.SaveTargetsAsync(groupId, draining, cancellationToken);
        return [];
    }

    private async Task<JsonObject> DescribeTargetHealthAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var group = await GetTargetGroupAsync(request["TargetGroupArn"]!.GetValue<string>(), cancellationToken);
        var groupId = group.Doc[ElbDocs.Id]!.GetValue<string>();
        var now = time.GetUtcNow();
        var delay = ElbRules.DeregistrationDelaySeconds(group.Doc);
        var all = await store.ListTargetsAsync(groupId, cancellationToken);
        var expired = all.Where(t => ElbRules.DrainingOver(t, delay, now)).ToList();
        if (expired.Count > 0) await store.DeleteTargetsAsync(groupId, expired, cancellationToken);
        var live = all.Except(expired).ToList();
        var inUse = (await UsageAsync(cancellationToken)).ContainsKey(group.Doc["TargetGroupArn"]!.GetValue<string>());
        var enabled = group.Doc["HealthCheckEnabled"]?.GetValue<bool>() ?? true;

        var descriptions = new JsonArray();
        void Describe(string id, int? port, TargetRow? row)
        {
            var (state, reason, description) = row is null
                ? ("unused", "Target.NotRegistered", "Target is not registered to the target group")
                : ElbRules.Health(row, inUse, enabled);
            var target = new JsonObject { ["Id"] = id };
            if (port is not null) target["Port"] = port;
            if (row?.AvailabilityZone is { } zone) target["AvailabilityZone"] = zone;
            var health = new JsonObject { ["State"] = state };
            if (reason is not null) health["Reason"] = reason;
            if (description is not null) health["Description"] = description;
            var healthPort = group.Doc["HealthCheckPort"]!.GetValue<string>();
            descriptions.Add(new JsonObject
            {
                ["Target"] = target,
                ["HealthCheckPort"] = healthPort == "traffic-port" ? port?.ToString(CultureInfo.InvariantCulture) : healthPort,
                ["TargetHealth"] = health,
            });
        }

        if (request["Targets"] is JsonArray { Count: > 0 } asked)
        {
            foreach (var target in asked)
            {
                var id = target!["Id"]!.GetValue<string>();
                var port = target["Port"]?.GetValue<int>();
                var matches = live.Where(t => t.Id == id && (port is null || t.Port == port)).ToList();
                if (matches.Count == 0) Describe(id, port ?? group.Doc["Port"]!.GetValue<int>(), null);
                foreach (var match in matches) Describe(match.Id, match.Port, match);
            }
        }
        else
        {
            foreach (var row in live.OrderBy(t => t.Id, StringComparer.Ordinal).ThenBy(t => t.Port)) Describe(row.Id, row.Port, row);
        }
        return new JsonObject { ["TargetHealthDescriptions"] = descriptions };
    }

    // ---- tags ----

    private static JsonArray CheckTags(JsonArray tags)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            var key = tag!["Key"]!.GetValue<string>();
            if (!keys.Add(key)) throw new ElbException("DuplicateTagKeys", $"Tag key '{key}' is duplicated");
            if (key.StartsWith("aws:", StringComparison.OrdinalIgnoreCase)) throw ElbException.Validation("Tag keys starting with 'aws:' are reserved for internal use");
        }
        if (tags.Count > ElbRules.MaxTags) throw new ElbException("TooManyTags", $"A resource can have at most {ElbRules.MaxTags} tags");
        return tags.DeepClone().AsArray();
    }

    private async Task<ElbRow> ResourceAsync(string arn, CancellationToken cancellationToken)
    {
        switch (arns.Parse(arn)?.Type)
        {
            case "loadbalancer": return await FindLoadBalancerAsync(arn, cancellationToken) ?? throw ElbException.LoadBalancerNotFound($"Load balancer '{arn}' not found");
            case "targetgroup": return await GetTargetGroupAsync(arn, cancellationToken);
            case "listener": return await GetListenerAsync(arn, cancellationToken);
            case "listener-rule": return await GetRuleAsync(arn, cancellationToken);
            default: throw ElbException.Validation($"'{arn}' is not a valid resource ARN");
        }
    }

    private async Task<JsonObject> AddTagsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var tags = CheckTags(request["Tags"]!.AsArray());
        foreach (var arn in Strings(request["ResourceArns"]))
        {
            var row = await ResourceAsync(arn, cancellationToken);
            var merged = row.Tags.Select(t => t!.AsObject()).Where(t => !tags.Any(n => n!["Key"]!.GetValue<string>() == t["Key"]!.GetValue<string>())).Select(t => t.DeepClone()).ToList();
            merged.AddRange(tags.Select(t => t!.DeepClone()));
            if (merged.Count > ElbRules.MaxTags) throw new ElbException("TooManyTags", $"The quota for the number of tags that can be assigned to a resource has been reached ({ElbRules.MaxTags})");
            await CommitAsync([Replace(row with { Tags = new JsonArray([.. merged]) })], _ => null, cancellationToken);
        }
        return [];
    }

    private async Task<JsonObject> RemoveTagsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var keys = Strings(request["TagKeys"]).ToHashSet(StringComparer.Ordinal);
        foreach (var arn in Strings(request["ResourceArns"]))
        {
            var row = await ResourceAsync(arn, cancellationToken);
            var kept = row.Tags.Where(t => !keys.Contains(t!["Key"]!.GetValue<string>())).Select(t => t!.DeepClone()).ToList();
            await CommitAsync([Replace(row with { Tags = new JsonArray([.. kept]) })], _ => null, cancellationToken);
        }
        return [];
    }

    private async Task<JsonObject> DescribeTagsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var arnList = Strings(request["ResourceArns"]);
        if (arnList.Count > 20) throw ElbException.Validation("At most 20 resource ARNs can be specified");
        var descriptions = new JsonArray();
        foreach (var arn in arnList)
        {
            var row = await ResourceAsync(arn, cancellationToken);
            descriptions.Add(new JsonObject { ["ResourceArn"] = arn, ["Tags"] = row.Tags.DeepClone() });
        }
        return new JsonObject { ["TagDescriptions"] = descriptions };
    }

    // ---- paging ----

    /// <summary>One page of <paramref name="items"/> after the request's <c>Marker</c> (an opaque offset), at most <c>PageSize</c>.</summary>
    private static JsonObject Page(string member, List<JsonObject> items, JsonObject request)
    {
        var start = 0;
        if (request["Marker"]?.GetValue<string>() is { } marker)
        {
            try
            {
                start = int.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(marker)), NumberStyles.None, CultureInfo.InvariantCulture);
            }
            catch (FormatException)
            {
                throw ElbException.Validation($"Invalid marker '{marker}'");
            }
        }
        var size = request["PageSize"]?.GetValue<int>() ?? 400;
        var page = items.Skip(start).Take(size).ToList();
        var result = new JsonObject { [member] = new JsonArray([.. page]) };
        if (start + size < items.Count) result["NextMarker"] = Convert.ToBase64String(Encoding.UTF8.GetBytes((start + size).ToString(CultureInfo.InvariantCulture)));
        return result;
    }
}
