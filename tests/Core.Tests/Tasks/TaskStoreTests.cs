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

    [Fact]
    public async Task A_hundred_rows_of_one_partition_are_inserted_in_one_batch_as_they_were_given_and_no_more_or_mixed_ones()
    {
        var rows = Enumerable.Range(0, 100)
            .Select(i => TaskRows.New("c", "service:seeded", $"i{i % 7}", _now) with
            {
                LastStatus = EcsTaskStatus.Running, StartedAt = _now, ObservedAt = _now, Cpu = 64, Memory = 32, StartedBy = "ecs-svc/1",
                Containers = [new TaskContainer { Name = "app", Id = $"c{i}", Image = "local/sim:latest", LastStatus = EcsTaskStatus.Running, RuntimeId = $"r{i}" }],
            })
            .ToList();

        await _tasks.InsertManyAsync(rows, _token);

        var found = await _tasks.FindManyAsync("c", rows.Select(t => t.Id), _token);
        Assert.Equal(100, found.Count);
        Assert.All(rows, t => Assert.Equal(Columns(t), Columns(found[t.Id])));
        // What a launch's row is found by: the service's partition, and the instance it was placed on.
        Assert.Equal(100, (await _tasks.ListForGroupAsync("c", "service:seeded", _token)).Count);
        var (onOne, _) = await _tasks.ListAsync("c", new TaskFilter(ContainerInstanceId: "i3", NotStopped: true), 1000, null, _token);
        Assert.Equal(rows.Count(t => t.ContainerInstanceId == "i3"), onOne.Count);

        var tooMany = Enumerable.Range(0, 101).Select(_ => TaskRows.New("c", "service:seeded", "i", _now)).ToList();
        await Assert.ThrowsAsync<ArgumentException>(() => _tasks.InsertManyAsync(tooMany, _token));
        var mixed = new[] { TaskRows.New("c", "service:a", "i", _now), TaskRows.New("c", "service:b", "i", _now) };
        await Assert.ThrowsAsync<ArgumentException>(() => _tasks.InsertManyAsync(mixed, _token));
        // All or none: a batch with a row that exists already writes nothing.
        var again = new[] { TaskRows.New("c", "service:seeded", "i", _now), rows[0] };
        await Assert.ThrowsAnyAsync<Exception>(() => _tasks.InsertManyAsync(again, _token));
        Assert.Null(await _tasks.FindAsync("c", again[0].Id, _token));
    }

    // The row's stored form, whatever is not the row's own (ETag, timestamp) left out.
    private static List<string> Columns(TaskRecord task)
        => task.ToEntity().Where(c => c.Key is not ("odata.etag" or "Timestamp")).Select(c => $"{c.Key}={c.Value}").Order(StringComparer.Ordinal).ToList();
}
