using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Trace;
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
}
