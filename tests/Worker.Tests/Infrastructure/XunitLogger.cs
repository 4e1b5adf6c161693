using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Infrastructure;

/// <summary>The worker's log lines in the test's output, so a failing Docker test shows what the worker did.</summary>
public sealed class XunitLoggerProvider(ITestOutputHelper output) : ILoggerProvider
{
    private readonly DateTimeOffset _start = DateTimeOffset.UtcNow;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

    public void Dispose()
    {
    }

    private void Write(string line)
    {
        try
        {
            output.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // The test already finished; background work outlived it.
        }
    }

    private sealed class Logger(XunitLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var elapsed = (DateTimeOffset.UtcNow - provider._start).TotalSeconds;
            provider.Write($"{elapsed,7:0.000} {logLevel,-11} {category}: {formatter(state, exception)}{(exception is null ? "" : "\n" + exception)}");
        }
    }
}
