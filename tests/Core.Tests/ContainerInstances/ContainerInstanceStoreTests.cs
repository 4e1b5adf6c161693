using Azure;
using Serverless.Core.Api;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Tags;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;
using static Serverless.Core.Tests.ContainerInstances.ContainerInstanceTables;

namespace Serverless.Core.Tests.ContainerInstances;

[Collection(AzuriteCollection.Name)]
public sealed class ContainerInstanceStoreTests(AzuriteFixture azurite)
{
    private readonly ContainerInstanceTables _tables = new(azurite.ConnectionString);
    // xunit 2 has no per-test token; this one bounds each test so a hung call fails instead of stalling the run.
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    private static Reservation Task(string id, int cpu = 256, int memory = 256, int[]? tcp = null, int[]? udp = null)
        => new(id, cpu, memory, tcp ?? [], udp ?? []);

    [Fact]
    public async Task A_new_instance_is_registered_active_now_at_version_one_and_found_as_stored()
    {
        var store = _tables.NewStore();
        var wanted = Host(cpu: 2048, memory: 4096) with { Tags = [new Tag("env", "test")], RegisteredUdpPorts = [161] };

        var registered = await store.RegisterAsync(wanted, _token);
        var found = await store.FindAsync("default", wanted.Id, _token);

        Assert.NotNull(found);
        Assert.Equal((ContainerInstanceRecord.Active, 1L, Start, Start), (found.Status, found.Version, found.RegisteredAt, found.LastHeartbeat));
        Assert.Equal((2048, 4096), (found.RegisteredCpu, found.RegisteredMemory));
        Assert.Equal(ContainerInstanceRecord.EcsReservedPorts, found.RegisteredTcpPorts);
        Assert.Equal([161], found.RegisteredUdpPorts);
        Assert.Equal([new Tag("env", "test")], found.Tags);
        Assert.Equal(registered.ETag, found.ETag);
        Assert.Equivalent(registered, found, strict: true);
    }

    [Fact]
    public async Task Nothing_is_found_for_an_unknown_or_malformed_id()
    {
        var store = _tables.NewStore();
        await store.RegisterAsync(Host(), _token);
        Assert.Null(await store.FindAsync("default", ContainerInstanceStore.NewId(), _token));
        Assert.Null(await store.FindAsync("default", "not/an'id", _token));
    }

    [Fact]
    public async Task Re_registration_replaces_what_the_agent_reports_and_keeps_reservations_tags_and_custom_attributes()
    {
        var store = _tables.NewStore();
        var first = await store.RegisterAsync(Host(cpu: 1024, memory: 1024) with
        {
            Tags = [new Tag("env", "test")],
            Attributes = [new("ecs.capability.old", null), new("ecs.os-type", "linux"), new("from-agent", "1")],
        }, _token);
        var held = await store.TryReserveAsync(first, Task("t1", tcp: [8080]) with { Group = "service:web" }, _token);
        Assert.NotNull(held);
        await store.UpdateAsync("default", first.Id, i => i with
        {
            Status = ContainerInstanceRecord.Draining,
            Attributes = [.. i.Attributes, new InstanceAttribute("stack", "prod")],
        }, _token);
        _tables.Time.Advance(TimeSpan.FromMinutes(5));

        var again = await store.RegisterAsync(Host(cpu: 2048, memory: 3072, id: first.Id) with
        {
            Ec2InstanceId = "i-new",
            Attributes = [new("ecs.os-type", "linux"), new("from-agent", "2")],
            AgentVersion = "2.0.0",
        }, _token);

        Assert.Equal(ContainerInstanceRecord.Draining, again.Status);   // a restarted agent does not undo draining
        Assert.Equal(4, again.Version);
        Assert.Equal((2048, 3072, "i-new", "2.0.0"), (again.RegisteredCpu, again.RegisteredMemory, again.Ec2InstanceId, again.AgentVersion));
        Assert.Equal((Start, Start.AddMinutes(5)), (again.RegisteredAt, again.LastHeartbeat));
        Assert.Equal(["t1"], again.Reservations.Select(r => r.TaskId));
        Assert.Equal("service:web", again.Reservations[0].Group);
        Assert.Equal([8080], again.Reservations[0].TcpPorts);
        Assert.Equal([new Tag("env", "test")], again.Tags);
        Assert.Equal(
            [new InstanceAttribute("ecs.os-type", "linux"), new InstanceAttribute("from-agent", "2"), new InstanceAttribute("stack", "prod")],
            again.Attributes);
        Assert.Equivalent(again, await store.FindAsync("default", first.Id, _token), strict: true);
    }

    [Fact]
    public async Task Re_registration_drops_capabilities_the_agent_no_longer_reports()
    {
        var store = _tables.NewStore();
        var first = await store.RegisterAsync(Host() with
        {
            Attributes = [new("com.amazonaws.ecs.capability.privileged-container", null), new("ecs-worker.network-mode.host", null), new("ecs.os-type", "linux")],
        }, _token);
        await store.UpdateAsync("default", first.Id, i => i with { Attributes = [.. i.Attributes, new InstanceAttribute("stack", "prod")] }, _token);

        // Restarted with the settings off: it reports neither any more.
        var again = await store.RegisterAsync(Host(id: first.Id) with { Attributes = [new("ecs.os-type", "linux")] }, _token);

        Assert.Equal([new InstanceAttribute("ecs.os-type", "linux"), new InstanceAttribute("stack", "prod")], again.Attributes);
    }

    [Fact]
    public async Task Re_registration_with_tags_replaces_the_tags()
    {
        var store = _tables.NewStore();
        var first = await store.RegisterAsync(Host() with { Tags = [new Tag("a", "1")] }, _token);
        var again = await store.RegisterAsync(Host(id: first.Id) with { Tags = [new Tag("b", "2")] }, _token);
        Assert.Equal([new Tag("b", "2")], again.Tags);
    }

    /// <summary>The contenders' decision: what placement checks, from what they read.</summary>
    private static bool Fits(ContainerInstanceRecord host, Reservation need)
        => need.Cpu <= host.RemainingCpu && need.Memory <= host.RemainingMemory
           && !need.TcpPorts.Intersect(host.UsedTcpPorts).Any() && !need.UdpPorts.Intersect(host.UsedUdpPorts).Any();

    [Fact]
    public async Task Ten_control_planes_racing_for_one_host_reserve_exactly_as_many_tasks_as_fit()
    {
        var host = await _tables.NewStore().RegisterAsync(Host(cpu: 1024, memory: 1024), _token);

        // Each contender is its own control plane: it reads, decides with the pure fit check, tries a
        // conditional reservation, and on a lost race reads again and decides again.
        async Task<bool> ContendAsync(int n)
        {
            var store = _tables.NewStore();
            var reservation = Task($"task-{n}", cpu: 256, memory: 200);
            while (true)
            {
                var seen = (await store.FindAsync("default", host.Id, _token))!;
                if (!Fits(seen, reservation)) return false;
                if (await store.TryReserveAsync(seen, reservation, _token) is not null) return true;
            }
        }

        var outcomes = await System.Threading.Tasks.Task.WhenAll(
            Enumerable.Range(0, 10).Select(n => System.Threading.Tasks.Task.Run(() => ContendAsync(n), _token)));

        var final = await _tables.NewStore().FindAsync("default", host.Id, _token);
        Assert.Equal(4, outcomes.Count(won => won));
        Assert.Equal(4, final!.Reservations.Count);
        Assert.Equal(4, final.Reservations.Select(r => r.TaskId).Distinct().Count());
        Assert.Equal((0, 224), (final.RemainingCpu, final.RemainingMemory));
        Assert.Equal(1 + 4, final.Version);
    }

    [Fact]
    public async Task Ten_tasks_racing_for_one_host_port_leave_exactly_one_holding_it()
    {
        var host = await _tables.NewStore().RegisterAsync(Host(cpu: 10_000, memory: 10_000), _token);

        async Task<bool> ContendAsync(int n)
        {
            var store = _tables.NewStore();
            var reservation = Task($"web-{n}", cpu: 10, memory: 10, tcp: [8080]);
            while (true)
            {
                var seen = (await store.FindAsync("default", host.Id, _token))!;
                if (!Fits(seen, reservation)) return false;
                if (await store.TryReserveAsync(seen, reservation, _token) is not null) return true;
            }
        }

        var outcomes = await System.Threading.Tasks.Task.WhenAll(
            Enumerable.Range(0, 10).Select(n => System.Threading.Tasks.Task.Run(() => ContendAsync(n), _token)));

        Assert.Single(outcomes, won => won);
        Assert.Single((await _tables.NewStore().FindAsync("default", host.Id, _token))!.Reservations);
    }

    [Fact]
    public async Task A_reservation_on_a_stale_read_writes_nothing_and_says_so()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host(), _token);
        Assert.NotNull(await store.TryReserveAsync(seen, Task("first"), _token));

        Assert.Null(await store.TryReserveAsync(seen, Task("second"), _token));

        var current = await store.FindAsync("default", seen.Id, _token);
        Assert.Equal(["first"], current!.Reservations.Select(r => r.TaskId));
    }

    [Fact]
    public async Task Reserving_for_a_task_already_holding_a_reservation_changes_nothing()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host(), _token);
        var reserved = await store.TryReserveAsync(seen, Task("t1"), _token);

        var again = await store.TryReserveAsync(reserved!, Task("t1"), _token);

        Assert.Same(reserved, again);
        var current = await store.FindAsync("default", seen.Id, _token);
        Assert.Equal((1, 2L), (current!.Reservations.Count, current.Version));
    }

    [Fact]
    public async Task Release_removes_the_task_reservation_once_and_is_harmless_to_repeat()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host(), _token);
        var held = await store.TryReserveAsync(seen, Task("t1", tcp: [80]), _token);
        held = await store.TryReserveAsync(held!, Task("t2"), _token);

        await store.ReleaseAsync("default", seen.Id, "t1", _token);
        await store.ReleaseAsync("default", seen.Id, "t1", _token);
        await store.ReleaseAsync("default", seen.Id, "never-there", _token);
        await store.ReleaseAsync("default", ContainerInstanceStore.NewId(), "t1", _token);
        await store.ReleaseAsync("other-cluster", seen.Id, "t2", _token);

        var current = await store.FindAsync("default", seen.Id, _token);
        Assert.Equal(["t2"], current!.Reservations.Select(r => r.TaskId));
        Assert.Equal(4, current.Version);
        Assert.DoesNotContain(80, current.UsedTcpPorts);
    }

    [Fact]
    public async Task Releases_racing_reservations_all_land()
    {
        var store = _tables.NewStore();
        var host = await store.RegisterAsync(Host(cpu: 10_000, memory: 10_000), _token);
        var seen = host;
        for (var i = 0; i < 5; i++) seen = await store.TryReserveAsync(seen, Task($"old-{i}", 1, 1), _token) ?? throw new InvalidOperationException();

        var releases = Enumerable.Range(0, 5).Select(i => System.Threading.Tasks.Task.Run(
            () => _tables.NewStore().ReleaseAsync("default", host.Id, $"old-{i}", _token), _token));
        var reservations = Enumerable.Range(0, 5).Select(i => System.Threading.Tasks.Task.Run(async () =>
        {
            var other = _tables.NewStore();
            while (await other.TryReserveAsync((await other.FindAsync("default", host.Id, _token))!, Task($"new-{i}", 1, 1), _token) is null)
            {
            }
        }, _token));
        await System.Threading.Tasks.Task.WhenAll(releases.Concat(reservations));

        var current = await store.FindAsync("default", host.Id, _token);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"new-{i}").Order(), current!.Reservations.Select(r => r.TaskId).Order());
    }

    [Fact]
    public async Task A_heartbeat_records_time_and_task_counts_without_a_new_version_but_invalidates_stale_reads()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host(), _token);
        _tables.Time.Advance(TimeSpan.FromSeconds(20));

        await store.HeartbeatAsync("default", seen.Id, runningTasksCount: 3, pendingTasksCount: 1, _token);

        var current = await store.FindAsync("default", seen.Id, _token);
        Assert.Equal((Start.AddSeconds(20), 3, 1, 1L), (current!.LastHeartbeat, current.RunningTasksCount, current.PendingTasksCount, current.Version));
        Assert.NotEqual(seen.Beat, current.Beat);
        Assert.Equivalent(seen with { LastHeartbeat = current.LastHeartbeat, RunningTasksCount = 3, PendingTasksCount = 1, Beat = current.Beat, ETag = current.ETag }, current, strict: true);
        // The heartbeat changed the row, so a reservation decided on the earlier read must decide again.
        Assert.Null(await store.TryReserveAsync(seen, Task("t1"), _token));
        Assert.NotNull(await store.TryReserveAsync(current, Task("t1"), _token));
    }

    [Fact]
    public async Task A_heartbeat_for_an_unknown_instance_is_refused_and_creates_nothing()
    {
        var store = _tables.NewStore();
        var id = ContainerInstanceStore.NewId();
        await Assert.ThrowsAsync<InvalidParameterException>(() => store.HeartbeatAsync("default", id, 0, 0, _token));
        Assert.Null(await store.FindAsync("default", id, _token));
    }

    [Fact]
    public async Task An_update_applies_the_change_to_a_fresh_read_and_counts_a_version()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host(), _token);
        await store.HeartbeatAsync("default", seen.Id, 2, 0, _token);

        var updated = await store.UpdateAsync("default", seen.Id, i => i with { Status = ContainerInstanceRecord.Draining }, _token);

        Assert.Equal((ContainerInstanceRecord.Draining, 2L, 2), (updated.Status, updated.Version, updated.RunningTasksCount));
        Assert.Equivalent(updated, await store.FindAsync("default", seen.Id, _token), strict: true);
    }

    [Fact]
    public async Task A_refused_update_writes_nothing_and_a_missing_instance_is_an_invalid_parameter()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host(), _token);

        await Assert.ThrowsAsync<ClientException>(() => store.UpdateAsync("default", seen.Id, _ => throw new ClientException("no"), _token));
        Assert.Equal(seen.ETag, (await store.FindAsync("default", seen.Id, _token))!.ETag);

        var error = await Assert.ThrowsAsync<InvalidParameterException>(() => store.UpdateAsync("default", ContainerInstanceStore.NewId(), i => i, _token));
        Assert.Contains("was not found", error.Message);
    }

    [Fact]
    public async Task Concurrent_updates_each_land_once()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host(), _token);

        await System.Threading.Tasks.Task.WhenAll(Enumerable.Range(0, 4).Select(i => System.Threading.Tasks.Task.Run(
            () => _tables.NewStore().UpdateAsync("default", seen.Id, x => x with { Attributes = [.. x.Attributes, new InstanceAttribute($"a{i}", "v")] }, _token),
            _token)));

        var current = await store.FindAsync("default", seen.Id, _token);
        Assert.Equal(5, current!.Attributes.Count);
        Assert.Equal(5, current.Version);
    }

    [Fact]
    public async Task Listing_reads_the_cluster_and_leaves_out_instances_deregistered_long_ago()
    {
        var store = _tables.NewStore();
        var active = await store.RegisterAsync(Host(), _token);
        var draining = await store.RegisterAsync(Host(), _token);
        var gone = await store.RegisterAsync(Host(), _token);
        var elsewhere = await store.RegisterAsync(Host(cluster: "other"), _token);
        await store.UpdateAsync("default", draining.Id, i => i with { Status = ContainerInstanceRecord.Draining }, _token);
        await store.UpdateAsync("default", gone.Id, i => i with { Status = ContainerInstanceRecord.Inactive }, _token);

        var listed = await store.ListAsync("default", _token);
        Assert.Equal(new[] { active.Id, draining.Id, gone.Id }.Order(StringComparer.Ordinal), listed.Select(i => i.Id));

        _tables.Time.Advance(TimeSpan.FromHours(2));
        var later = await store.ListAsync("default", _token);
        Assert.Equal(new[] { active.Id, draining.Id }.Order(StringComparer.Ordinal), later.Select(i => i.Id));
        Assert.Equal([elsewhere.Id], (await store.ListAsync("other", _token)).Select(i => i.Id));
        Assert.Empty(await store.ListAsync("empty", _token));
    }

    [Fact]
    public async Task Draining_instances_are_read_from_their_own_list_and_checked_against_their_rows()
    {
        var store = _tables.NewStore();
        var ids = new List<string>();
        for (var i = 0; i < 6; i++) ids.Add((await store.RegisterAsync(Host(), _token)).Id);
        await store.RegisterAsync(Host(cluster: "other"), _token);
        await store.UpdateAsync("default", ids[1], i => i with { Status = ContainerInstanceRecord.Draining }, _token);
        await store.UpdateAsync("default", ids[2], i => i with { Status = ContainerInstanceRecord.Draining }, _token);
        await store.UpdateAsync("default", ids[3], i => i with { Status = ContainerInstanceRecord.Draining }, _token);
        // Out of DRAINING: back to ACTIVE, and deregistered.
        await store.UpdateAsync("default", ids[2], i => i with { Status = ContainerInstanceRecord.Active }, _token);
        await store.UpdateAsync("default", ids[3], i => i with { Status = ContainerInstanceRecord.Inactive }, _token);
        // A list entry whose row never became DRAINING (a drain whose write failed after it was listed).
        var drains = await new Serverless.Core.Storage.StorageClients(azurite.ConnectionString, _tables.Options).TableAsync(ContainerInstanceStore.DrainsTableName, _token);
        await drains.UpsertEntityAsync(new Azure.Data.Tables.TableEntity("default", ids[4]), cancellationToken: _token);

        // Warm the process's one-time look at the rows, then watch what a reconcile's read costs.
        Assert.Equal([ids[1]], await store.ListDrainingIdsAsync("default", _token));
        IReadOnlySet<string> draining = new HashSet<string>();
        var seen = await azurite.Proxy.RecordAsync(async () => draining = await store.ListDrainingIdsAsync("default", _token));

        Assert.Equal([ids[1]], draining);
        Assert.Empty(await store.ListDrainingIdsAsync("other", _token));
        // One query of the list's partition (two entries) and one point read per entry; no query of the instances' rows.
        Assert.Equal(
            [$"query {ContainerInstanceStore.DrainsTableName} default 2", $"read {ContainerInstanceStore.TableName} default 1", $"read {ContainerInstanceStore.TableName} default 1"],
            seen.Select(r => $"{r.Kind} {r.Resource![_tables.Prefix.Length..]} {r.Partition} {r.Entities}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task An_instance_drained_before_the_list_existed_is_found_by_a_processs_first_look()
    {
        var store = _tables.NewStore();
        var old = await store.RegisterAsync(Host(), _token);
        // Written as a version without the list wrote it: the row alone says DRAINING.
        var rows = await new Serverless.Core.Storage.StorageClients(azurite.ConnectionString, _tables.Options).TableAsync(ContainerInstanceStore.TableName, _token);
        var entity = (await rows.GetEntityAsync<Azure.Data.Tables.TableEntity>("default", old.Id, cancellationToken: _token)).Value;
        entity["Status"] = ContainerInstanceRecord.Draining;
        await rows.UpdateEntityAsync(entity, entity.ETag, cancellationToken: _token);

        Assert.Equal([old.Id], await _tables.NewStore().ListDrainingIdsAsync("default", _token));
        await store.UpdateAsync("default", old.Id, i => i with { Status = ContainerInstanceRecord.Active }, _token);
        Assert.Empty(await store.ListDrainingIdsAsync("default", _token));
    }

    [Fact]
    public async Task A_cluster_counts_its_active_and_draining_instances_as_registered()
    {
        var store = _tables.NewStore();
        var ids = new List<string>();
        for (var i = 0; i < 4; i++) ids.Add((await store.RegisterAsync(Host(), _token)).Id);
        await store.RegisterAsync(Host(cluster: "other"), _token);
        await store.UpdateAsync("default", ids[1], i => i with { Status = ContainerInstanceRecord.Draining }, _token);
        await store.UpdateAsync("default", ids[2], i => i with { Status = ContainerInstanceRecord.Inactive }, _token);

        var usage = await new ContainerInstanceUsage(store).CountAsync("default", _token);

        Assert.Equal(new Clusters.ClusterUsage(RegisteredContainerInstances: 3), usage);
    }

    [Fact]
    public async Task Tags_are_read_and_changed_through_the_instance_arn()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host() with { Tags = [new Tag("a", "1")] }, _token);
        var arn = _tables.Arns.ContainerInstance("default", seen.Id);
        var tagged = new ContainerInstanceTags(store, _tables.Arns);

        await tagged.UpdateTagsAsync(arn, tags => Tag.Merge(tags, [new Tag("b", "2")]), _token);

        Assert.Equal([new Tag("a", "1"), new Tag("b", "2")], await tagged.GetTagsAsync(arn, _token));
        Assert.Equal("container-instance", tagged.ResourceType);
        var missing = _tables.Arns.ContainerInstance("default", ContainerInstanceStore.NewId());
        await Assert.ThrowsAsync<ResourceNotFoundException>(() => tagged.GetTagsAsync(missing, _token));
        await Assert.ThrowsAsync<ResourceNotFoundException>(() => tagged.UpdateTagsAsync(missing, t => t, _token));
        await Assert.ThrowsAsync<InvalidParameterException>(() => tagged.GetTagsAsync("arn:aws:ecs:eu-west-1:000000000000:container-instance/default/" + seen.Id, _token));
        await Assert.ThrowsAsync<InvalidParameterException>(() => tagged.GetTagsAsync("arn:aws:ecs:us-east-1:000000000000:container-instance/" + seen.Id, _token));
    }

    [Fact]
    public async Task Many_reservations_spill_across_columns_and_read_back_whole()
    {
        var store = _tables.NewStore();
        var seen = await store.RegisterAsync(Host(cpu: 100_000, memory: 100_000), _token);
        var many = Enumerable.Range(0, 600).Select(i => Task($"{i:D4}-{new string('x', 80)}", 1, 1) with { Group = "service:bulk" }).ToList();

        var saved = await store.UpdateAsync("default", seen.Id, i => i with { Reservations = many }, _token);
        var found = await store.FindAsync("default", seen.Id, _token);

        Assert.Equal(600, found!.Reservations.Count);
        Assert.Equal(many.Select(r => r.TaskId), found.Reservations.Select(r => r.TaskId));
        Assert.Equal(saved.ETag, found.ETag);
        Assert.NotEqual(default(ETag), found.ETag);
    }
}
