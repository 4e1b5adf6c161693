using System.Collections.Immutable;
using System.Diagnostics;
using Microsoft.Azure.Functions.Worker;

namespace Serverless.Functions.Standalone;

/// <summary>
/// The <see cref="FunctionContext"/> of the standalone host: identity, definition, services, items and the
/// cancellation token. Features and retry context belong to the Functions worker pipeline and are not
/// available here.
/// </summary>
internal sealed class StandaloneFunctionContext : FunctionContext
{
    // The key under which Microsoft.Azure.Functions.Worker.Extensions.Http.AspNetCore keeps the request's
    // HttpContext, so its GetHttpContext() extension works in both hosts.
    private const string HttpContextKey = "HttpRequestContext";

    private readonly StandaloneInvocation _invocation;
    private IDictionary<object, object>? _items;

    public StandaloneFunctionContext(StandaloneInvocation invocation)
    {
        _invocation = invocation;
        InstanceServices = invocation.Services;
    }

    public override string InvocationId => _invocation.InvocationId;

    public override string FunctionId => _invocation.Function.Definition.Id;

    public override FunctionDefinition FunctionDefinition => _invocation.Function.Definition;

    public override IServiceProvider InstanceServices { get; set; }

    public override IDictionary<object, object> Items
    {
        get
        {
            if (_items is null)
            {
                _items = new Dictionary<object, object>();
                if (_invocation.HttpContext is { } http) _items[HttpContextKey] = http;
            }
            return _items;
        }
        set => _items = value;
    }

    public override CancellationToken CancellationToken => _invocation.CancellationToken;

    public override TraceContext TraceContext { get; } = new ActivityTraceContext(Activity.Current);

    public override BindingContext BindingContext => new StandaloneBindingContext(_invocation.BindingData);

    public override RetryContext RetryContext
        => throw new NotSupportedException("RetryContext is not available in the standalone host: it runs no retry policies.");

    public override IInvocationFeatures Features
        => throw new NotSupportedException(
            "FunctionContext.Features belongs to the Functions worker pipeline and is not available in the standalone host.");

    private sealed class ActivityTraceContext(Activity? activity) : TraceContext
    {
        public override string TraceParent { get; } = activity?.Id ?? "";

        public override string TraceState { get; } = activity?.TraceStateString ?? "";
    }

    private sealed class StandaloneBindingContext(IReadOnlyDictionary<string, object?>? data) : BindingContext
    {
        public override IReadOnlyDictionary<string, object?> BindingData { get; } =
            data ?? ImmutableDictionary<string, object?>.Empty;
    }
}

/// <summary>The <see cref="FunctionDefinition"/> of a function the standalone host runs.</summary>
internal sealed class StandaloneFunctionDefinition(
    string name, string entryPoint, string pathToAssembly, ImmutableArray<FunctionParameter> parameters,
    IReadOnlyList<BindingDeclaration> bindings) : FunctionDefinition
{
    public override ImmutableArray<FunctionParameter> Parameters { get; } = parameters;

    public override string PathToAssembly { get; } = pathToAssembly;

    public override string EntryPoint { get; } = entryPoint;

    // Stable for the process, unique per function, like the host's function ids.
    public override string Id { get; } = Guid.NewGuid().ToString();

    public override string Name { get; } = name;

    public override IImmutableDictionary<string, BindingMetadata> InputBindings { get; } =
        Bindings(bindings, output: false);

    public override IImmutableDictionary<string, BindingMetadata> OutputBindings { get; } =
        Bindings(bindings, output: true);

    private static IImmutableDictionary<string, BindingMetadata> Bindings(IReadOnlyList<BindingDeclaration> bindings, bool output)
        => bindings
            .Where(b => string.Equals(b.Direction, "Out", StringComparison.OrdinalIgnoreCase) == output)
            .ToImmutableDictionary(b => b.Name, b => (BindingMetadata)new Binding(b));

    private sealed class Binding(BindingDeclaration declaration) : BindingMetadata
    {
        public override string Name => declaration.Name;

        public override string Type => declaration.Type;

        public override BindingDirection Direction =>
            string.Equals(declaration.Direction, "Out", StringComparison.OrdinalIgnoreCase) ? BindingDirection.Out : BindingDirection.In;
    }
}
