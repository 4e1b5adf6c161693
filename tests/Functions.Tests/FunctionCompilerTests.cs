using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Serverless.Functions.Standalone;

namespace Serverless.Functions.Tests;

public sealed class FunctionCompilerTests
{
    private static readonly string BaseDirectory = AppContext.BaseDirectory;

    private readonly Recorder _recorder = new();
    private readonly CancellationToken _token = new CancellationTokenSource().Token;
    private readonly ServiceProvider _services;

    public FunctionCompilerTests()
    {
        _services = new ServiceCollection()
            .AddSingleton(_recorder)
            .AddScoped<PerInvocation>()
            .BuildServiceProvider();
    }

    private static StandaloneFunction Compile(FunctionDeclaration declaration) => FunctionCompiler.Compile(declaration, BaseDirectory);

    private static StandaloneFunction Queue(string method) => Compile(
        Declarations.Queue(method, Declarations.EntryPoint<TestFunctions>(method), "orders"));

    private async Task<object?> InvokeAsync(StandaloneFunction function, object? trigger, IReadOnlyDictionary<string, object?>? data = null)
    {
        await using var scope = _services.CreateAsyncScope();
        return await function.InvokeAsync(
            new StandaloneInvocation(function, scope.ServiceProvider, trigger, _token) { BindingData = data });
    }

    private static QueueMessage Message(string body, long dequeueCount = 1)
        => QueuesModelFactory.QueueMessage("id-1", "receipt", body, dequeueCount);

    [Fact]
    public async Task A_queue_message_is_a_consumer_span_and_a_timed_invocation_with_its_outcome()
    {
        var spans = new List<System.Diagnostics.Activity>();
        var metrics = new List<Metric>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Core.Telemetry.Telemetry.ControlPlane).AddInMemoryExporter(spans).Build();
        using var meter = Sdk.CreateMeterProviderBuilder().AddMeter(Core.Telemetry.Telemetry.ControlPlane).AddInMemoryExporter(metrics).Build();
        var function = Queue(nameof(TestFunctions.Text));

        await InvokeAsync(function, function.ConvertQueueMessage(Message("raw"), BinaryData.FromString("decoded")));
        tracer!.ForceFlush();
        meter!.ForceFlush();

        Assert.Contains(spans, s => s.DisplayName == function.Name && s.Kind == System.Diagnostics.ActivityKind.Consumer);
        var outcomes = new List<string>();
        foreach (var point in metrics.Single(m => m.Name == "function.duration").GetMetricPoints())
        {
            var tags = new Dictionary<string, object?>();
            foreach (var tag in point.Tags) tags[tag.Key] = tag.Value;
            if ((string?)tags["faas.name"] == function.Name) outcomes.Add((string)tags["outcome"]!);
        }
        Assert.Equal(["success"], outcomes);
    }

    [Fact]
    public async Task A_queue_function_taking_a_string_receives_the_body()
    {
        var function = Queue(nameof(TestFunctions.Text));

        await InvokeAsync(function, function.ConvertQueueMessage(Message("raw"), BinaryData.FromString("decoded")));

        Assert.Equal("decoded", Assert.Single(_recorder.Calls));
    }

    [Fact]
    public async Task A_queue_function_may_take_bytes_BinaryData_a_QueueMessage_or_a_JSON_object()
    {
        var body = BinaryData.FromString("""{"id":"o-1","quantity":3}""");
        foreach (var method in new[] { nameof(TestFunctions.Bytes), nameof(TestFunctions.Binary), nameof(TestFunctions.Message), nameof(TestFunctions.Poco) })
        {
            var function = Queue(method);
            await InvokeAsync(function, function.ConvertQueueMessage(Message("raw", dequeueCount: 2), body),
                new Dictionary<string, object?> { ["DequeueCount"] = 2L });
        }

        var calls = _recorder.Calls.ToArray();
        Assert.Equal(body.ToArray(), Assert.IsType<byte[]>(calls[0]));
        Assert.Equal(body.ToString(), Assert.IsType<BinaryData>(calls[1]).ToString());
        var message = Assert.IsType<QueueMessage>(calls[2]);
        Assert.Equal(("id-1", 2L, body.ToString()), (message.MessageId, message.DequeueCount, message.Body.ToString()));
        Assert.Equal(new Order("o-1", 3), calls[3]);
        Assert.Equal(2L, calls[4]);
    }

    [Fact]
    public async Task The_return_value_of_an_async_function_is_the_invocation_result()
    {
        var function = Queue(nameof(TestFunctions.Message));

        var result = await InvokeAsync(function, Message("body"));

        Assert.Equal("id-1", result);
    }

    [Fact]
    public async Task A_static_function_needs_no_instance()
    {
        var function = Queue(nameof(TestFunctions.Static));

        Assert.Equal(5, await InvokeAsync(function, "hello"));
    }

    [Fact]
    public async Task Each_invocation_gets_a_new_instance_from_its_own_scope()
    {
        var function = Queue(nameof(TestFunctions.Text));

        await InvokeAsync(function, "a");
        await InvokeAsync(function, "b");

        Assert.Equal(2, _recorder.Scopes.Distinct().Count());
    }

    [Fact]
    public async Task The_FunctionContext_carries_the_invocation_identity_definition_and_services()
    {
        var function = Compile(Declarations.Parse("WithContext", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Poco)),
            """{"name":"message","direction":"In","type":"queueTrigger","queueName":"orders"}"""));
        await using var scope = _services.CreateAsyncScope();
        var invocation = new StandaloneInvocation(function, scope.ServiceProvider, new Order("o", 1), _token)
        {
            BindingData = new Dictionary<string, object?> { ["DequeueCount"] = 1L },
        };

        await function.InvokeAsync(invocation);

        var context = invocation.FunctionContext;
        Assert.Equal(invocation.InvocationId, context.InvocationId);
        Assert.Equal("WithContext", context.FunctionDefinition.Name);
        Assert.Equal(function.Definition.Id, context.FunctionId);
        Assert.Same(scope.ServiceProvider, context.InstanceServices);
        Assert.Equal(_token, context.CancellationToken);
        Assert.Contains("message", context.FunctionDefinition.InputBindings.Keys);
        Assert.Equal(["message", "context"], context.FunctionDefinition.Parameters.Select(p => p.Name));
        Assert.Throws<NotSupportedException>(() => { _ = context.Features; });
    }

    [Fact]
    public void A_timer_function_binds_TimerInfo()
    {
        var function = Compile(Declarations.Timer("Tick", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Tick)), "0 * * * * *"));

        Assert.Equal((TriggerKind.Timer, typeof(TimerInfo)), (function.Kind, function.TriggerParameterType));
    }

    [Fact]
    public void An_unsupported_trigger_fails_at_startup_naming_the_function()
    {
        var declaration = Declarations.Parse("Blobby", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Text)),
            """{"name":"message","direction":"In","type":"blobTrigger","path":"c/{name}"}""");

        var error = Assert.Throws<InvalidOperationException>(() => Compile(declaration));

        Assert.Contains("'Blobby'", error.Message);
        Assert.Contains("blobTrigger", error.Message);
    }

    [Fact]
    public void An_output_binding_fails_at_startup_naming_the_function()
    {
        var declaration = Declarations.Parse("Forward", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Message)),
            """
            {"name":"message","direction":"In","type":"queueTrigger","queueName":"in"},
            {"name":"$return","direction":"Out","type":"queue","queueName":"out"}
            """);

        var error = Assert.Throws<InvalidOperationException>(() => Compile(declaration));

        Assert.Contains("'Forward'", error.Message);
        Assert.Contains("queue", error.Message);
    }

    [Theory]
    [InlineData(nameof(TestFunctions.NeedsAnUnboundParameter), "unbound")]
    [InlineData(nameof(TestFunctions.WrongTriggerType), "System.Int32")]
    [InlineData("NoSuchMethod", "NoSuchMethod")]
    public void A_function_whose_parameters_cannot_be_bound_fails_at_startup(string method, string named)
    {
        var error = Assert.Throws<InvalidOperationException>(() => Queue(method));

        Assert.Contains($"'{method}'", error.Message);
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void An_HTTP_function_knows_its_route_parameters()
    {
        var function = Compile(Declarations.Http("Item", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Item)),
            route: "items/{id}/{version:int?}", methods: "get"));

        Assert.Equal(["id", "version"], function.RouteParameters);
    }
}
