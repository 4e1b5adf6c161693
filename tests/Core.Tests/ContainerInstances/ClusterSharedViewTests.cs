using Serverless.Core.Api;
using Serverless.Core.Clusters;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.ContainerInstances;

/// <summary>The shared few-seconds view of a cluster's row: no read per launch or per read of the cluster, and never stale after a write of its own.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ClusterSharedViewTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly ContainerInstanceTables _tables = new(azurite.ConnectionString);

    [Fact]
    public async Task Launches_share_one_read_for_a_few_seconds_and_a_change_made_elsewhere_is_seen_after_that()
    {
        var here = _tables.NewClusterStore();
        var elsewhere = _tables.NewClusterStore();
        Assert.True(await here.TryAddAsync(new ClusterRecord { Name = "shared", CreatedAt = _tables.Time.GetUtcNow() }, _token));
        Assert.Equal(ClusterRecord.Active, (await here.GetActiveSharedAsync("shared", _token)).Status);

        // Deleted through another control plane: the view read before still answers (no storage call)...
        await elsewhere.UpdateAsync("shared", c => c with { Status = ClusterRecord.Inactive }, _token);
        _tables.Time.Advance(ClusterStore.SharedViewMaxAge - TimeSpan.FromMilliseconds(1));
        Assert.Equal(ClusterRecord.Active, (await here.GetActiveSharedAsync("shared", _token)).Status);
        // ...until it is that old; the plain read never uses it.
        await Assert.ThrowsAsync<ClusterNotFoundException>(() => here.GetActiveAsync("shared", _token));
        _tables.Time.Advance(TimeSpan.FromMilliseconds(1));
        await Assert.ThrowsAsync<ClusterNotFoundException>(() => here.GetActiveSharedAsync("shared", _token));
    }

    [Fact]
    public async Task A_write_through_the_same_store_is_seen_by_the_next_launch_at_once()
    {
        var store = _tables.NewClusterStore();
        Assert.True(await store.TryAddAsync(new ClusterRecord { Name = "local", CreatedAt = _tables.Time.GetUtcNow() }, _token));
        var before = await store.GetActiveSharedAsync("local", _token);
        Assert.Null(before.CapacityProviders);

        await store.UpdateAsync("local", c => c with { CapacityProviders = "[\"FARGATE\"]" }, _token);
        Assert.Equal("[\"FARGATE\"]", (await store.GetActiveSharedAsync("local", _token)).CapacityProviders);

        await store.UpdateAsync("local", c => c with { Status = ClusterRecord.Inactive }, _token);
        await Assert.ThrowsAsync<ClusterNotFoundException>(() => store.GetActiveSharedAsync("local", _token));
        // A cluster created again (CreateCluster of an INACTIVE name) is seen at once too.
        var inactive = await store.FindAsync("local", _token);
        await store.SaveAsync(inactive! with { Status = ClusterRecord.Active }, _token);
        Assert.Equal(ClusterRecord.Active, (await store.GetActiveSharedAsync("local", _token)).Status);
    }

    [Fact]
    public async Task Reads_on_a_cluster_check_it_through_the_view_and_see_its_deletion_here_at_once()
    {
        var store = _tables.NewClusterStore();
        Assert.True(await store.TryAddAsync(new ClusterRecord { Name = "busy", CreatedAt = _tables.Time.GetUtcNow() }, _token));
        Assert.Equal(1, await store.ReadInActiveAsync("busy", Task.FromResult(1), _token));

        var seen = await azurite.Proxy.RecordAsync(async () =>
        {
            for (var i = 0; i < 5; i++) Assert.Equal(i, await store.ReadInActiveAsync("busy", Task.FromResult(i), _token));
        });
        // Five reads within the view's age: no request for the cluster's row.
        Assert.DoesNotContain(seen, r => r.Resource?.EndsWith("Clusters", StringComparison.Ordinal) == true);

        await store.UpdateAsync("busy", c => c with { Status = ClusterRecord.Inactive }, _token);
        await Assert.ThrowsAsync<ClusterNotFoundException>(() => store.ReadInActiveAsync("busy", Task.FromResult(0), _token));
    }
}
