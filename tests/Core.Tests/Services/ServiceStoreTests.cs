using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Scheduling;
using Serverless.Core.Services;
using Serverless.Core.Tags;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Services;

[Collection(AzuriteCollection.Name)]
public sealed class ServiceStoreTests(AzuriteFixture azurite)
{
    private readonly ServiceTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    private static readonly DateTimeOffset Start = ServiceTables.Start;

    private static ServiceRecord Service(string name = "web", string cluster = "prod", string status = ServiceRecord.Active) => new()
    {
        Cluster = cluster,
        Name = name,
        Status = status,
        DesiredCount = 2,
        TaskDefinitionArn = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        PlacementStrategy = Placement.ServiceDefault,
        Deployments =
        [
            new Deployment
            {
                Id = "ecs-svc/1234567890123456789",
                Status = DeploymentStatus.Primary,
                TaskDefinitionArn = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
                DesiredCount = 2,
                CreatedAt = Start,
                UpdatedAt = Start,
            },
        ],
        CreatedAt = Start,
    };

    [Fact]
    public async Task A_service_is_found_as_it_was_inserted()
    {
        var store = _tables.Services;
        var wanted = Service() with
        {
            SchedulingStrategy = ServiceRecord.Replica,
            PlacementConstraints = [new JsonObject { ["type"] = "memberOf", ["expression"] = "attribute:stack == prod" }],
            DeploymentConfiguration = new DeploymentConfiguration(50, 150, true, true),
            HealthCheckGracePeriodSeconds = 30,
            Events = [new ServiceEvent("e2", Start.AddSeconds(2), "(service web) has reached a steady state."), new ServiceEvent("e1", Start, "(service web) has started 2 tasks.")],
            Tags = [new Tag("env", "test")],
            Passthrough = new JsonObject { ["loadBalancers"] = new JsonArray(new JsonObject { ["containerName"] = "app" }) },
            CreatedBy = "arn:aws:iam::000000000000:user/me",
            PropagateTags = true,
            PropagateTagsFrom = "SERVICE",
            EnableEcsManagedTags = true,
            LeaseOwner = "plane-1",
            LeaseExpiresAt = Start.AddSeconds(30),
        };

        Assert.True(await store.TryInsertAsync(wanted, _token));
        Assert.False(await store.TryInsertAsync(wanted, _token));
        var found = await store.FindAsync("prod", "web", _token);

        Assert.NotNull(found);
        Assert.NotEqual(default, found.ETag);
        Assert.Equal(wanted.Deployments, found.Deployments);
        Assert.Equal(wanted.Events, found.Events);
        Assert.Equal(wanted.DeploymentHistory, found.DeploymentHistory);
        Assert.Equal(wanted.PlacementStrategy, found.PlacementStrategy);
        Assert.Equal(wanted.Tags, found.Tags);
        Assert.True(JsonNode.DeepEquals(wanted.PlacementConstraints, found.PlacementConstraints));
        Assert.True(JsonNode.DeepEquals(wanted.Passthrough, found.Passthrough));
        var comparable = found with
        {
            Deployments = wanted.Deployments, Events = wanted.Events, PlacementStrategy = wanted.PlacementStrategy, Tags = wanted.Tags,
            DeploymentHistory = wanted.DeploymentHistory,
            PlacementConstraints = wanted.PlacementConstraints, Passthrough = wanted.Passthrough, ETag = default,
        };
        Assert.Equal(wanted, comparable);
        Assert.Null(await store.FindAsync("prod", "other", _token));
        Assert.Null(await store.FindAsync("dev", "web", _token));
    }

    [Fact]
    public async Task FindMany_returns_the_services_that_exist_across_clusters_in_queries_of_at_most_fourteen()
    {
        var store = _tables.Services;
        // 20 in one cluster (two queries: 14 + 6), one in another cluster, one deleted (INACTIVE stays readable), one missing.
        var names = Enumerable.Range(0, 20).Select(i => $"s{i:00}").ToList();
        foreach (var name in names) Assert.True(await store.TryInsertAsync(Service(name) with { DesiredCount = 100 + name.Length + int.Parse(name[1..]) }, _token));
        Assert.True(await store.TryInsertAsync(Service("web", "staging") with { DesiredCount = 7 }, _token));
        Assert.True(await store.TryInsertAsync(Service("gone", status: ServiceRecord.Inactive), _token));
        // "prod|s1" is a prefix of "prod|s10": only exact partitions match.
        var keys = names.Select(n => ("prod", n)).Append(("staging", "web")).Append(("prod", "gone")).Append(("prod", "missing")).Append(("prod", "s01")).ToList();

        var found = await store.FindManyAsync(keys, _token);

        Assert.Equal(22, found.Count);
        Assert.All(names, n => Assert.Equal(100 + n.Length + int.Parse(n[1..]), found[("prod", n)].DesiredCount));
        Assert.Equal(("staging", "web", 7), (found[("staging", "web")].Cluster, found[("staging", "web")].Name, found[("staging", "web")].DesiredCount));
        Assert.Equal(ServiceRecord.Inactive, found[("prod", "gone")].Status);
        Assert.False(found.ContainsKey(("prod", "missing")));
        // A lone key is a point read; none is nothing.
        Assert.Equal(7, Assert.Single(await store.FindManyAsync([("staging", "web")], _token)).Value.DesiredCount);
        Assert.Empty(await store.FindManyAsync([("prod", "missing")], _token));
        Assert.Empty(await store.FindManyAsync([], _token));
    }

    [Fact]
    public async Task At_most_the_newest_hundred_events_are_kept()
    {
        var events = Enumerable.Range(0, 130).Select(i => new ServiceEvent($"e{i}", Start.AddSeconds(i), $"event {i}")).ToList();
        await _tables.Services.TryInsertAsync(Service() with { Events = events }, _token);

        var found = await _tables.Services.FindAsync("prod", "web", _token);

        Assert.Equal(ServiceRecord.MaxEvents, found!.Events.Count);
        Assert.Equal("e129", found.Events[0].Id);
        Assert.Equal("e30", found.Events[^1].Id);
    }

    [Fact]
    public async Task Saving_a_stale_read_loses_to_the_writer_that_came_first()
    {
        var store = _tables.Services;
        await store.TryInsertAsync(Service(), _token);
        var read = (await store.FindAsync("prod", "web", _token))!;

        var saved = await store.SaveAsync(read with { DesiredCount = 3 }, _token);
        await Assert.ThrowsAsync<ConcurrentUpdateException>(() => store.SaveAsync(read with { DesiredCount = 4 }, _token));

        Assert.Equal(3, (await store.FindAsync("prod", "web", _token))!.DesiredCount);
        Assert.Equal(saved.ETag, (await store.FindAsync("prod", "web", _token))!.ETag);
    }

    [Fact]
    public async Task Concurrent_updates_from_several_control_planes_all_apply()
    {
        await _tables.Services.TryInsertAsync(Service() with { DesiredCount = 0 }, _token);
        var planes = Enumerable.Range(0, 4).Select(_ => _tables.NewServiceStore()).ToList();

        await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            planes[i % planes.Count].UpdateAsync("prod", "web", s => s with { DesiredCount = s.DesiredCount + 1 }, _token)));

        Assert.Equal(8, (await _tables.Services.FindAsync("prod", "web", _token))!.DesiredCount);
    }

    [Fact]
    public async Task An_update_keeps_the_reconcilers_lease_as_it_was_read_unless_it_sets_the_lease_itself()
    {
        var store = _tables.Services;
        await store.TryInsertAsync(Service() with { DesiredCount = 0 }, _token);
        var stale = (await store.FindAsync("prod", "web", _token))!;
        // A reconcile takes the lease after the API's read...
        await store.SaveAsync(stale with { LeaseOwner = "plane-1", LeaseExpiresAt = Start.AddSeconds(30) }, _token);

        // ...and the API's change, run again on a fresh read, keeps it.
        var updated = await store.UpdateAsync("prod", "web", s => s with { DesiredCount = 9 }, _token);
        var found = (await store.FindAsync("prod", "web", _token))!;
        Assert.Equal((9, "plane-1", Start.AddSeconds(30)), (found.DesiredCount, found.LeaseOwner, found.LeaseExpiresAt));
        Assert.Equal(found.ETag, updated.ETag);

        // The reconciler releases its own lease through a change that says so.
        await store.UpdateAsync("prod", "web", s => s with { LeaseOwner = null, LeaseExpiresAt = null }, _token);
        found = (await store.FindAsync("prod", "web", _token))!;
        Assert.Equal((9, null, null), (found.DesiredCount, found.LeaseOwner, found.LeaseExpiresAt));
        await Assert.ThrowsAsync<ServiceNotFoundException>(() => store.UpdateAsync("prod", "missing", s => s, _token));
    }

    [Fact]
    public async Task A_refused_or_empty_change_writes_nothing()
    {
        var store = _tables.Services;
        await store.TryInsertAsync(Service(), _token);
        var before = (await store.FindAsync("prod", "web", _token))!;

        var same = await store.UpdateAsync("prod", "web", s => s, _token);
        await Assert.ThrowsAsync<ServiceNotActiveException>(() => store.UpdateAsync("prod", "web", _ => throw new ServiceNotActiveException(), _token));

        Assert.Equal(before.ETag, same.ETag);
        Assert.Equal(before.ETag, (await store.FindAsync("prod", "web", _token))!.ETag);
    }

    [Fact]
    public async Task Listing_reads_one_clusters_active_and_draining_services_in_name_order()
    {
        var store = _tables.Services;
        await store.TryInsertAsync(Service("b"), _token);
        await store.TryInsertAsync(Service("a", status: ServiceRecord.Draining), _token);
        await store.TryInsertAsync(Service("c", status: ServiceRecord.Inactive), _token);
        await store.TryInsertAsync(Service("d") with { SchedulingStrategy = ServiceRecord.Daemon }, _token);
        await store.TryInsertAsync(Service("a", cluster: "prod-eu"), _token);
        await store.TryInsertAsync(Service("z", cluster: "pro"), _token);

        var (all, more) = await store.ListAsync("prod", null, 10, null, null, _token);
        Assert.Equal(["a", "b", "d"], all.Select(s => s.Name));
        Assert.False(more);

        var (page, hasMore) = await store.ListAsync("prod", null, 2, null, null, _token);
        Assert.Equal(["a", "b"], page.Select(s => s.Name));
        Assert.True(hasMore);
        Assert.Equal(["d"], (await store.ListAsync("prod", "b", 2, null, null, _token)).Services.Select(s => s.Name));

        Assert.Equal(["b", "d"], (await store.ListActiveAsync("prod", null, 10, null, null, _token)).Services.Select(s => s.Name));
        Assert.Equal(["d"], (await store.ListAsync("prod", null, 10, "EC2", ServiceRecord.Daemon, _token)).Services.Select(s => s.Name));
        Assert.Empty((await store.ListAsync("prod", null, 10, "EXTERNAL", null, _token)).Services);
    }

    [Fact]
    public async Task The_resync_reads_every_active_and_draining_service_of_every_cluster()
    {
        var store = _tables.Services;
        await store.TryInsertAsync(Service("b"), _token);
        await store.TryInsertAsync(Service("a", status: ServiceRecord.Draining), _token);
        await store.TryInsertAsync(Service("c", status: ServiceRecord.Inactive), _token);
        await store.TryInsertAsync(Service("a", cluster: "dev") with { SchedulingStrategy = ServiceRecord.Daemon }, _token);

        var found = new List<ServiceSummary>();
        await foreach (var service in store.ListAllActiveAsync(_token)) found.Add(service);

        Assert.Equal(
            [new ServiceKey("dev", "a"), new ServiceKey("prod", "a"), new ServiceKey("prod", "b")],
            found.Select(s => new ServiceKey(s.Cluster, s.Name)).OrderBy(k => k.ToString(), StringComparer.Ordinal));
        var daemon = found.Single(s => s.Cluster == "dev");
        Assert.Equal((ServiceRecord.Daemon, 2, Service().TaskDefinitionArn), (daemon.SchedulingStrategy, daemon.DesiredCount, daemon.TaskDefinitionArn));
        Assert.Equal(ServiceRecord.Draining, found.Single(s => s is { Cluster: "prod", Name: "a" }).Status);
    }

    [Fact]
    public async Task Usage_counts_a_clusters_active_and_draining_services()
    {
        var store = _tables.Services;
        await store.TryInsertAsync(Service("a"), _token);
        await store.TryInsertAsync(Service("b"), _token);
        await store.TryInsertAsync(Service("c", status: ServiceRecord.Draining), _token);
        await store.TryInsertAsync(Service("d", status: ServiceRecord.Inactive), _token);
        await store.TryInsertAsync(Service("e", cluster: "prod-eu"), _token);

        var usage = await new ServiceUsage(store).CountAsync("prod", _token);

        Assert.Equal((2, 1), (usage.ActiveServices, usage.DrainingServices));
        Assert.Equal((0, 0, 0), (usage.RegisteredContainerInstances, usage.RunningTasks, usage.PendingTasks));
    }
}
