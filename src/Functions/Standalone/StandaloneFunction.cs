using System.Reflection;
using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker;

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

    /// <summary>Runs the function once. Exceptions thrown by the function propagate unchanged.</summary>
    public ValueTask<object?> InvokeAsync(StandaloneInvocation invocation) => _invoker(invocation);

    /// <summary>Turns a received message (with its body already decoded) into the trigger parameter's value.</summary>
    public object? ConvertQueueMessage(QueueMessage message, BinaryData body)
        => _queueMessageConverter is null
            ? throw new InvalidOperationException($"Function '{Name}' is not a queue function.")
            : _queueMessageConverter(message, body);

    public override string ToString() => $"{Name} ({Kind}: {Declaration.EntryPoint})";
}
