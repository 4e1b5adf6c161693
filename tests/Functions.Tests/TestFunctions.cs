using System.Collections.Concurrent;
using Azure.Storage.Queues.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;

namespace Serverless.Functions.Tests;

/// <summary>What the test functions saw; registered as a singleton so tests can read it.</summary>
public sealed class Recorder
{
    public ConcurrentQueue<object?> Calls { get; } = new();

    public ConcurrentQueue<Guid> Scopes { get; } = new();
}

/// <summary>A scoped dependency: one per invocation.</summary>
public sealed class PerInvocation
{
    public Guid Id { get; } = Guid.NewGuid();
}

public sealed record Order(string Id, int Quantity);

/// <summary>Functions only the tests declare (by hand-written metadata), each exercising one binding.</summary>
public sealed class TestFunctions(Recorder recorder, PerInvocation scoped)
{
    public IActionResult Hello(HttpRequest request) => new OkObjectResult(new { greeting = "hello" });

    public async Task<IActionResult> Echo(HttpRequest request, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(request.Body);
        var body = await reader.ReadToEndAsync(cancellationToken);
        return new ContentResult { Content = body, ContentType = "text/plain", StatusCode = 201 };
    }

    public IActionResult Item(HttpRequest request, string id, int? version)
        => new OkObjectResult(new { id, version, routeId = request.RouteValues["id"] });

    public IActionResult Boom(HttpRequest request) => throw new InvalidOperationException("a secret detail");

    public IActionResult Context(HttpRequest request, FunctionContext context)
    {
        recorder.Scopes.Enqueue(scoped.Id);
        return new OkObjectResult(new
        {
            name = context.FunctionDefinition.Name,
            invocationId = context.InvocationId,
            functionId = context.FunctionId,
            sameHttpContext = ReferenceEquals(context.GetHttpContext(), request.HttpContext),
            sameScope = ReferenceEquals(context.InstanceServices, request.HttpContext.RequestServices),
        });
    }

    public IResult Minimal(HttpRequest request) => Results.Text("minimal", statusCode: 202);

    public void Text(string message) => Record(message);

    public Task Bytes(byte[] message)
    {
        Record(message);
        return Task.CompletedTask;
    }

    public ValueTask Binary(BinaryData message)
    {
        Record(message);
        return ValueTask.CompletedTask;
    }

    public async Task<string> Message(QueueMessage message, CancellationToken cancellationToken)
    {
        await Task.Yield();
        Record(message);
        return message.MessageId;
    }

    public void Poco(Order message, FunctionContext context)
    {
        Record(message);
        Record(context.BindingContext.BindingData["DequeueCount"]);
    }

    public void Tick(TimerInfo timer) => Record(timer);

    public static int Static(string message) => message.Length;

    public void NeedsAnUnboundParameter(string message, int unbound) { }

    public void WrongTriggerType(int message) { }

    private void Record(object? value)
    {
        recorder.Calls.Enqueue(value);
        recorder.Scopes.Enqueue(scoped.Id);
    }
}
