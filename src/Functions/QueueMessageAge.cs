using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using Serverless.Core.Telemetry;

namespace Serverless.Functions;

/// <summary>
/// Under the Functions host, which takes the queue messages itself: records each queue-triggered invocation's
/// message age (<c>queue.message_age</c>) from the trigger's <c>InsertionTime</c>, as the standalone host's
/// consumer records it. The queue's name comes from the function's <see cref="QueueTriggerAttribute"/>.
/// </summary>
public sealed class QueueMessageAge(TimeProvider time) : IFunctionsWorkerMiddleware
{
    private static readonly ConcurrentDictionary<string, string?> QueueNames = new(StringComparer.Ordinal);

    public Task Invoke(FunctionContext context, FunctionExecutionDelegate next)
    {
        if (context.BindingContext.BindingData.TryGetValue("InsertionTime", out var value)
            && QueueNames.GetOrAdd(context.FunctionDefinition.EntryPoint, _ => QueueOf(context.FunctionDefinition)) is { } queue
            && InsertionTime(value) is { } inserted)
        {
            StorageTelemetry.RecordReceived(queue, inserted, time.GetUtcNow());
        }
        return next(context);
    }

    /// <summary>The binding data's <c>InsertionTime</c>: a string (how the host sends it) or a time.</summary>
    public static DateTimeOffset? InsertionTime(object? value) => value switch
    {
        DateTimeOffset at => at,
        DateTime at => new DateTimeOffset(DateTime.SpecifyKind(at, DateTimeKind.Utc)),
        string text when DateTimeOffset.TryParse(text.Trim('"'), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) => at,
        _ => null,
    };

    /// <summary>The queue a function's trigger names, found on its entry point (<c>Namespace.Type.Method</c>) in this assembly.</summary>
    public static string? QueueOf(FunctionDefinition function)
    {
        var split = function.EntryPoint.LastIndexOf('.');
        if (split < 0) return null;
        var method = typeof(QueueMessageAge).Assembly.GetType(function.EntryPoint[..split])?.GetMethod(function.EntryPoint[(split + 1)..]);
        return method?.GetParameters().Select(p => p.GetCustomAttribute<QueueTriggerAttribute>()).FirstOrDefault(a => a is not null)?.QueueName;
    }
}
