using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Serverless.Core.Telemetry;

/// <summary>
/// The control plane's and the worker's OpenTelemetry sources: one <see cref="ActivitySource"/> and one
/// <see cref="Meter"/> each. A trace crosses the queues as a W3C <c>traceparent</c> carried in the message
/// (<see cref="Tasks.TaskCommand.TraceParent"/>, <see cref="Tasks.TaskStateChange.TraceParent"/>), so one
/// RunTask is one trace from the API call through the worker's start to the applied report.
/// </summary>
public static class Telemetry
{
    public const string ControlPlane = "Serverless.ControlPlane";
    public const string Worker = "Serverless.Worker";

    public static readonly ActivitySource Source = new(ControlPlane);
    public static readonly Meter Meter = new(ControlPlane);
    public static readonly ActivitySource WorkerSource = new(Worker);
    public static readonly Meter WorkerMeter = new(Worker);

    /// <summary>API calls, by <c>rpc.service</c>, <c>rpc.method</c> and <c>http.response.status_code</c>.</summary>
    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("api.requests", "{request}", "API calls answered");

    public static readonly Histogram<double> RequestDuration = Meter.CreateHistogram<double>("api.duration", "ms", "API call latency");

    /// <summary>Queue-message and timer invocations (a reconcile is one), by <c>faas.name</c>, <c>faas.trigger</c> and <c>outcome</c>.</summary>
    public static readonly Histogram<double> InvocationDuration = Meter.CreateHistogram<double>("function.duration", "ms", "Queue and timer function runs");

    /// <summary>Tasks the worker started (RUNNING reached) and failed to start, by cluster.</summary>
    public static readonly Counter<long> TasksStarted = WorkerMeter.CreateCounter<long>("tasks.started", "{task}");
    public static readonly Counter<long> TasksFailed = WorkerMeter.CreateCounter<long>("tasks.failed", "{task}");

    /// <summary>The current activity as a <c>traceparent</c> for a message, or null outside any trace.</summary>
    public static string? TraceParent => Activity.Current is { IdFormat: ActivityIdFormat.W3C } current ? current.Id : null;

    /// <summary>Starts an activity continuing the trace of a message's <c>traceparent</c> (a new trace without one).</summary>
    public static Activity? StartFrom(ActivitySource source, string name, string? traceParent, ActivityKind kind = ActivityKind.Consumer)
        => ActivityContext.TryParse(traceParent, null, out var parent)
            ? source.StartActivity(name, kind, parent)
            : source.StartActivity(name, kind);
}
