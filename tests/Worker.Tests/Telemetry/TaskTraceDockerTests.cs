using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Serverless.Core;
using Serverless.Core.Reconciliation;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;
using CoreTelemetry = Serverless.Core.Telemetry.Telemetry;

namespace Serverless.Worker.Tests.Telemetry;

/// <summary>The worker's part of a RunTask trace, as an OpenTelemetry exporter receives it, with real Docker.</summary>
public sealed class TaskTraceDockerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    [Fact]
    public async Task A_start_command_is_traced_as_a_child_of_its_sender_and_the_RUNNING_report_carries_that_trace()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource(CoreTelemetry.Worker).AddInMemoryExporter(spans).Build();
        await using var worker = await WorkerHarness.StartAsync(fixture, output);
        var definition = await worker.RegisterAsync("""
            {"family": "traced", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        // What the control plane's RunTask span put into the command.
        var sender = ActivityContext.Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", null);
        var start = worker.StartCommand(definition) with { TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" };

        await worker.Runner.StartAsync(start, redelivered: false, worker.Stopping);
        var running = await fixture.Events.WaitForStatusAsync(start.TaskArn, "RUNNING", worker.Stopping);
        await worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), worker.Stopping);
        await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);
        tracer!.ForceFlush();

        var startSpan = Assert.Single(spans, s => s.TraceId == sender.TraceId);
        Assert.Equal(("StartTask", sender.SpanId), (startSpan.DisplayName, startSpan.ParentSpanId));
        Assert.True(ActivityContext.TryParse(running.TraceParent, null, out var reported));
        Assert.Equal((sender.TraceId, startSpan.SpanId), (reported.TraceId, reported.SpanId));
    }

    private static readonly ActivitySource Caller = new("Serverless.Tests.RunTask");

    [Fact]
    public async Task One_RunTask_is_one_trace_from_the_launch_through_the_workers_start_to_the_applied_RUNNING_report()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder()
            .AddSource(CoreTelemetry.ControlPlane, CoreTelemetry.Worker, Caller.Name).AddInMemoryExporter(spans).Build();
        await using var worker = await WorkerHarness.StartAsync(fixture, output);
        await worker.Registration.RegisterAsync(worker.Stopping);
        var definition = await worker.RegisterAsync("""
            {"family": "traced-run", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        // The control plane's side, on the worker's storage: RunTask's launch and the task-events applier.
        var launcher = new TaskLauncher(worker.Instances, worker.Tasks, worker.Get<StorageClients>(), worker.Arns, worker.Get<EcsOptions>(),
            worker.Get<QueueWake>(), TimeProvider.System, NullLogger<TaskLauncher>.Instance);
        var applier = new TaskStateApplier(worker.Tasks, worker.Instances, launcher, worker.Get<ReconcileQueue>(), worker.Arns, TimeProvider.System,
            NullLogger<TaskStateApplier>.Instance);
        _ = worker.Commands.RunAsync(worker.Stopping);

        ActivityContext call;
        TaskRecord launched;
        using (var runTask = Caller.StartActivity("RunTask", ActivityKind.Server))
        {
            call = runTask!.Context;
            launched = Assert.Single((await launcher.LaunchAsync(new LaunchRequest
            {
                Cluster = WorkerHarness.Cluster, Definition = definition, Count = 1, Group = "family:traced-run",
            }, worker.Stopping)).Tasks);
        }
        var taskArn = worker.Arns.Task(WorkerHarness.Cluster, launched.Id);
        var running = await fixture.Events.WaitForStatusAsync(taskArn, "RUNNING", worker.Stopping);
        await applier.ApplyAsync([running], worker.Stopping);
        await worker.Runner.StopAsync(WorkerHarness.StopCommand(taskArn), worker.Stopping);
        await fixture.Events.WaitForStatusAsync(taskArn, "STOPPED", worker.Stopping);
        tracer!.ForceFlush();

        var trace = spans.Where(s => s.TraceId == call.TraceId).ToList();
        var start = Assert.Single(trace, s => s.DisplayName == "StartTask");
        var applied = Assert.Single(trace, s => s.DisplayName == "ApplyTaskState");
        Assert.Equal(call.SpanId, start.ParentSpanId);
        Assert.Equal(start.SpanId, applied.ParentSpanId);
        Assert.Equal("RUNNING", applied.GetTagItem("ecs.last_status"));
    }
}
