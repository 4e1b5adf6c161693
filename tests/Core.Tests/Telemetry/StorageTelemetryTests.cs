using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using OpenTelemetry.Trace;
using Serverless.Core.Storage;
using Serverless.Core.Telemetry;
using Serverless.TestSupport;
using CoreTelemetry = Serverless.Core.Telemetry.Telemetry;

namespace Serverless.Core.Tests.Telemetry;

/// <summary>Storage calls, conflicts, message age and queue depth as a metrics listener sees them; Azure Monitor's exporter against a local ingestion endpoint.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class StorageTelemetryTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;

    /// <summary>Every measurement of the control plane's meter, with its tags (the meter is shared: other tests add theirs).</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _listener = new();

        public ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)> Measurements { get; } = new();

        public Recorder()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == CoreTelemetry.ControlPlane) listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
            _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
            _listener.Start();
        }

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var copy = new Dictionary<string, object?>();
            foreach (var tag in tags) copy[tag.Key] = tag.Value;
            Measurements.Enqueue((instrument.Name, value, copy));
        }

        public void Observe() => _listener.RecordObservableInstruments();

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public async Task Each_storage_call_is_counted_by_service_and_status_and_a_conflict_as_a_conflict()
    {
        using var recorder = new Recorder();
        var storage = new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique<StorageTelemetryTests>() });
        var table = await storage.TableAsync("Things", _token);
        var entity = new TableEntity("p", "r");
        await table.AddEntityAsync(entity, _token);
        var conflict = await Assert.ThrowsAsync<RequestFailedException>(() => table.AddEntityAsync(entity, _token));
        Assert.Equal(409, conflict.Status);
        var stale = await Assert.ThrowsAsync<RequestFailedException>(() => table.UpdateEntityAsync(entity, new ETag("W/\"datetime'2000-01-01T00%3A00%3A00Z'\""), TableUpdateMode.Replace, _token));
        Assert.Equal(412, stale.Status);
        var queue = await storage.QueueAsync(TestNames.Unique("calls"), _token);
        await queue.SendMessageAsync("one", _token);

        var calls = recorder.Measurements.Where(m => m.Instrument == "storage.calls").ToList();
        int Count(string service, int status) => calls.Count(m => (string?)m.Tags["storage.service"] == service && Convert.ToInt32(m.Tags["http.response.status_code"]) == status);
        // At least ours: other tests running beside this one use the same meter.
        Assert.True(Count("table", 204) >= 1, "the insert");
        Assert.True(Count("table", 409) >= 1 && Count("table", 412) >= 1, "the refused insert and update");
        Assert.True(Count("queue", 201) >= 1, "the message sent");
        Assert.True(recorder.Measurements.Count(m => m.Instrument == "storage.conflicts" && (string?)m.Tags["storage.service"] == "table") >= 2);
    }

    [Fact]
    public async Task A_consumed_message_records_how_long_it_waited_and_an_observed_queue_its_depth()
    {
        using var recorder = new Recorder();
        var storage = new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique<StorageTelemetryTests>() });
        var name = TestNames.Unique("age");
        var queue = await storage.QueueAsync(name, _token);
        for (var i = 0; i < 3; i++) await queue.SendMessageAsync($"m{i}", _token);

        // The depth is read in the background when a collection asks for it, and shown from the next collection on.
        using (StorageTelemetry.ObserveDepth(queue, TimeProvider.System))
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!recorder.Measurements.Any(m => m.Instrument == "queue.depth" && (string?)m.Tags["messaging.destination.name"] == name))
            {
                Assert.True(DateTime.UtcNow < deadline, "no queue.depth measurement for the queue");
                recorder.Observe();
                await Task.Delay(100, _token);
            }
            Assert.Equal(3, recorder.Measurements.Last(m => m.Instrument == "queue.depth" && (string?)m.Tags["messaging.destination.name"] == name).Value);
        }

        await Task.Delay(1200, _token);
        var handled = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_token);
        var consumer = new QueueConsumer(queue, new QueueConsumerOptions(), async (_, lease, token) =>
        {
            await lease.DeleteAsync(token);
            Interlocked.Increment(ref handled);
        }, TimeProvider.System, NullLogger.Instance);
        var running = consumer.RunAsync(stop.Token);
        while (Volatile.Read(ref handled) < 3) await Task.Delay(50, _token);
        await stop.CancelAsync();
        await running;

        var ages = recorder.Measurements.Where(m => m.Instrument == "queue.message_age" && (string?)m.Tags["messaging.destination.name"] == name).Select(m => m.Value).ToList();
        Assert.Equal(3, ages.Count);
        // Azure's insertion times are whole seconds: at least the second waited here, less a truncated fraction.
        Assert.All(ages, age => Assert.InRange(age, 0.2, 60));
    }

    [Fact]
    public async Task With_an_Application_Insights_connection_string_spans_go_to_its_ingestion_endpoint()
    {
        var port = FreePort();
        using var ingestion = new HttpListener();
        ingestion.Prefixes.Add($"http://127.0.0.1:{port}/");
        ingestion.Start();
        var bodies = new ConcurrentQueue<string>();
        var serving = Task.Run(async () =>
        {
            while (ingestion.IsListening)
            {
                HttpListenerContext context;
                try { context = await ingestion.GetContextAsync(); }
                catch (Exception) { return; }
                Stream body = context.Request.InputStream;
                if (context.Request.Headers["Content-Encoding"] == "gzip") body = new GZipStream(body, CompressionMode.Decompress);
                using (var reader = new StreamReader(body, Encoding.UTF8)) bodies.Enqueue($"{context.Request.Url!.AbsolutePath} {await reader.ReadToEndAsync()}");
                context.Response.StatusCode = 200;
                var accepted = Encoding.UTF8.GetBytes("""{"itemsReceived":1,"itemsAccepted":1,"errors":[]}""");
                await context.Response.OutputStream.WriteAsync(accepted);
                context.Response.Close();
            }
        });

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [TelemetryServices.AzureMonitorSetting] = $"InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:{port}/",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddTelemetry(configuration, "telemetry-test");
        await using var provider = services.BuildServiceProvider();
        var tracer = provider.GetRequiredService<TracerProvider>();
        // Azure Monitor's exporter samples at a rate (a few traces a second), and the tests beside this one make spans of the
        // same source: start spans until one is sampled.
        var spanName = $"exported-{Guid.NewGuid():N}";
        for (var sampled = false; !sampled; await Task.Delay(200, _token))
        {
            using var span = CoreTelemetry.Source.StartActivity(spanName);
            sampled = span is { Recorded: true };
        }
        Assert.True(tracer.ForceFlush(30_000));

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!bodies.Any(b => b.Contains(spanName, StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the span did not reach the ingestion endpoint; it got: {string.Join('\n', bodies)}");
            await Task.Delay(100, _token);
        }
        Assert.StartsWith("/v2.1/track ", bodies.First(b => b.Contains(spanName, StringComparison.Ordinal)));
        ingestion.Stop();
        await serving;
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
