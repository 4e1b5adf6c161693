using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>Reading several tasks at once over a real table (Azurite).</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskStoreTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;
    private readonly TaskStore _tasks = new(new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("Find") }), TaskRows.Arns);
    private readonly DateTimeOffset _now = new FakeTimeProvider().GetUtcNow();

    private Task<TaskRecord> TaskAsync(string group) => _tasks.InsertAsync(TaskRows.New("c", group, "i", _now), _token);

    [Fact]
    public async Task Many_tasks_are_found_by_id_across_partitions_and_missing_or_malformed_ids_are_left_out()
    {
        var web = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => TaskAsync("family:web")));
        var api = await TaskAsync("service:api");
        var missing = TaskIds.New("family:web");

        var found = await _tasks.FindManyAsync("c", [.. web.Select(t => t.Id), api.Id, web[0].Id, missing, "not-a-task-id"], _token);

        Assert.Equal(web.Select(t => t.Id).Append(api.Id).Order(StringComparer.Ordinal), found.Keys.Order(StringComparer.Ordinal));
        Assert.All(web, t => Assert.Equal("family:web", found[t.Id].Group));
        Assert.Equal("service:api", found[api.Id].Group);
        Assert.Empty(await _tasks.FindManyAsync("other-cluster", web.Select(t => t.Id), _token));
    }

    [Fact]
    public async Task Forty_tasks_of_one_partition_are_found_within_Azures_15_comparisons_per_filter()
    {
        var web = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => TaskAsync("family:many")));

        var found = await _tasks.FindManyAsync("c", web.Select(t => t.Id), _token);

        Assert.Equal(web.Select(t => t.Id).Order(StringComparer.Ordinal), found.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_hundred_and_twenty_tasks_of_one_partition_are_updated_within_Azures_batch_limits()
    {
        var web = await Task.WhenAll(Enumerable.Range(0, 120).Select(_ => TaskAsync("service:many")));

        var updated = await _tasks.UpdateManyAsync("c", web.Select(t => t.Id).ToList(), t => t with { HealthStatus = "HEALTHY" }, _token);

        Assert.Equal(120, updated.Count);
        Assert.All(updated, t => Assert.Equal("HEALTHY", t.HealthStatus));
        var reread = await _tasks.FindManyAsync("c", web.Select(t => t.Id), _token);
        Assert.All(reread.Values, t => Assert.Equal("HEALTHY", t.HealthStatus));
    }
}
