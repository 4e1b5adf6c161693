using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core;
using Serverless.Core.Storage;
using Serverless.Core.TaskDefinitions;
using Serverless.TestSupport;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Tests.Docker;

/// <summary>The worker's task definition cache over real Azurite tables.</summary>
public sealed class TaskDefinitionCacheTests : IAsyncLifetime
{
    private readonly AzuriteFixture _azurite = new();
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;
    private TaskDefinitionStore _store = null!;

    public async Task InitializeAsync()
    {
        await _azurite.InitializeAsync();
        var ecs = new EcsOptions { StoragePrefix = TestNames.Unique("tdcache") };
        _store = new TaskDefinitionStore(new StorageClients(_azurite.ConnectionString, ecs), new Arns(ecs), TimeProvider.System, NullLogger<TaskDefinitionStore>.Instance);
    }

    public Task DisposeAsync() => _azurite.DisposeAsync();

    private async Task<string> RegisterAsync(string family)
    {
        var request = JsonNode.Parse($$"""{"family": "{{family}}", "containerDefinitions": [{"name": "app", "image": "i", "memory": 32}]}""")!.AsObject();
        return (await _store.RegisterAsync(TaskDefinitionDefaults.Resolve(request, "arn:aws:iam::000000000000:user/test"), [], _token)).Arn;
    }

    [Fact]
    public async Task The_cache_keeps_at_most_its_capacity_and_drops_the_least_recently_used()
    {
        var cache = new TaskDefinitionCache(_store, capacity: 2);
        var (a, b, c) = (await RegisterAsync("a"), await RegisterAsync("b"), await RegisterAsync("c"));

        Assert.NotNull(await cache.FindAsync(a, _token));
        Assert.NotNull(await cache.FindAsync(b, _token));
        Assert.NotNull(await cache.FindAsync(a, _token)); // a is now the most recently used
        Assert.NotNull(await cache.FindAsync(c, _token));

        Assert.Equal(2, cache.Count);
        Assert.True(cache.Contains(a));
        Assert.False(cache.Contains(b));
        Assert.True(cache.Contains(c));
        // An evicted revision is read again when needed.
        Assert.Equal(b, (await cache.FindAsync(b, _token))!.Arn);
        Assert.Equal(2, cache.Count);
    }

    [Fact]
    public async Task A_worker_that_sees_many_revisions_holds_no_more_than_the_default_capacity()
    {
        var cache = new TaskDefinitionCache(_store);
        for (var revision = 1; revision <= TaskDefinitionCache.DefaultCapacity + 5; revision++)
        {
            var arn = await RegisterAsync("many");
            Assert.NotNull(await cache.FindAsync(arn, _token));
        }
        Assert.Equal(TaskDefinitionCache.DefaultCapacity, cache.Count);
    }

    [Fact]
    public async Task A_missing_revision_is_not_kept()
    {
        var cache = new TaskDefinitionCache(_store, capacity: 2);
        Assert.Null(await cache.FindAsync("arn:aws:ecs:us-east-1:000000000000:task-definition/none:1", _token));
        Assert.Equal(0, cache.Count);
    }
}
