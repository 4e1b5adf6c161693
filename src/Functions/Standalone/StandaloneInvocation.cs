using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;

namespace Serverless.Functions.Standalone;

/// <summary>
/// The state of one invocation that a compiled invoker binds parameters from. Created by the trigger
/// (HTTP endpoint, queue listener, timer) and used once.
/// </summary>
public sealed class StandaloneInvocation
{
    private string? _invocationId;
    private FunctionContext? _functionContext;

    /// <param name="function">The function being invoked.</param>
    /// <param name="services">The invocation's scope: the function class and its dependencies are resolved here.</param>
    /// <param name="triggerValue">The trigger value, already of the trigger parameter's type.</param>
    /// <param name="cancellationToken">Signalled when the host stops (HTTP: when the request is aborted).</param>
    public StandaloneInvocation(
        StandaloneFunction function, IServiceProvider services, object? triggerValue, CancellationToken cancellationToken)
    {
        Function = function;
        Services = services;
        TriggerValue = triggerValue;
        CancellationToken = cancellationToken;
    }

    public StandaloneFunction Function { get; }

    public IServiceProvider Services { get; }

    public object? TriggerValue { get; }

    public CancellationToken CancellationToken { get; }

    /// <summary>The request, for HTTP functions.</summary>
    public HttpContext? HttpContext { get; init; }

    /// <summary>Trigger metadata (queue message id, dequeue count, …) exposed as <see cref="BindingContext.BindingData"/>.</summary>
    public IReadOnlyDictionary<string, object?>? BindingData { get; init; }

    /// <summary>A new id per invocation, created on first use so HTTP requests that never ask pay nothing.</summary>
    public string InvocationId => _invocationId ??= Guid.NewGuid().ToString();

    /// <summary>The <see cref="FunctionContext"/> handed to functions that take one; created on first use.</summary>
    public FunctionContext FunctionContext => _functionContext ??= new StandaloneFunctionContext(this);

    /// <summary>A route value of the HTTP request as a string, for parameters named after route parameters.</summary>
    public string? GetRouteValue(string name)
        => HttpContext?.Request.RouteValues.TryGetValue(name, out var value) == true ? value?.ToString() : null;
}
