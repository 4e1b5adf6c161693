using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Serverless.Functions.Standalone;

namespace Serverless.Functions.Tests;

/// <summary>Waits for something a background loop does, with a generous ceiling that only guards against hangs.</summary>
internal static class Eventually
{
    private static readonly TimeSpan Ceiling = TimeSpan.FromSeconds(60);

    public static async Task TrueAsync(Func<bool> condition, string what)
        => await TrueAsync(() => Task.FromResult(condition()), what);

    public static async Task TrueAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Ceiling;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Gave up waiting for: {what}");
            await Task.Delay(20);
        }
    }
}

/// <summary>Keeps every log line, formatted, for assertions on what an operator would read.</summary>
internal sealed class ListLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> Entries { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
        Func<TState, Exception?, string> formatter)
        => Entries.Enqueue((logLevel, formatter(state, exception), exception));

    public IEnumerable<string> At(LogLevel level) => Entries.Where(e => e.Level == level).Select(e => e.Message);
}

/// <summary>Builds function declarations the way the Worker SDK writes them into functions.metadata.</summary>
internal static class Declarations
{
    public const string ScriptFile = "Serverless.Functions.Tests.dll";

    public static FunctionDeclaration Http(string name, string entryPoint, string? route = null, string parameter = "request",
        params string[] methods)
        => Parse(name, entryPoint,
            $$"""
              {"name":"{{parameter}}","direction":"In","type":"httpTrigger","authLevel":"Anonymous",
               "methods":[{{string.Join(',', methods.Select(m => $"\"{m}\""))}}]{{(route is null ? "" : $",\"route\":\"{route}\"")}}},
              {"name":"$return","type":"http","direction":"Out"}
              """);

    public static FunctionDeclaration Queue(string name, string entryPoint, string queueName, string parameter = "message")
        => Parse(name, entryPoint,
            $$"""{"name":"{{parameter}}","direction":"In","type":"queueTrigger","dataType":"String","queueName":"{{queueName}}"}""");

    public static FunctionDeclaration Timer(string name, string entryPoint, string schedule, bool runOnStartup = false)
        => Parse(name, entryPoint,
            $$"""{"name":"timer","direction":"In","type":"timerTrigger","schedule":"{{schedule}}","runOnStartup":{{(runOnStartup ? "true" : "false")}}}""");

    public static FunctionDeclaration Parse(string name, string entryPoint, string bindings)
        => FunctionMetadataReader.Parse($"[{Json(name, entryPoint, bindings)}]").Single();

    public static string Json(string name, string entryPoint, string bindings)
        => $$"""
             {"name":"{{name}}","scriptFile":"{{ScriptFile}}","entryPoint":"{{entryPoint}}","language":"dotnet-isolated",
              "properties":{"IsCodeless":false},"bindings":[{{bindings}}]}
             """;

    public static string EntryPoint<T>(string method) => $"{typeof(T).FullName}.{method}";
}
