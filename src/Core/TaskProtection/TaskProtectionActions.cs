using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.Core.Tasks;

namespace Serverless.Core.TaskProtection;

/// <summary>
/// Task scale-in protection (ECS UpdateTaskProtection and GetTaskProtection): a service's task may be protected
/// for 1 to 2,880 minutes (120 by default); while protected, neither scaling in nor a deployment stops it
/// (<see cref="Reconciliation.Rollout"/>). Only a service's running task can be protected, as on ECS; a task that
/// does not exist or is not one is a failure, not an error, and the others still change.
/// </summary>
public sealed class TaskProtectionActions(ClusterStore clusters, TaskStore tasks, Arns arns, TimeProvider time) : IActionSource
{
    private const int MaxTasks = 10;

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("UpdateTaskProtection", UpdateTaskProtectionAsync);
        registry.Map("GetTaskProtection", GetTaskProtectionAsync);
    }

    private async Task<JsonObject> UpdateTaskProtectionAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var names = Names(request);
        if (names.Count == 0) throw new InvalidParameterException("Tasks cannot be empty.");
        var enabled = request.Bool("protectionEnabled")!.Value;
        var minutes = request.Int("expiresInMinutes");
        if (TaskProtectionRules.MinutesProblem(enabled, minutes) is { } problem) throw new InvalidParameterException(problem);
        var cluster = (await clusters.GetActiveAsync(arns.ClusterName(request.String("cluster")), cancellationToken)).Name;
        var now = time.GetUtcNow();
        var protectedTasks = new JsonArray();
        var failures = new JsonArray();
        foreach (var name in names)
        {
            if (TaskId(cluster, name) is not { } id || await tasks.FindAsync(cluster, id, cancellationToken) is not { } found)
            {
                failures.Add(Failure(cluster, name, "MISSING", null));
                continue;
            }
            if (Invalid(found) is { } detail)
            {
                failures.Add(Failure(cluster, name, "TASK_NOT_VALID", detail));
                continue;
            }
            var until = TaskProtectionRules.Until(enabled, minutes, now);
            var stored = await tasks.UpdateAsync(cluster, id, t => Invalid(t) is not null || t.ProtectedUntil == until ? null : t with { ProtectedUntil = until }, cancellationToken);
            if (stored is null) failures.Add(Failure(cluster, name, "MISSING", null));
            else if (Invalid(stored) is { } late) failures.Add(Failure(cluster, name, "TASK_NOT_VALID", late));      // stopped meanwhile
            else protectedTasks.Add(Describe(stored, now));
        }
        return new JsonObject { ["protectedTasks"] = protectedTasks, ["failures"] = failures };
    }

    private async Task<JsonObject> GetTaskProtectionAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var names = Names(request);
        var cluster = (await clusters.GetActiveAsync(arns.ClusterName(request.String("cluster")), cancellationToken)).Name;
        var now = time.GetUtcNow();
        var protectedTasks = new JsonArray();
        var failures = new JsonArray();
        var ids = names.Select(n => TaskId(cluster, n)).ToList();
        var found = await tasks.FindManyAsync(cluster, ids.OfType<string>(), cancellationToken);
        for (var i = 0; i < names.Count; i++)
        {
            if (ids[i] is not { } id || found.GetValueOrDefault(id) is not { } task) failures.Add(Failure(cluster, names[i], "MISSING", null));
            else if (Invalid(task) is { } detail) failures.Add(Failure(cluster, names[i], "TASK_NOT_VALID", detail));
            else protectedTasks.Add(Describe(task, now));
        }
        return new JsonObject { ["protectedTasks"] = protectedTasks, ["failures"] = failures };
    }

    private static List<string> Names(JsonObject request)
    {
        var names = request.Strings("tasks").ToList();
        if (names.Count > MaxTasks) throw new InvalidParameterException($"Tasks cannot have more than {MaxTasks} elements.");
        return names;
    }

    private static string? Invalid(TaskRecord task) => TaskProtectionRules.Invalid(task);

    private JsonObject Describe(TaskRecord task, DateTimeOffset now)
    {
        var json = new JsonObject { ["taskArn"] = arns.Task(task.Cluster, task.Id), ["protectionEnabled"] = task.IsProtectedAt(now) };
        if (task.IsProtectedAt(now)) json["expirationDate"] = AwsJson.Timestamp(task.ProtectedUntil!.Value);
        return json;
    }

    private JsonObject Failure(string cluster, string name, string reason, string? detail)
    {
        var failure = new JsonObject { ["arn"] = Arn.IsArn(name) ? name : arns.Task(cluster, name), ["reason"] = reason };
        if (detail is not null) failure["detail"] = detail;
        return failure;
    }

    private string? TaskId(string cluster, string nameOrArn)
    {
        if (!Arn.IsArn(nameOrArn)) return TaskIds.IsValid(nameOrArn) ? nameOrArn : null;
        return arns.ResourcePath(nameOrArn, "task") switch
        {
            [var owner, var id] when owner == cluster && TaskIds.IsValid(id) => id,
            [var id] when TaskIds.IsValid(id) => id,
            _ => null,
        };
    }
}

/// <summary>The rules of task scale-in protection, shared by the ECS API and the worker's agent endpoint.</summary>
public static class TaskProtectionRules
{
    public const int DefaultMinutes = 120;
    public const int MaxMinutes = 2880;

    /// <summary>Why a task cannot be protected: not a service's, or stopped or stopping; null when it can.</summary>
    public static string? Invalid(TaskRecord task)
        => task.ServiceName is null ? "The task is not part of a service; only a service's tasks can be protected."
            : task.IsStopped || task.DesiredStatus == EcsTaskStatus.Stopped ? "The task is stopped or stopping."
            : null;

    /// <summary>What is wrong with an expiry, or null: 1 to 2,880 minutes when enabling (120 when not given).</summary>
    public static string? MinutesProblem(bool enabled, int? minutes)
        => enabled && minutes is < 1 or > MaxMinutes ? $"expiresInMinutes must be between 1 and {MaxMinutes}." : null;

    /// <summary>When protection ends: <paramref name="minutes"/> (default 120) from now when enabled, null when disabled.</summary>
    public static DateTimeOffset? Until(bool enabled, int? minutes, DateTimeOffset now)
        => enabled ? now.AddMinutes(minutes ?? DefaultMinutes) : null;

    /// <summary>The agent endpoint's answer for a task (<c>$ECS_AGENT_URI/task-protection/v1/state</c>), as the ECS agent shapes it.</summary>
    public static JsonObject AgentState(string taskArn, TaskRecord task, DateTimeOffset now)
    {
        var protection = new JsonObject { ["ProtectionEnabled"] = task.IsProtectedAt(now), ["TaskArn"] = taskArn };
        protection["ExpirationDate"] = task.IsProtectedAt(now)
            ? task.ProtectedUntil!.Value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)
            : null;
        return new JsonObject { ["protection"] = protection };
    }

    /// <summary>The agent endpoint's answer when the request fails, as the ECS agent shapes it.</summary>
    public static JsonObject AgentError(string taskArn, string code, string message)
        => new() { ["error"] = new JsonObject { ["Arn"] = taskArn, ["Code"] = code, ["Message"] = message } };

    /// <summary>The agent endpoint's answer when ECS reports a failure for the task, as the ECS agent shapes it.</summary>
    public static JsonObject AgentFailure(string taskArn, string reason, string? detail)
        => new() { ["failure"] = new JsonObject { ["Arn"] = taskArn, ["Reason"] = reason, ["Detail"] = detail } };
}

public static class TaskProtectionServices
{
    public static IServiceCollection AddTaskProtection(this IServiceCollection services)
        => services.AddSingleton<IActionSource, TaskProtectionActions>();
}
