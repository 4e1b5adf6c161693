using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Serverless.Core.TaskProtection;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Metadata;

/// <summary>
/// The agent's task scale-in protection endpoint, <c>$ECS_AGENT_URI/task-protection/v1/state</c>: GET answers the
/// calling task's protection, PUT (<c>{"ProtectionEnabled":true,"ExpiresInMinutes":60}</c>) sets it, with the rules
/// of ECS's UpdateTaskProtection (<see cref="TaskProtectionRules"/>). The id in the URI names the container, and
/// through it the one task it may act on. The task row is written with the shared optimistic update, as the API does.
/// </summary>
public sealed class TaskProtectionAgent(TaskMetadataReader reader, TaskStore tasks, TimeProvider time)
{
    public async Task<IResult> GetAsync(string id, CancellationToken cancellationToken)
    {
        if (await reader.TaskOfAsync(id, cancellationToken) is not var (cluster, taskArn, taskId)) return NotFound();
        if (await tasks.FindAsync(cluster, taskId, cancellationToken) is not { } task)
            return Results.Json(TaskProtectionRules.AgentFailure(taskArn, "MISSING", null), statusCode: 200);
        return Results.Json(TaskProtectionRules.AgentState(taskArn, task, time.GetUtcNow()));
    }

    public async Task<IResult> PutAsync(string id, HttpRequest request, CancellationToken cancellationToken)
    {
        if (await reader.TaskOfAsync(id, cancellationToken) is not var (cluster, taskArn, taskId)) return NotFound();
        bool enabled;
        int? minutes;
        try
        {
            var body = await JsonNode.ParseAsync(request.Body, cancellationToken: cancellationToken) as JsonObject;
            if (body?["ProtectionEnabled"] is not JsonValue flag || !flag.TryGetValue(out enabled))
                return Error(taskArn, "InvalidParameterException", "Invalid request: does not contain 'ProtectionEnabled' field");
            minutes = body["ExpiresInMinutes"] is JsonValue value && value.TryGetValue(out int given) ? given : null;
        }
        catch (JsonException)
        {
            return Error(taskArn, "InvalidParameterException", "Invalid request: failed to decode request body");
        }
        if (TaskProtectionRules.MinutesProblem(enabled, minutes) is { } problem) return Error(taskArn, "InvalidParameterException", problem);
        var until = TaskProtectionRules.Until(enabled, minutes, time.GetUtcNow());
        var stored = await tasks.UpdateAsync(cluster, taskId,
            t => TaskProtectionRules.Invalid(t) is not null || t.ProtectedUntil == until ? null : t with { ProtectedUntil = until }, cancellationToken);
        if (stored is null) return Results.Json(TaskProtectionRules.AgentFailure(taskArn, "MISSING", null));
        if (TaskProtectionRules.Invalid(stored) is { } detail) return Results.Json(TaskProtectionRules.AgentFailure(taskArn, "TASK_NOT_VALID", detail));
        return Results.Json(TaskProtectionRules.AgentState(taskArn, stored, time.GetUtcNow()));
    }

    private static IResult Error(string taskArn, string code, string message)
        => Results.Json(TaskProtectionRules.AgentError(taskArn, code, message), statusCode: 400);

    private static IResult NotFound()
        => Results.Json(new JsonObject { ["error"] = new JsonObject { ["Code"] = "ResourceNotFoundException", ["Message"] = "Invalid request: no task was found for the request" } }, statusCode: 404);
}
