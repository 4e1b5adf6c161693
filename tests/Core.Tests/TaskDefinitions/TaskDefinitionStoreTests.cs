using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tags;
using Serverless.Core.TaskDefinitions;
using Serverless.TestSupport;
using static Serverless.Core.Tests.TaskDefinitions.TaskDefinitionRequests;

namespace Serverless.Core.Tests.TaskDefinitions;

[Collection(AzuriteCollection.Name)]
public sealed class TaskDefinitionStoreTests(AzuriteFixture azurite)
{
    private const string Caller = "arn:aws:iam::000000000000:user/tester";
    private readonly TaskDefinitionTables _tables = new(azurite.ConnectionString);
    // xunit 2 has no per-test token; this one bounds each test so a hung call fails instead of stalling the run.
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private readonly CancellationToken _token = new CancellationTokenSource(Timeout).Token;

    private static JsonObject Body(JsonObject request) => TaskDefinitionDefaults.Resolve(request, Caller);

    private Task<TaskDefinitionRecord> RegisterAsync(TaskDefinitionStore store, string family, IReadOnlyList<Tag>? tags = null)
        => store.RegisterAsync(Body(Minimal(family)), tags ?? [], _token);

    [Fact]
    public async Task A_registered_revision_is_found_as_it_was_described()
    {
        var store = _tables.NewStore();
        var registered = await store.RegisterAsync(Body(Register(Realistic)), [new Tag("env", "test")], _token);

        var found = await store.FindAsync("shop", 1, _token);

        Assert.NotNull(found);
        Assert.Equal(("shop", 1, "ACTIVE", "arn:aws:ecs:us-east-1:000000000000:task-definition/shop:1"), (found.Family, found.Revision, found.Status, found.Arn));
        Assert.True(JsonNode.DeepEquals(registered.TaskDefinition, found.TaskDefinition), found.TaskDefinition.ToJsonString());
        Assert.Equal([new Tag("env", "test")], found.Tags);
        Assert.Equal(found.ETag, registered.ETag);
        Assert.Equal(TaskDefinitionTables.Start.ToUnixTimeMilliseconds() / 1000.0, found.TaskDefinition["registeredAt"]!.GetValue<double>());
    }

    [Fact]
    public async Task Revisions_count_up_by_one_per_family()
    {
        var store = _tables.NewStore();
        Assert.Equal(1, (await RegisterAsync(store, "a")).Revision);
        Assert.Equal(2, (await RegisterAsync(store, "a")).Revision);
        Assert.Equal(1, (await RegisterAsync(store, "b")).Revision);
        Assert.Equal(3, (await RegisterAsync(store, "a")).Revision);
    }

    [Fact]
    public async Task Twenty_concurrent_registrations_in_one_family_get_revisions_one_to_twenty()
    {
        // Twenty stores on one table behave as twenty control-plane instances racing each other.
        var prefix = TaskDefinitionTables.NewPrefix();
        var stores = Enumerable.Range(0, 20).Select(_ => _tables.NewStore(prefix)).ToList();

        var registered = await Task.WhenAll(stores.Select((s, i) =>
            Task.Run(() => s.RegisterAsync(Body(Minimal("race", image: $"local/busybox:{i}")), [], _token), _token)));

        Assert.Equal(Enumerable.Range(1, 20), registered.Select(r => r.Revision).Order());
        var images = new HashSet<string>();
        for (var revision = 1; revision <= 20; revision++)
        {
            var found = await stores[0].FindAsync("race", revision, _token);
            images.Add(found!.ContainerDefinitions.Single()["image"]!.GetValue<string>());
        }
        Assert.Equal(20, images.Count);
        Assert.Null(await stores[0].FindAsync("race", 21, _token));
    }

    [Fact]
    public async Task The_latest_active_revision_skips_deregistered_ones()
    {
        var store = _tables.NewStore();
        for (var i = 0; i < 4; i++) await RegisterAsync(store, "web");
        await store.DeregisterAsync(new TaskDefinitionKey("web", 3), _token);
        Assert.Equal(4, (await store.FindLatestActiveAsync("web", _token))!.Revision);
        await store.DeregisterAsync(new TaskDefinitionKey("web", 4), _token);

        Assert.Equal(2, (await store.FindLatestActiveAsync("web", _token))!.Revision);
        await store.DeregisterAsync(new TaskDefinitionKey("web", 2), _token);
        Assert.Equal(1, (await store.FindLatestActiveAsync("web", _token))!.Revision);
        await store.DeregisterAsync(new TaskDefinitionKey("web", 1), _token);
        Assert.Null(await store.FindLatestActiveAsync("web", _token));
        Assert.Null(await store.FindLatestActiveAsync("never-registered", _token));
    }

    [Fact]
    public async Task The_latest_active_revision_follows_what_another_control_plane_registers_and_deregisters()
    {
        // The reader remembers the newest revision it saw, as a lower bound for its next query only.
        var prefix = TaskDefinitionTables.NewPrefix();
        var reader = _tables.NewStore(prefix);
        var writer = _tables.NewStore(prefix);
        await RegisterAsync(writer, "web");
        Assert.Equal(1, (await reader.FindLatestActiveAsync("web", _token))!.Revision);

        await RegisterAsync(writer, "web");
        Assert.Equal(2, (await reader.FindLatestActiveAsync("web", _token))!.Revision);
        for (var i = 0; i < 25; i++) await RegisterAsync(writer, "web");
        Assert.Equal(27, (await reader.FindLatestActiveAsync("web", _token))!.Revision);
        await writer.DeregisterAsync(new TaskDefinitionKey("web", 27), _token);
        Assert.Equal(26, (await reader.FindLatestActiveAsync("web", _token))!.Revision);
        Assert.Equal(26, (await reader.FindLatestActiveAsync("web", _token))!.Revision);
        for (var revision = 1; revision <= 26; revision++) await writer.DeregisterAsync(new TaskDefinitionKey("web", revision), _token);
        Assert.Null(await reader.FindLatestActiveAsync("web", _token));
    }

    [Fact]
    public async Task Deregistering_stamps_the_time_once_and_repeats_harmlessly()
    {
        var store = _tables.NewStore();
        await RegisterAsync(store, "web");
        _tables.Time.Advance(TimeSpan.FromMinutes(5));

        var first = await store.DeregisterAsync(new TaskDefinitionKey("web", 1), _token);
        _tables.Time.Advance(TimeSpan.FromMinutes(5));
        var again = await store.DeregisterAsync(new TaskDefinitionKey("web", 1), _token);

        Assert.Equal("INACTIVE", first!.Status);
        Assert.Equal("INACTIVE", first.TaskDefinition["status"]!.GetValue<string>());
        Assert.NotNull(first.TaskDefinition["deregisteredAt"]);
        Assert.True(JsonNode.DeepEquals(first.TaskDefinition, again!.TaskDefinition));
        Assert.Null(await store.DeregisterAsync(new TaskDefinitionKey("web", 2), _token));
    }

    [Fact]
    public async Task Only_inactive_revisions_move_to_delete_in_progress()
    {
        var store = _tables.NewStore();
        await RegisterAsync(store, "web");
        await RegisterAsync(store, "web");
        await store.DeregisterAsync(new TaskDefinitionKey("web", 1), _token);

        var active = await store.MarkDeleteInProgressAsync(new TaskDefinitionKey("web", 2), _token);
        var deleted = await store.MarkDeleteInProgressAsync(new TaskDefinitionKey("web", 1), _token);
        var deletedAgain = await store.MarkDeleteInProgressAsync(new TaskDefinitionKey("web", 1), _token);

        Assert.Equal("ACTIVE", active!.Status);
        Assert.Equal("DELETE_IN_PROGRESS", deleted!.Status);
        Assert.NotNull(deleted.TaskDefinition["deleteRequestedAt"]);
        Assert.NotNull(deleted.TaskDefinition["deregisteredAt"]);
        Assert.Equal("DELETE_IN_PROGRESS", deletedAgain!.Status);
        Assert.Null(await store.MarkDeleteInProgressAsync(new TaskDefinitionKey("web", 9), _token));
        Assert.Null(await store.MarkDeleteInProgressAsync(new TaskDefinitionKey("no-such", 1), _token));
    }

    [Fact]
    public async Task Family_status_follows_its_revisions()
    {
        var store = _tables.NewStore();
        await RegisterAsync(store, "alive");
        await RegisterAsync(store, "gone");
        await RegisterAsync(store, "gone");
        await store.DeregisterAsync(new TaskDefinitionKey("gone", 1), _token);
        await store.DeregisterAsync(new TaskDefinitionKey("gone", 2), _token);
        await store.MarkDeleteInProgressAsync(new TaskDefinitionKey("gone", 2), _token);

        async Task<string> Families(FamilyStatusFilter status) => string.Join(",", (await store.ListFamiliesAsync(null, status, 100, null, _token)).Families);
        Assert.Equal("alive,gone", await Families(FamilyStatusFilter.All));
        Assert.Equal("alive", await Families(FamilyStatusFilter.Active));
        Assert.Equal("gone", await Families(FamilyStatusFilter.Inactive));
    }

    [Fact]
    public async Task Listing_pages_through_250_revisions_across_families_in_both_orders()
    {
        var store = _tables.NewStore();
        // Families chosen so that one is a prefix of another and case matters: ordinal order is
        // "Web" < "api" < "web" < "web-admin" < "web_worker".
        var families = new Dictionary<string, int> { ["web"] = 120, ["web-admin"] = 40, ["api"] = 30, ["Web"] = 25, ["web_worker"] = 35 };
        var expected = new List<TaskDefinitionKey>();
        foreach (var (family, count) in families)
        {
            // Ten at a time: quick, yet well inside the store's retry budget for one family's row
            // on a machine busy with the other test projects (contention is not this test's subject).
            foreach (var chunk in Enumerable.Range(0, count).Chunk(10))
                await Task.WhenAll(chunk.Select(_ => RegisterAsync(store, family)));
            expected.AddRange(Enumerable.Range(1, count).Select(r => new TaskDefinitionKey(family, r)));
        }
        Assert.Equal(250, expected.Count);
        await store.DeregisterAsync(new TaskDefinitionKey("web", 7), _token);
        expected.Remove(new TaskDefinitionKey("web", 7));

        var ascending = expected.OrderBy(k => k.Family, StringComparer.Ordinal).ThenBy(k => k.Revision).ToList();
        Assert.Equal(ascending, await ListAllAsync(store, null, descending: false, pageSize: 17));
        Assert.Equal(Enumerable.Reverse(ascending), await ListAllAsync(store, null, descending: true, pageSize: 23));
        Assert.Equal(Enumerable.Reverse(ascending), await ListAllAsync(store, null, descending: true, pageSize: 100));

        // One whole family, as ECS reads familyPrefix: "web" does not include web-admin.
        var web = ascending.Where(k => k.Family == "web").ToList();
        Assert.Equal(web, await ListAllAsync(store, "web", descending: false, pageSize: 9));
        Assert.Equal(Enumerable.Reverse(web), await ListAllAsync(store, "web", descending: true, pageSize: 9));
        Assert.Equal(ascending.Where(k => k.Family == "web-admin"), await ListAllAsync(store, "web-admin", descending: false, pageSize: 100));
        Assert.Empty(await ListAllAsync(store, "nothing", descending: true, pageSize: 10));

        Assert.Equal([new TaskDefinitionKey("web", 7)], await ListAllAsync(store, null, descending: false, pageSize: 5, status: "INACTIVE"));
        Assert.Equal([new TaskDefinitionKey("web", 7)], await ListAllAsync(store, "web", descending: true, pageSize: 5, status: "INACTIVE"));
        Assert.Empty(await ListAllAsync(store, "we", descending: true, pageSize: 5, status: "INACTIVE"));
    }

    [Fact]
    public async Task A_full_page_reports_more_only_when_more_exist()
    {
        var store = _tables.NewStore();
        for (var i = 0; i < 4; i++) await RegisterAsync(store, "web");

        var (items, more) = await store.ListAsync(null, "ACTIVE", false, 4, null, _token);
        var (descendingItems, descendingMore) = await store.ListAsync("web", "ACTIVE", true, 4, null, _token);
        var (firstPage, firstMore) = await store.ListAsync(null, "ACTIVE", true, 3, null, _token);

        Assert.Equal((4, false), (items.Count, more));
        Assert.Equal((4, false), (descendingItems.Count, descendingMore));
        Assert.Equal((3, true), (firstPage.Count, firstMore));
    }

    [Fact]
    public async Task Family_listing_pages_by_prefix()
    {
        var store = _tables.NewStore();
        string[] names = ["web", "web-1", "web-2", "webhook", "worker", "api", "We"];
        foreach (var name in names) await RegisterAsync(store, name);

        var collected = new List<string>();
        string? after = null;
        do
        {
            var (page, more) = await store.ListFamiliesAsync("web", FamilyStatusFilter.All, 2, after, _token);
            collected.AddRange(page);
            after = more ? page[^1] : null;
        }
        while (after is not null);

        Assert.Equal(["web", "web-1", "web-2", "webhook"], collected);
        Assert.Equal(names.Order(StringComparer.Ordinal), (await store.ListFamiliesAsync(null, FamilyStatusFilter.All, 100, null, _token)).Families);
    }

    [Fact]
    public async Task Tags_change_by_key_and_survive_concurrent_writers()
    {
        var store = _tables.NewStore();
        var tagged = new TaskDefinitionTags(store, _tables.Arns);
        var arn = (await RegisterAsync(store, "web", [new Tag("team", "a")])).Arn;

        await Task.WhenAll(Enumerable.Range(0, 10).Select(i => tagged.UpdateTagsAsync(arn, t => Tag.Merge(t, [new Tag($"k{i}", $"v{i}")]), _token)));
        await tagged.UpdateTagsAsync(arn, t => Tag.Merge(t, [new Tag("team", "b")]), _token);
        await tagged.UpdateTagsAsync(arn, t => Tag.Remove(t, ["k0", "k1", "missing"]), _token);

        var tags = await tagged.GetTagsAsync(arn, _token);
        Assert.Equal(9, tags.Count);
        Assert.Contains(new Tag("team", "b"), tags);
        Assert.DoesNotContain(tags, t => t.Key is "k0" or "k1");
        Assert.Equal(tags, (await store.FindAsync("web", 1, _token))!.Tags);
    }

    [Theory]
    [InlineData("arn:aws:ecs:us-east-1:000000000000:task-definition/web")]
    [InlineData("arn:aws:ecs:us-east-1:000000000000:task-definition/web:x")]
    [InlineData("arn:aws:ecs:eu-west-1:000000000000:task-definition/web:1")]
    [InlineData("arn:aws:ecs:us-east-1:111111111111:task-definition/web:1")]
    [InlineData("arn:aws:ecs:us-east-1:000000000000:cluster/web")]
    [InlineData("web:1")]
    public async Task Tagging_refuses_what_is_not_a_task_definition_revision_arn(string arn)
    {
        var tagged = new TaskDefinitionTags(_tables.NewStore(), _tables.Arns);
        await Assert.ThrowsAsync<InvalidParameterException>(() => tagged.GetTagsAsync(arn, _token));
        await Assert.ThrowsAsync<InvalidParameterException>(() => tagged.UpdateTagsAsync(arn, t => Tag.Merge(t, [new Tag("k", "v")]), _token));
    }

    [Fact]
    public async Task Tagging_a_revision_that_does_not_exist_is_resource_not_found()
    {
        var store = _tables.NewStore();
        var tagged = new TaskDefinitionTags(store, _tables.Arns);
        await RegisterAsync(store, "web");
        const string missing = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2";
        await Assert.ThrowsAsync<ResourceNotFoundException>(() => tagged.GetTagsAsync(missing, _token));
        await Assert.ThrowsAsync<ResourceNotFoundException>(() => tagged.UpdateTagsAsync(missing, t => Tag.Merge(t, [new Tag("k", "v")]), _token));
        await Assert.ThrowsAsync<ResourceNotFoundException>(() => tagged.UpdateTagsAsync(missing, t => Tag.Remove(t, ["k"]), _token));
    }

    [Fact]
    public async Task A_definition_larger_than_one_table_property_round_trips()
    {
        var store = _tables.NewStore();
        var request = Minimal().With(r => r.Container()["environment"] = new JsonArray(
            [.. Enumerable.Range(0, 400).Select(i => (JsonNode)new JsonObject { ["name"] = $"VAR_{i}", ["value"] = new string('x', 500) + "é" })]));
        var body = Body(request);
        Assert.True(body.ToJsonString().Length > 3 * LargeJson.ChunkChars);

        await store.RegisterAsync(body, [], _token);
        var found = await store.FindAsync("web", 1, _token);

        Assert.True(JsonNode.DeepEquals(request.Container()["environment"], found!.ContainerDefinitions.Single()["environment"]));
    }

    [Fact]
    public async Task A_definition_too_large_for_an_entity_is_refused_before_writing()
    {
        var store = _tables.NewStore();
        var request = Minimal().With(r => r.Container()["command"] = new JsonArray(
            [.. Enumerable.Range(0, 100).Select(_ => (JsonNode)JsonValue.Create(new string('x', 5000)))]));

        await Assert.ThrowsAsync<ClientException>(() => store.RegisterAsync(Body(request), [], _token));
        Assert.Empty((await store.ListFamiliesAsync(null, FamilyStatusFilter.All, 10, null, _token)).Families);
    }

    private async Task<List<TaskDefinitionKey>> ListAllAsync(
        TaskDefinitionStore store, string? prefix, bool descending, int pageSize, string status = "ACTIVE")
    {
        var all = new List<TaskDefinitionKey>();
        TaskDefinitionKey? after = null;
        for (var pages = 0; pages < 1000; pages++)
        {
            var (items, more) = await store.ListAsync(prefix, status, descending, pageSize, after, _token);
            Assert.True(items.Count <= pageSize);
            Assert.True(!more || items.Count == pageSize, "a page that says more follow is full");
            all.AddRange(items);
            if (!more) return all;
            after = items[^1];
        }
        throw new InvalidOperationException("Paging did not end");
    }
}
