using System.Diagnostics;
using System.Reflection;
using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker;
using Serverless.Core.Telemetry;

namespace Serverless.Functions.Standalone;

public enum TriggerKind
{
    Http,
    Queue,
    Timer,
}

/// <summary>
/// A function compiled for the standalone host: its declaration, its trigger, and a precompiled invoker
/// that creates the function class from the invocation's services and binds every parameter without
/// reflection.
/// </summary>
public sealed class StandaloneFunction
{
    private readonly Func<StandaloneInvocation, ValueTask<object?>> _invoker;
    private readonly Func<QueueMessage, BinaryData, object?>? _queueMessageConverter;

    internal StandaloneFunction(
        FunctionDeclaration declaration, TriggerKind kind, MethodInfo method, Type triggerParameterType,
        IReadOnlyList<string> routeParameters, FunctionDefinition definition,
        Func<StandaloneInvocation, ValueTask<object?>> invoker,
        Func<QueueMessage, BinaryData, object?>? queueMessageConverter)
    {
        Declaration = declaration;
        Kind = kind;
        Method = method;
        TriggerParameterType = triggerParameterType;
        RouteParameters = routeParameters;
        Definition = definition;
        _invoker = invoker;
        _queueMessageConverter = queueMessageConverter;
    }

    public string Name => Declaration.Name;

    public FunctionDeclaration Declaration { get; }

    public BindingDeclaration Trigger => Declaration.Trigger;

    public TriggerKind Kind { get; }

    /// <summary>The method <c>entryPoint</c> names.</summary>
    public MethodInfo Method { get; }

    /// <summary>The type the trigger parameter asks for (<c>HttpRequest</c>, <c>string</c>, <c>TimerInfo</c>, …).</summary>
    public Type TriggerParameterType { get; }

    /// <summary>Parameter names of the HTTP route template; empty for other triggers.</summary>
    public IReadOnlyList<string> RouteParameters { get; }

    internal FunctionDefinition Definition { get; }

    /// <summary>
    /// Runs the function once. Exceptions thrown by the function propagate unchanged. A queue message or a
    /// timer run is a span of its own, timed with its outcome (an HTTP call is the API's span).
    /// </summary>
    public async ValueTask<object?> InvokeAsync(StandaloneInvocation invocation)
    {
        if (Kind == TriggerKind.Http) return await _invoker(invocation);
        using var activity = Telemetry.Source.StartActivity(Name, Kind == TriggerKind.Queue ? ActivityKind.Consumer : ActivityKind.Internal);
        activity?.SetTag("faas.trigger", Kind == TriggerKind.Queue ? "pubsub" : "timer");
        var started = Stopwatch.GetTimestamp();
        var outcome = "success";
        try
        {
            return await _invoker(invocation);
        }
        catch
        {
            outcome = "failure";
            activity?.SetStatus(ActivityStatusCode.Error);
            throw;
        }
        finally
        {
            Telemetry.InvocationDuration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds,
                new("faas.name", Name), new("faas.trigger", Kind.ToString()), new("outcome", outcome));
        }
    }

    /// <summary>Turns a received message (with its body already decoded) into the trigger parameter's value.</summary>
    public object? ConvertQueueMessage(QueueMessage message, BinaryData body)
        => _queueMessageConverter is null
            ? throw new InvalidOperationException($"Function '{Name}' is not a queue function.")
            : _queueMessageConverter(message, body);

    public override string ToString() => $"{Name} ({Kind}: {Declaration.EntryPoint})";
}
