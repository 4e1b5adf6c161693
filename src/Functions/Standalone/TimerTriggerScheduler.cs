using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;

namespace Serverless.Functions.Standalone;

/// <summary>
/// Runs one timer-triggered function on its schedule. Invocations never overlap: the next occurrence is
/// computed after the previous invocation ends, so occurrences that pass while it runs are skipped, as in
/// the host. <c>IsPastDue</c> is set when at least one whole occurrence was missed (the process was
/// suspended or starved).
/// </summary>
public sealed partial class TimerTriggerScheduler(
    string function, TimerSchedule schedule, bool runOnStartup, Func<TimerInfo, CancellationToken, Task> handler,
    TimeProvider time, TimeZoneInfo zone, ILogger logger)
{
    // Task.Delay accepts at most ~49 days; yearly schedules wait in steps.
    private static readonly TimeSpan LongestWait = TimeSpan.FromDays(1);

    // Boxed so it is read and written whole across threads.
    private volatile object? _nextOccurrence;

    /// <summary>The occurrence the scheduler is waiting for; null while an invocation runs.</summary>
    public DateTimeOffset? NextOccurrence => (DateTimeOffset?)_nextOccurrence;

    /// <summary>Runs until <paramref name="stoppingToken"/> is signalled; the function receives the same token.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        try
        {
            await ScheduleAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task ScheduleAsync(CancellationToken stoppingToken)
    {
        DateTimeOffset? last = null;
        LogScheduled(logger, function, schedule.ToString() ?? "", runOnStartup);
        if (runOnStartup)
        {
            var now = time.GetUtcNow();
            await FireAsync(last, now, schedule.GetNextOccurrence(now, zone), isPastDue: false, stoppingToken);
            last = now;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            var next = schedule.GetNextOccurrence(time.GetUtcNow(), zone);
            if (next is null)
            {
                LogNoMoreOccurrences(logger, function);
                return;
            }
            _nextOccurrence = next;
            await WaitUntilAsync(next.Value, stoppingToken);
            _nextOccurrence = null;

            var fired = time.GetUtcNow();
            var following = schedule.GetNextOccurrence(fired, zone);
            var missed = schedule.GetNextOccurrence(next.Value, zone) is { } afterNext && afterNext <= fired;
            await FireAsync(last, fired, following, missed, stoppingToken);
            last = next;
        }
    }

    private async Task WaitUntilAsync(DateTimeOffset due, CancellationToken stoppingToken)
    {
        // Timers may wake a little early; keep waiting until the clock has reached the occurrence.
        for (var remaining = due - time.GetUtcNow(); remaining > TimeSpan.Zero; remaining = due - time.GetUtcNow())
        {
            await Task.Delay(remaining < LongestWait ? remaining : LongestWait, time, stoppingToken);
        }
    }

    private async Task FireAsync(
        DateTimeOffset? last, DateTimeOffset now, DateTimeOffset? next, bool isPastDue, CancellationToken stoppingToken)
    {
        var info = new TimerInfo
        {
            IsPastDue = isPastDue,
            ScheduleStatus = new ScheduleStatus
            {
                Last = last is { } l ? TimeZoneInfo.ConvertTime(l, zone).DateTime : DateTime.MinValue,
                Next = next is { } n ? TimeZoneInfo.ConvertTime(n, zone).DateTime : DateTime.MaxValue,
                LastUpdated = TimeZoneInfo.ConvertTime(now, zone).DateTime,
            },
        };
        try
        {
            await handler(info, stoppingToken);
            LogCompleted(logger, function, isPastDue);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            LogCancelledByShutdown(logger, function);
            throw;
        }
        catch (Exception e)
        {
            // A failed run does not stop the schedule; the next occurrence runs as usual.
            LogFailed(logger, e, function, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Timer function {Function}: schedule {Schedule}, run on startup {RunOnStartup}")]
    private static partial void LogScheduled(ILogger logger, string function, string schedule, bool runOnStartup);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Timer function {Function} completed (past due {IsPastDue})")]
    private static partial void LogCompleted(ILogger logger, string function, bool isPastDue);

    [LoggerMessage(Level = LogLevel.Error, Message = "Timer function {Function} failed: {Error}")]
    private static partial void LogFailed(ILogger logger, Exception exception, string function, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "Timer function {Function} was cancelled by shutdown")]
    private static partial void LogCancelledByShutdown(ILogger logger, string function);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Timer function {Function} has no further occurrences")]
    private static partial void LogNoMoreOccurrences(ILogger logger, string function);
}
