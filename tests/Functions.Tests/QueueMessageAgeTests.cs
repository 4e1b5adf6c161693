using System.Diagnostics.Metrics;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Time.Testing;
using NSubstitute;
using Serverless.Core.Reconciliation;
using Serverless.Functions.Reconciliation;

namespace Serverless.Functions.Tests;

/// <summary>Under the Functions host, a queue-triggered invocation records its message's age from the trigger's binding data.</summary>
public sealed class QueueMessageAgeTests
{
    [Fact]
    public void A_functions_queue_is_found_on_its_trigger_and_the_hosts_insertion_time_is_read()
    {
        var definition = Substitute.For<FunctionDefinition>();
        definition.EntryPoint.Returns(typeof(ReconcileFunction).FullName + "." + nameof(ReconcileFunction.Run));
        Assert.Equal(ReconcileQueue.QueueName, QueueMessageAge.QueueOf(definition));
        definition.EntryPoint.Returns("Serverless.Functions.NoSuchType.Run");
        Assert.Null(QueueMessageAge.QueueOf(definition));

        var at = new DateTimeOffset(2026, 12, 3, 10, 0, 0, TimeSpan.Zero);
        Assert.Equal(at, QueueMessageAge.InsertionTime("\"2026-12-03T10:00:00+00:00\""));
        Assert.Equal(at, QueueMessageAge.InsertionTime("12/03/2026 10:00:00 +00:00"));
        Assert.Equal(at, QueueMessageAge.InsertionTime(at));
        Assert.Null(QueueMessageAge.InsertionTime("not a time"));
    }

    [Fact]
    public async Task An_invocation_records_the_age_of_its_message_and_runs_the_function()
    {
        var ages = new List<(double Seconds, string? Queue)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Name == "queue.message_age") l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == "messaging.destination.name" && (string?)tag.Value == ReconcileQueue.QueueName) lock (ages) ages.Add((value, (string?)tag.Value));
        });
        listener.Start();

        var now = new DateTimeOffset(2026, 12, 3, 10, 0, 7, TimeSpan.Zero);
        var definition = Substitute.For<FunctionDefinition>();
        definition.EntryPoint.Returns(typeof(ReconcileFunction).FullName + "." + nameof(ReconcileFunction.Run));
        var binding = Substitute.For<BindingContext>();
        binding.BindingData.Returns(new Dictionary<string, object?> { ["InsertionTime"] = "2026-12-03T10:00:00+00:00" });
        var context = Substitute.For<FunctionContext>();
        context.FunctionDefinition.Returns(definition);
        context.BindingContext.Returns(binding);
        var ran = false;

        await new QueueMessageAge(new FakeTimeProvider(now)).Invoke(context, _ => { ran = true; return Task.CompletedTask; });

        Assert.True(ran);
        lock (ages) Assert.Contains(ages, a => Math.Abs(a.Seconds - 7) < 1e-9);
    }
}
