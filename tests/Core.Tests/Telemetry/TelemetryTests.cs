using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Logs;
using Serverless.Core.Reconciliation;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.Core.Tests.Api;
using Serverless.Core.Tests.Tasks;
using Serverless.TestSupport;
using CoreTelemetry = Serverless.Core.Telemetry.Telemetry;

namespace Serverless.Core.Tests.Telemetry;

/// <summary>Traces and metrics as an OpenTelemetry exporter receives them (the in-memory exporter).</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TelemetryTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;

    // Every test here runs inside a trace of its own: what is exported under it is this test's, whatever runs beside it.
    private const string TestSourceName = "Serverless.Tests.Telemetry";
    private static readonly ActivitySource TestSource = new(TestSourceName);

    [Fact]
    public async Task An_API_call_is_a_server_span_of_the_callers_trace_and_counted_by_action_and_status()
    {
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource(CoreTelemetry.ControlPlane, TestSourceName).AddInMemoryExporter(spans).Build();
        using var meter = Sdk.CreateMeterProviderBuilder().AddMeter(CoreTelemetry.ControlPlane).AddInMemoryExporter(metrics).Build();
        using var api = new ApiHarness(azurite, TestNames.Unique<TelemetryTests>());

        ActivityTraceId traceId;
        using (var test = TestSource.StartActivity("test"))
        {
            traceId = test!.TraceId;
            await api.SendAsync($"{LogsActions.TargetPrefix}.CreateLogGroup", Encoding.UTF8.GetBytes("""{"logGroupName":"traced"}"""), _token);
            await api.SendAsync($"{LogsActions.TargetPrefix}.CreateLogGroup", Encoding.UTF8.GetBytes("""{"logGroupName":"traced"}"""), _token);
        }
        tracer!.ForceFlush();
        meter!.ForceFlush();

        var calls = spans.Where(s => s.TraceId == traceId && s.Source.Name == CoreTelemetry.ControlPlane).ToList();
        Assert.Equal(2, calls.Count);
        Assert.All(calls, s => Assert.Equal((ActivityKind.Server, "CreateLogGroup", "Logs_20140328"), (s.Kind, s.DisplayName, (string?)s.GetTagItem("rpc.service"))));
        Assert.Equal([200, 400], calls.Select(s => (int)s.GetTagItem("http.response.status_code")!));

        var requests = metrics.Single(m => m.Name == "api.requests");
        var statuses = new List<long>();
        foreach (var point in requests.GetMetricPoints())
        {
            var tags = new Dictionary<string, object?>();
            foreach (var tag in point.Tags) tags[tag.Key] = tag.Value;
            if ((string?)tags["rpc.method"] == "CreateLogGroup") statuses.Add(Convert.ToInt64(tags["http.response.status_code"]));
        }
        Assert.Contains(200L, statuses);
        Assert.Contains(400L, statuses);
        Assert.Contains(metrics, m => m.Name == "api.duration");
    }

    [Fact]
    public async Task A_launched_tasks_Start_command_carries_the_trace_of_the_call_that_launched_it()
    {
        using var listener = new ActivityListener
        {
            // By name: when this test runs first, the listener sees TestSource being made, before the field holds it.
            ShouldListenTo = source => source.Name == TestSourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        var world = new TaskWorld(azurite);
        var definition = await world.InitializeAsync(_token);
        var instance = await world.InstanceAsync(_token);

        using (var call = TestSource.StartActivity("RunTask"))
        {
            Assert.Single((await world.Launcher.LaunchAsync(world.Launch(definition), _token)).Tasks);
            var command = Assert.Single(await world.CommandsAsync(instance.Id, _token));
            Assert.Equal(call!.Id, command.TraceParent);
        }
    }

    [Fact]
    public async Task Applying_a_report_continues_the_trace_its_traceparent_names()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource(CoreTelemetry.ControlPlane).AddInMemoryExporter(spans).Build();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var cluster = TestNames.Unique("traced");
        var storage = new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("Traced") });
        var tasks = new TaskStore(storage, TaskRows.Arns);
        var instances = new ContainerInstanceStore(storage, TaskRows.Arns, time);
        var wake = new QueueWake(NullLogger<QueueWake>.Instance);
        var applier = new TaskStateApplier(tasks, instances,
            new TaskLauncher(instances, tasks, storage, TaskRows.Arns, new EcsOptions(), wake, time, NullLogger<TaskLauncher>.Instance),
            new ReconcileQueue(storage, new QueueWake(NullLogger<QueueWake>.Instance)), TaskRows.Arns, time, NullLogger<TaskStateApplier>.Instance);
        var task = await tasks.InsertAsync(TaskRows.New(cluster, "family:web", "instance", time.GetUtcNow()) with
        {
            Memory = 64,
            Containers = [new TaskContainer { Name = "app", Id = Guid.NewGuid().ToString(), Image = "local/busybox:latest" }],
        }, _token);
        var workerSpan = ActivityContext.Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", null);

        await applier.ApplyAsync([new TaskStateChange
        {
            Cluster = cluster,
            TaskArn = TaskRows.Arns.Task(cluster, task.Id),
            ContainerInstanceArn = TaskRows.Arns.ContainerInstance(cluster, "instance"),
            LastStatus = EcsTaskStatus.Running,
            Containers = [new ContainerStateChange { Name = "app", LastStatus = EcsTaskStatus.Running }],
            ObservedAt = time.GetUtcNow(),
            TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        }], _token);
        tracer!.ForceFlush();

        var applied = Assert.Single(spans, s => s.TraceId == workerSpan.TraceId);
        Assert.Equal(("ApplyTaskState", workerSpan.SpanId, EcsTaskStatus.Running), (applied.DisplayName, applied.ParentSpanId, (string?)applied.GetTagItem("ecs.last_status")));
    }

    [Fact]
    public async Task A_reconcile_message_carries_the_trace_that_enqueued_it_and_its_reconcile_continues_it()
    {
        var spans = new List<Activity>();
        using var tracer = Sdk.CreateTracerProviderBuilder().AddSource(CoreTelemetry.ControlPlane, TestSourceName).AddInMemoryExporter(spans).Build();
        var storage = new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("TracedReconcile") });
        var queue = new ReconcileQueue(storage, new QueueWake(NullLogger<QueueWake>.Instance));
        var service = new Serverless.Core.Services.ServiceKey(TestNames.Unique("traced"), "web");
        var reconciles = await storage.QueueAsync(ReconcileQueue.QueueName, _token);
        // The reconcile queue is shared with every other test: find this test's message, and hold the others only a second.
        async Task<Azure.Storage.Queues.Models.QueueMessage> OursAsync()
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                var batch = (await reconciles.ReceiveMessagesAsync(32, TimeSpan.FromSeconds(1), _token)).Value;
                if (batch.FirstOrDefault(m => m.MessageText.Contains(service.Cluster, StringComparison.Ordinal)) is { } mine)
                {
                    await reconciles.DeleteMessageAsync(mine.MessageId, mine.PopReceipt, _token);
                    return mine;
                }
                Assert.True(DateTime.UtcNow < deadline, "the reconcile message never arrived");
                await Task.Delay(100, _token);
            }
        }

        ActivityTraceId traceId;
        using (var call = TestSource.StartActivity("UpdateService"))
        {
            traceId = call!.TraceId;
            await queue.EnqueueAsync(service, null, _token);
            var message = await OursAsync();
            var (key, activity) = ReconcileQueue.Begin(message.MessageText);
            using (activity)
            {
                Assert.Equal(service, key);
                Assert.Equal((call!.TraceId, call.SpanId), (activity!.TraceId, activity.ParentSpanId));
                // "Look again later" stays in the same trace.
                await queue.EnqueueAsync(service, null, _token);
            }
            var requeued = await OursAsync();
            var (_, again) = ReconcileQueue.Begin(requeued.MessageText);
            again!.Dispose();
            Assert.Equal((call.TraceId, activity.SpanId), (again.TraceId, again.ParentSpanId));
        }
        tracer!.ForceFlush();
        Assert.Equal(2, spans.Count(s => s.DisplayName == "Reconcile" && s.TraceId == traceId));
    }
}
