using System.Text.Json.Nodes;
using Serverless.Core.Api;
using static Serverless.Core.AutoScaling.AutoScalingActions;

namespace Serverless.Core.AutoScaling;

/// <summary>PutScheduledAction, DescribeScheduledActions and DeleteScheduledAction on ECS services' scalable targets.</summary>
public sealed class ScheduledActionActions(AutoScalingStore targets, ScheduledActionStore store, EcsOptions options, TimeProvider time) : IActionSource
{
    /// <summary>Application Auto Scaling's quota of scheduled actions per scalable target.</summary>
    public const int MaxPerTarget = 200;

    public void MapActions(ActionRegistry registry)
    {
        const string prefix = ActionRegistry.AutoScalingTargetPrefix;
        registry.Map("PutScheduledAction", PutAsync, prefix);
        registry.Map("DescribeScheduledActions", DescribeAsync, prefix);
        registry.Map("DeleteScheduledAction", DeleteAsync, prefix);
    }

    private async Task<JsonObject> PutAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (cluster, service) = Resource(request);
        var name = request.String("ScheduledActionName")!;
        var capacity = request["ScalableTargetAction"] as JsonObject;
        var (min, max) = (capacity?.Int("MinCapacity"), capacity?.Int("MaxCapacity"));
        if (min is { } low && max is { } high && low > high)
            throw AutoScalingException.Validation($"Minimum capacity cannot be greater than maximum capacity. Minimum capacity: {low}, maximum capacity: {high}");
        var (target, _) = await targets.FindAsync(cluster, service, cancellationToken);
        if (target is null) throw NoTarget(cluster, service);
        var existing = (await store.ListAsync(cluster, service, cancellationToken)).ToList();
        var current = existing.FirstOrDefault(a => a.Name == name);
        if (current is null && existing.Count >= MaxPerTarget)
            throw new AutoScalingException("LimitExceededException", $"A scalable target may have at most {MaxPerTarget} scheduled actions.");
        var expression = request.String("Schedule") ?? current?.Schedule
            ?? throw AutoScalingException.Validation("Schedule is required when creating a scheduled action.");
        var now = time.GetUtcNow();
        var action = new ScheduledActionRecord
        {
            Cluster = cluster,
            Service = service,
            Name = name,
            Arn = current?.Arn ?? $"arn:aws:autoscaling:{options.Region}:{options.AccountId}:scheduledAction:{Guid.NewGuid()}:resource/ecs/{target.ResourceId}:scheduledActionName/{name}",
            Schedule = expression,
            Timezone = request.String("Timezone"),
            StartTime = Time(request, "StartTime"),
            EndTime = Time(request, "EndTime"),
            MinCapacity = min,
            MaxCapacity = max,
            CreatedAt = current?.CreatedAt ?? now,
        };
        // Parsing validates the expression, the time zone and the start and end; the next run is stored for the timer.
        action = action with { NextRun = action.Parsed().NextAfter(now) };
        await store.PutAsync(action, cancellationToken);
        return [];
    }

    private async Task<JsonObject> DescribeAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        CheckNamespace(request);
        var names = request.Strings("ScheduledActionNames").ToHashSet(StringComparer.Ordinal);
        IReadOnlyList<ScheduledActionRecord> actions;
        if (request.String("ResourceId") is not null)
        {
            var (cluster, service) = Resource(request);
            actions = await store.ListAsync(cluster, service, cancellationToken);
        }
        else actions = await store.ListAsync(null, null, cancellationToken);
        var ordered = actions.Where(a => names.Count == 0 || names.Contains(a.Name)).OrderBy(a => a.Arn, StringComparer.Ordinal);
        var (page, next) = Paging(ordered, a => a.Arn, request);
        var result = new JsonObject { ["ScheduledActions"] = page.Select(a => (JsonNode)Describe(a)).ToJsonArray() };
        if (next is not null) result["NextToken"] = next;
        return result;
    }

    private async Task<JsonObject> DeleteAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (cluster, service) = Resource(request);
        var name = request.String("ScheduledActionName")!;
        if (!await store.DeleteAsync(cluster, service, name, cancellationToken))
            throw AutoScalingException.ObjectNotFound(
                $"No scheduled action found for service namespace: ecs, resource ID: service/{cluster}/{service}, scalable dimension: {Dimension}, scheduled action name: {name}");
        return [];
    }

    private static JsonObject Describe(ScheduledActionRecord action)
    {
        var capacity = new JsonObject();
        if (action.MinCapacity is { } min) capacity["MinCapacity"] = min;
        if (action.MaxCapacity is { } max) capacity["MaxCapacity"] = max;
        var json = new JsonObject
        {
            ["ScheduledActionName"] = action.Name,
            ["ScheduledActionARN"] = action.Arn,
            ["ServiceNamespace"] = Namespace,
            ["Schedule"] = action.Schedule,
            ["ResourceId"] = action.ResourceId,
            ["ScalableDimension"] = Dimension,
            ["ScalableTargetAction"] = capacity,
            ["CreationTime"] = AwsJson.Timestamp(action.CreatedAt),
        };
        if (action.Timezone is not null) json["Timezone"] = action.Timezone;
        if (action.StartTime is { } start) json["StartTime"] = AwsJson.Timestamp(start);
        if (action.EndTime is { } end) json["EndTime"] = AwsJson.Timestamp(end);
        return json;
    }

    private static DateTimeOffset? Time(JsonObject request, string name)
        => request[name] is JsonValue value ? AwsJson.FromTimestamp(value.GetValue<double>()) : null;
}
