using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>The retention sweep over real tables (Azurite), each test with its own.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskRetentionTests
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
    private readonly TaskStore _tasks;
    private readonly ClientTokens _tokens;
    private readonly TaskRetention _retention;

    public TaskRetentionTests(AzuriteFixture azurite)
    {
        var options = new EcsOptions { StoragePrefix = TestNames.Unique("Retain"), StoppedTaskRetentionMinutes = 60 };
        var storage = new StorageClients(azurite.ConnectionString, options);
        _tasks = new TaskStore(storage, TaskRows.Arns);
        _tokens = new ClientTokens(storage, _time);
        _retention = new TaskRetention(_tasks, _tokens, options, _time, NullLogger<TaskRetention>.Instance);
    }

    private async Task<TaskRecord> TaskAsync(string group, TimeSpan? stoppedAgo)
    {
        var stopped = stoppedAgo is { } ago ? _time.GetUtcNow() - ago : (DateTimeOffset?)null;
        return await _tasks.InsertAsync(TaskRows.New("c", group, "i", _time.GetUtcNow() - TimeSpan.FromHours(3)) with
        {
            LastStatus = stopped is null ? EcsTaskStatus.Running : EcsTaskStatus.Stopped,
            DesiredStatus = stopped is null ? EcsTaskStatus.Running : EcsTaskStatus.Stopped,
            StoppedAt = stopped,
        }, _token);
    }

    /// <summary>Whether RunTask with <paramref name="token"/> runs (true) or is answered from the token's record (false).</summary>
    private async Task<bool> RunsAfreshAsync(string token, JsonObject request)
    {
        var ran = false;
        await _tokens.RunOnceAsync("c", "RunTask", token, request, () =>
        {
            ran = true;
            return Task.FromResult(new JsonObject());
        }, _token);
        return ran;
    }

    [Fact]
    public async Task Tasks_stopped_longer_than_the_retention_go_and_everything_else_stays()
    {
        var request = new JsonObject { ["cluster"] = "c" };
        Assert.True(await RunsAfreshAsync("old", request));
        _time.Advance(ClientTokens.Retention + TimeSpan.FromMinutes(1));
        Assert.True(await RunsAfreshAsync("new", request));
        var old = await Task.WhenAll(Enumerable.Range(0, 3).Select(i => TaskAsync(i == 0 ? "service:web" : "family:web", TimeSpan.FromMinutes(61))));
        var recent = await TaskAsync("family:web", TimeSpan.FromMinutes(59));
        var running = await TaskAsync("family:web", null);

        await _retention.SweepAsync(_token);

        foreach (var task in old) Assert.Null(await _tasks.FindAsync("c", task.Id, _token));
        Assert.NotNull(await _tasks.FindAsync("c", recent.Id, _token));
        Assert.NotNull(await _tasks.FindAsync("c", running.Id, _token));
        // "old" is forgotten (it can be used afresh); "new" still answers a retry.
        Assert.True(await RunsAfreshAsync("old", request));
        Assert.False(await RunsAfreshAsync("new", request));
    }
}
