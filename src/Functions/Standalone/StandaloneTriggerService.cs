using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Storage;

namespace Serverless.Functions.Standalone;

/// <summary>A queue function with its queue name and connection resolved from settings.</summary>
public sealed record QueueTriggerBinding(StandaloneFunction Function, string QueueName, string ConnectionString);

/// <summary>A timer function with its schedule resolved from settings.</summary>
public sealed record TimerTriggerBinding(StandaloneFunction Function, TimerSchedule Schedule, bool RunOnStartup);

/// <summary>
/// Runs the queue listeners and timer schedules of the standalone host. On stop it stops polling and
/// scheduling, signals the functions' cancellation token, and waits for invocations in flight until the
/// host's shutdown timeout; whatever is still running then is logged, never dropped silently.
/// </summary>
internal sealed partial class StandaloneTriggerService(
    IReadOnlyList<QueueTriggerBinding> queues,
    IReadOnlyList<TimerTriggerBinding> timers,
    QueueTriggerOptions queueOptions,
    TimeZoneInfo timeZone,
    IServiceScopeFactory scopes,
    QueueWake wake,
    EcsOptions ecs,
    TimeProvider time,
    ILoggerFactory loggers) : IHostedService, IDisposable
{
    private static readonly QueueClientOptions ClientOptions = new() { MessageEncoding = QueueMessageEncoding.None };

    private readonly CancellationTokenSource _stopping = new();
    private readonly List<QueueTriggerListener> _listeners = [];
    private readonly List<Task> _running = [];
    private readonly List<IDisposable> _registrations = [];
    private readonly ILogger _logger = loggers.CreateLogger("Serverless.Functions.Standalone.Triggers");

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Workers wake the queue triggers after they report (their commands carry this endpoint), as the
        // host's own sends wake them in-process. Without it the triggers still poll on their back-off.
        if (queues.Count > 0) wake.Listen(ecs.WakePort, ecs.WakeAddress);
        // Taking wakes, a trigger's idle poll only catches a message whose wake was lost: it may come far less often.
        var fallback = TimeSpan.FromSeconds(ecs.WakeFallbackPollSeconds);
        TimeSpan? maxPolling = wake.Endpoint is not null && fallback > queueOptions.MaxPollingInterval ? fallback : null;
        foreach (var binding in queues)
        {
            var function = binding.Function;
            var listener = new QueueTriggerListener(
                function.Name,
                new QueueClient(binding.ConnectionString, binding.QueueName, ClientOptions),
                new QueueClient(binding.ConnectionString, binding.QueueName + "-poison", ClientOptions),
                queueOptions,
                (message, body, token) => InvokeAsync(function, function.ConvertQueueMessage(message, body), QueueBindingData(message, body), token),
                time,
                loggers.CreateLogger($"Function.{function.Name}"),
                wake.Signal(binding.QueueName),
                maxPolling);
            _listeners.Add(listener);
            // A worker's reports arrive in its wake datagrams too, sealed for this process, ahead of their queued copies.
            _registrations.Add(wake.TakeExpress(binding.QueueName, listener.DeliverExpress));
            _running.Add(Task.Run(() => listener.RunAsync(_stopping.Token), CancellationToken.None));
        }
        foreach (var binding in timers)
        {
            var function = binding.Function;
            var scheduler = new TimerTriggerScheduler(
                function.Name,
                binding.Schedule,
                binding.RunOnStartup,
                (timer, token) => InvokeAsync(function, timer, null, token),
                time,
                timeZone,
                loggers.CreateLogger($"Function.{function.Name}"));
            _running.Add(Task.Run(() => scheduler.RunAsync(_stopping.Token), CancellationToken.None));
        }
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        try
        {
            await Task.WhenAll(_running).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            foreach (var listener in _listeners) listener.ReportAbandoned();
            LogShutdownTimedOut(_logger, _running.Count(t => !t.IsCompleted));
        }
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _stopping.Dispose();
    }

    private async Task InvokeAsync(
        StandaloneFunction function, object? trigger, IReadOnlyDictionary<string, object?>? bindingData, CancellationToken cancellationToken)
    {
        // One scope per invocation, as the worker creates one per invocation.
        await using var scope = scopes.CreateAsyncScope();
        await function.InvokeAsync(new StandaloneInvocation(function, scope.ServiceProvider, trigger, cancellationToken)
        {
            BindingData = bindingData,
        });
    }

    // The trigger metadata names the host gives a queue trigger.
    private static Dictionary<string, object?> QueueBindingData(QueueMessage message, BinaryData body) => new()
    {
        ["QueueTrigger"] = body.ToString(),
        ["Id"] = message.MessageId,
        ["PopReceipt"] = message.PopReceipt,
        ["DequeueCount"] = message.DequeueCount,
        ["InsertionTime"] = message.InsertedOn,
        ["ExpirationTime"] = message.ExpiresOn,
        ["NextVisibleTime"] = message.NextVisibleOn,
    };

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Shutdown timed out with {Count} queue listeners or timers still running their functions")]
    private static partial void LogShutdownTimedOut(ILogger logger, int count);
}
