using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.TestSupport;
using Serverless.Worker.Reporting;
using Serverless.Worker.Tests.Infrastructure;

namespace Serverless.Worker.Tests.Reporting;

/// <summary>How reports share <c>task-events</c> messages, on a clock that only moves when told (its own Azurite: the queue name is fixed).</summary>
public sealed class TaskStateReporterTests : IAsyncLifetime
{
    private readonly AzuriteFixture _azurite = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;
    private TaskStateReporter _reporter = null!;
    private TaskEventsProbe _events = null!;

    public async Task InitializeAsync()
    {
        await _azurite.InitializeAsync();
        var storage = new StorageClients(_azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("reports") });
        var options = new WorkerOptions { TransitionReportBatchMilliseconds = 500 };
        _reporter = new TaskStateReporter(storage, new QueueWake(NullLogger<QueueWake>.Instance), options, _time, NullLogger<TaskStateReporter>.Instance);
        _events = new TaskEventsProbe(_azurite.CreateQueueServiceClient().GetQueueClient(TaskMessages.TaskEventsQueue));
    }

    public Task DisposeAsync() => _azurite.DisposeAsync();

    private static TaskStateChange Report(int task, string status) => new()
    {
        Cluster = "c",
        TaskArn = $"arn:aws:ecs:us-east-1:000000000000:task/c/{task:x32}",
        ContainerInstanceArn = "arn:aws:ecs:us-east-1:000000000000:container-instance/c/i",
        LastStatus = status,
    };

    private async Task<List<int>> MessagesAsync()
    {
        await _events.ReportsAsync("", _token);
        return _events.MessageSizes;
    }

    [Fact]
    public async Task Transitional_reports_wait_for_company_and_leave_with_the_next_urgent_one()
    {
        // The clock never moves here, so the PENDING reports can only leave with the RUNNING one.
        var pending = Enumerable.Range(1, 3).Select(i => _reporter.SendAsync(Report(i, "PENDING"), transitional: true, _token)).ToList();
        await Task.Delay(200, _token);
        Assert.All(pending, p => Assert.False(p.IsCompleted));

        await _reporter.SendAsync(Report(4, "RUNNING"), transitional: false, _token);
        await Task.WhenAll(pending);

        Assert.Equal([4], await MessagesAsync());
        Assert.Equal(["PENDING", "PENDING", "PENDING", "RUNNING"], (await _events.ReportsAsync(Report(1, "").TaskArn, _token))
            .Concat(await _events.ReportsAsync(Report(2, "").TaskArn, _token))
            .Concat(await _events.ReportsAsync(Report(3, "").TaskArn, _token))
            .Concat(await _events.ReportsAsync(Report(4, "").TaskArn, _token)).Select(r => r.LastStatus));
    }

    [Fact]
    public async Task Transitional_reports_alone_leave_together_once_the_wait_is_over()
    {
        var pending = Enumerable.Range(1, 2).Select(i => _reporter.SendAsync(Report(i, "STOPPING"), transitional: true, _token)).ToList();
        await Task.Delay(200, _token);
        _time.Advance(TimeSpan.FromMilliseconds(500));
        await Task.WhenAll(pending);
        Assert.Equal([2], await MessagesAsync());
    }

    [Fact]
    public async Task An_urgent_report_alone_leaves_at_once_in_a_message_of_its_own()
    {
        await _reporter.SendAsync(Report(1, "RUNNING"), transitional: false, _token);
        await _reporter.SendAsync(Report(2, "STOPPED"), transitional: false, _token);
        Assert.Equal([1, 1], await MessagesAsync());
    }

    /// <summary>A host-mode task with a container port range of <paramref name="ports"/> ports: one binding each.</summary>
    private static TaskStateChange WithBindings(TaskStateChange report, int ports) => report with
    {
        Containers =
        [
            new ContainerStateChange
            {
                Name = "app", LastStatus = report.LastStatus, RuntimeId = new string('f', 64),
                NetworkBindings = Enumerable.Range(10000, ports).Select(p => new NetworkBinding("0.0.0.0", p, p, "tcp")).ToList(),
            },
            new ContainerStateChange { Name = "sidecar", LastStatus = report.LastStatus, ExitCode = report.LastStatus == "STOPPED" ? 0 : null },
        ],
    };

    [Fact]
    public async Task An_oversized_report_is_trimmed_to_fit_a_queue_message_and_later_reports_still_leave()
    {
        var huge = WithBindings(Report(1, "RUNNING"), 5000);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(TaskMessages.Serialize(huge)) > 64 * 1024);

        await _reporter.SendAsync(huge, transitional: false, _token).WaitAsync(TimeSpan.FromSeconds(20), _token);
        await _reporter.SendAsync(Report(2, "RUNNING"), transitional: false, _token).WaitAsync(TimeSpan.FromSeconds(20), _token);

        var running = Assert.Single(await _events.ReportsAsync(huge.TaskArn, _token));
        Assert.Equal("RUNNING", running.LastStatus);
        Assert.Equal(["app", "sidecar"], running.Containers.Select(c => c.Name));
        // As many bindings as fit, in order; the rest are left out of the report, not the state.
        var kept = running.Containers[0].NetworkBindings;
        Assert.InRange(kept.Count, 1, 4999);
        Assert.Equal(huge.Containers[0].NetworkBindings.Take(kept.Count), kept);
        Assert.Equal("RUNNING", Assert.Single(await _events.ReportsAsync(Report(2, "").TaskArn, _token)).LastStatus);
    }

    [Fact]
    public async Task An_oversized_stopped_report_keeps_its_transition_stop_code_and_exit_codes()
    {
        var huge = WithBindings(Report(1, "STOPPED"), 20000) with
        {
            StopCode = "EssentialContainerExited",
            StoppedReason = "Essential container in task exited " + new string('x', 100 * 1024),
        };
        var sent = _reporter.SendAsync(huge, transitional: false, _token);
        var batched = _reporter.SendAsync(Report(2, "STOPPED"), transitional: false, _token);
        await Task.WhenAll(sent, batched).WaitAsync(TimeSpan.FromSeconds(20), _token);

        var stopped = Assert.Single(await _events.ReportsAsync(huge.TaskArn, _token));
        Assert.Equal(("STOPPED", "EssentialContainerExited"), (stopped.LastStatus, stopped.StopCode));
        Assert.StartsWith("Essential container in task exited xxx", stopped.StoppedReason);
        Assert.Equal(0, stopped.Containers.Single(c => c.Name == "sidecar").ExitCode);
        Assert.Equal("STOPPED", Assert.Single(await _events.ReportsAsync(Report(2, "").TaskArn, _token)).LastStatus);
    }

    [Fact]
    public async Task A_report_the_queue_refuses_for_good_fails_alone_and_the_sender_goes_on()
    {
        // Nothing in it can be trimmed: its identity alone is over a queue message.
        var unsendable = Report(1, "RUNNING") with { Cluster = new string('c', 70 * 1024) };
        var refused = _reporter.SendAsync(unsendable, transitional: false, _token);
        var next = _reporter.SendAsync(Report(2, "RUNNING"), transitional: false, _token);

        await Assert.ThrowsAsync<Azure.RequestFailedException>(() => refused.WaitAsync(TimeSpan.FromSeconds(20), _token));
        await next.WaitAsync(TimeSpan.FromSeconds(20), _token);
        Assert.Equal("RUNNING", Assert.Single(await _events.ReportsAsync(Report(2, "").TaskArn, _token)).LastStatus);
    }
}
