using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Logs;
using Serverless.Core.Tests.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Logs;

/// <summary>CloudWatch Logs through the whole endpoint over real Table Storage (behind the Azure-limits proxy).</summary>
[Collection(AzuriteCollection.Name)]
public sealed class LogsApiTests : IDisposable
{
    // Starts at the real time: the endpoint checks signatures, dated by the real clock, against it.
    private readonly FakeTimeProvider _time = new(TimeProvider.System.GetUtcNow());
    private readonly ApiHarness _api;
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public LogsApiTests(AzuriteFixture azurite)
        => _api = new(azurite, TestNames.Unique<LogsApiTests>(), services => services.AddSingleton<TimeProvider>(_time));

    public void Dispose() => _api.Dispose();

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private Task<ApiHarness.Answer> SendAsync(string action, JsonObject body)
        => _api.SendAsync($"{LogsActions.TargetPrefix}.{action}", Encoding.UTF8.GetBytes(body.ToJsonString()), _token);

    private async Task<JsonObject> OkAsync(string action, JsonObject body)
    {
        var answer = await SendAsync(action, body);
        Assert.True(answer.Status == 200, answer.Raw);
        return answer.Body!;
    }

    private async Task<string> RefusedAsync(string action, JsonObject body)
    {
        var answer = await SendAsync(action, body);
        Assert.True(answer.Status == 400, answer.Raw);
        return answer.Type!;
    }

    private async Task StreamAsync(string group, string stream)
    {
        await SendAsync("CreateLogGroup", new JsonObject { ["logGroupName"] = group });
        await OkAsync("CreateLogStream", new JsonObject { ["logGroupName"] = group, ["logStreamName"] = stream });
    }

    private Task<JsonObject> PutAsync(string group, string stream, params (long Timestamp, string Message)[] events)
        => OkAsync("PutLogEvents", new JsonObject
        {
            ["logGroupName"] = group,
            ["logStreamName"] = stream,
            ["logEvents"] = new JsonArray([.. events.Select(e => (JsonNode)new JsonObject { ["timestamp"] = e.Timestamp, ["message"] = e.Message })]),
        });

    private static List<string> Messages(JsonObject answer) => [.. answer["events"]!.AsArray().Select(e => e!["message"]!.GetValue<string>())];

    [Fact]
    public async Task Groups_are_created_once_described_in_name_order_in_pages_and_deleted()
    {
        foreach (var name in new[] { "/ecs/web", "/ecs-api", "/ecs/db", "app" })
            await OkAsync("CreateLogGroup", new JsonObject { ["logGroupName"] = name, ["tags"] = new JsonObject { ["team"] = "a" } });
        Assert.Equal("ResourceAlreadyExistsException", await RefusedAsync("CreateLogGroup", new JsonObject { ["logGroupName"] = "/ecs/web" }));
        Assert.Equal("InvalidParameterException", await RefusedAsync("CreateLogGroup", new JsonObject { ["logGroupName"] = "bad:name" }));

        var first = await OkAsync("DescribeLogGroups", new JsonObject { ["logGroupNamePrefix"] = "/ecs", ["limit"] = 2 });
        var second = await OkAsync("DescribeLogGroups", new JsonObject { ["logGroupNamePrefix"] = "/ecs", ["limit"] = 2, ["nextToken"] = first["nextToken"]!.GetValue<string>() });
        var names = first["logGroups"]!.AsArray().Concat(second["logGroups"]!.AsArray()).Select(g => g!["logGroupName"]!.GetValue<string>());
        Assert.Equal(["/ecs-api", "/ecs/db", "/ecs/web"], names);
        Assert.Null(second["nextToken"]);
        var web = first["logGroups"]!.AsArray().Concat(second["logGroups"]!.AsArray()).Single(g => g!["logGroupName"]!.GetValue<string>() == "/ecs/web")!;
        Assert.Equal("arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*", web["arn"]!.GetValue<string>());
        Assert.Equal(Now, web["creationTime"]!.GetValue<long>());

        var tags = await OkAsync("ListTagsForResource", new JsonObject { ["resourceArn"] = "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web" });
        Assert.Equal("a", tags["tags"]!["team"]!.GetValue<string>());

        await OkAsync("DeleteLogGroup", new JsonObject { ["logGroupName"] = "/ecs/web" });
        Assert.Equal("ResourceNotFoundException", await RefusedAsync("DeleteLogGroup", new JsonObject { ["logGroupName"] = "/ecs/web" }));
        var pattern = await OkAsync("DescribeLogGroups", new JsonObject { ["logGroupNamePattern"] = "ECS" });
        Assert.Equal(["/ecs-api", "/ecs/db"], pattern["logGroups"]!.AsArray().Select(g => g!["logGroupName"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_group_created_again_after_deletion_has_none_of_the_old_streams_or_events()
    {
        await StreamAsync("g", "s");
        await PutAsync("g", "s", (Now, "old line"));
        await OkAsync("DeleteLogGroup", new JsonObject { ["logGroupName"] = "g" });
        await StreamAsync("g", "s");

        var answer = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["startFromHead"] = true });
        Assert.Empty(Messages(answer));
    }

    [Fact]
    public async Task Rejected_events_are_reported_and_the_rest_stored_in_order()
    {
        await StreamAsync("g", "web/app/1");
        await OkAsync("PutRetentionPolicy", new JsonObject { ["logGroupName"] = "g", ["retentionInDays"] = 1 });
        var answer = await PutAsync("g", "web/app/1",
            (Now - TimeSpan.FromDays(15).Ticks / 10_000, "too old"),
            (Now - TimeSpan.FromDays(2).Ticks / 10_000, "expired"),
            (Now - 2, "one"), (Now - 1, "two"), (Now - 1, "three"),
            (Now + TimeSpan.FromHours(3).Ticks / 10_000, "too new"));

        Assert.Equal("""{"tooNewLogEventStartIndex":5,"tooOldLogEventEndIndex":0,"expiredLogEventEndIndex":1}""", answer["rejectedLogEventsInfo"]!.ToJsonString());
        var events = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "web/app/1" });
        Assert.Equal(["one", "two", "three"], Messages(events));
        Assert.Equal("InvalidParameterException", await RefusedAsync("PutRetentionPolicy", new JsonObject { ["logGroupName"] = "g", ["retentionInDays"] = 2 }));
        Assert.Equal("ResourceNotFoundException", await RefusedAsync("PutLogEvents", new JsonObject
        {
            ["logGroupName"] = "g", ["logStreamName"] = "missing",
            ["logEvents"] = new JsonArray(new JsonObject { ["timestamp"] = Now, ["message"] = "x" }),
        }));
    }

    [Fact]
    public async Task GetLogEvents_pages_forward_and_backward_and_the_end_answers_with_the_token_given()
    {
        await StreamAsync("g", "s");
        // Two batches whose times interleave, and a gap of hours: order is by timestamp across chunks.
        await PutAsync("g", "s", (Now - 7_200_000, "a"), (Now - 3000, "c"), (Now - 1000, "e"));
        await PutAsync("g", "s", (Now - 4000, "b"), (Now - 2000, "d"));

        var latest = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["limit"] = 2 });
        Assert.Equal(["d", "e"], Messages(latest));
        var earlier = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["limit"] = 2, ["nextToken"] = latest["nextBackwardToken"]!.GetValue<string>() });
        Assert.Equal(["b", "c"], Messages(earlier));

        var head = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["startFromHead"] = true, ["limit"] = 3 });
        Assert.Equal(["a", "b", "c"], Messages(head));
        var rest = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["nextToken"] = head["nextForwardToken"]!.GetValue<string>() });
        Assert.Equal(["d", "e"], Messages(rest));
        var end = rest["nextForwardToken"]!.GetValue<string>();
        var atEnd = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["nextToken"] = end });
        Assert.Empty(Messages(atEnd));
        Assert.Equal(end, atEnd["nextForwardToken"]!.GetValue<string>());

        await PutAsync("g", "s", (Now, "f"));
        var live = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["nextToken"] = end });
        Assert.Equal(["f"], Messages(live));

        var window = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["startTime"] = Now - 4000, ["endTime"] = Now - 2000, ["startFromHead"] = true });
        Assert.Equal(["b", "c"], Messages(window));
        Assert.Equal("InvalidParameterException", await RefusedAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["nextToken"] = "x/123" }));
    }

    [Fact]
    public async Task A_writer_keeps_its_rows_between_batches_yet_never_narrows_bounds_another_widened_and_notices_a_deleted_stream()
    {
        await StreamAsync("g", "s");
        var ingest = _api.Get<LogIngest>();
        var writer = new LogIngest.Writer("g", "s");
        var t = Now;
        await ingest.PutAsync(writer, [(t - 300_000, "a")], _token);   // widens the stream row
        await ingest.PutAsync(writer, [(t - 299_000, "b")], _token);   // same minute: rows read once and kept
        await PutAsync("g", "s", (t - 100_000, "c"));                    // another writer widens the row meanwhile
        await ingest.PutAsync(writer, [(t - 1000, "d")], _token);      // widening from stale rows meets the new ETag and reads again
        await ingest.PutAsync(writer, [(t - 500, "e")], _token);

        var head = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["startFromHead"] = true });
        Assert.Equal(["a", "b", "c", "d", "e"], Messages(head));
        // FilterLogEvents reads a stream only where its recorded bounds meet the range: they cover every batch.
        var recent = await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "g", ["startTime"] = t - 150_000 });
        Assert.Equal(["c", "d", "e"], Messages(recent));

        await OkAsync("DeleteLogStream", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s" });
        _time.Advance(LogIngest.RowsMaxAge);
        await Assert.ThrowsAsync<Serverless.Core.Api.ResourceNotFoundException>(() => ingest.PutAsync(writer, [(Now, "f")], _token));
    }

    [Fact]
    public async Task A_writers_cursor_is_stored_with_its_events_and_the_one_stored_last_is_read_back()
    {
        await StreamAsync("g", "s");
        var (ingest, store, events) = (_api.Get<LogIngest>(), _api.Get<LogStore>(), _api.Get<LogEventStore>());
        async Task<string?> LastCursorAsync(string stream)
            => await events.LastCursorAsync(await store.GetStreamAsync(await store.GetGroupAsync("g", _token), stream, _token), _token);
        Assert.Null(await LastCursorAsync("s"));

        var writer = new LogIngest.Writer("g", "s");
        var t = Now;
        await ingest.PutAsync(writer, [(t - 5000, "a")], _token, "1:1");
        _time.Advance(TimeSpan.FromMilliseconds(10));
        await ingest.PutAsync(writer, [(t - 6000, "b")], _token, "2:1");   // stored later, though its event is older
        _time.Advance(TimeSpan.FromMilliseconds(10));
        await PutAsync("g", "s", (t - 1000, "c"));                            // another writer's events carry no cursor
        Assert.Equal("2:1", await LastCursorAsync("s"));

        // The writer EnsureStreamAsync returns holds the rows it read or made: it puts into a new stream and an existing one.
        var made = await ingest.EnsureStreamAsync("g", "new", createGroup: false, _token);
        await ingest.PutAsync(made, [(Now, "d")], _token, "3:2");
        _time.Advance(TimeSpan.FromMilliseconds(10));
        var existing = await ingest.EnsureStreamAsync("g", "s", createGroup: false, _token);
        await ingest.PutAsync(existing, [(Now, "e")], _token);
        Assert.Equal("3:2", await LastCursorAsync("new"));
        var all = await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "g", ["startTime"] = t - 10_000 });
        Assert.Equal(["b", "a", "c", "d", "e"], Messages(all));
    }

    [Fact]
    public async Task FilterLogEvents_merges_streams_in_time_order_with_stable_eventIds_and_patterns()
    {
        await StreamAsync("/ecs/web", "web/app/1");
        await StreamAsync("/ecs/web", "web/app/2");
        await StreamAsync("/ecs/web", "other/x/3");
        await PutAsync("/ecs/web", "web/app/1", (Now - 5000, """{"level":"error","msg":"disk full"}"""), (Now - 3000, "GET /health 200"));
        await PutAsync("/ecs/web", "web/app/2", (Now - 4000, """{"level":"info","msg":"started"}"""), (Now - 2000, "ERROR connection refused"));
        await PutAsync("/ecs/web", "other/x/3", (Now - 1000, "ERROR elsewhere"));

        var all = await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "/ecs/web", ["logStreamNamePrefix"] = "web/" });
        Assert.Equal(["""{"level":"error","msg":"disk full"}""", """{"level":"info","msg":"started"}""", "GET /health 200", "ERROR connection refused"], Messages(all));
        Assert.Equal(["web/app/1", "web/app/2", "web/app/1", "web/app/2"], all["events"]!.AsArray().Select(e => e!["logStreamName"]!.GetValue<string>()));

        var ids = all["events"]!.AsArray().Select(e => e!["eventId"]!.GetValue<string>()).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        var again = await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "/ecs/web", ["logStreamNamePrefix"] = "web/" });
        Assert.Equal(ids, again["events"]!.AsArray().Select(e => e!["eventId"]!.GetValue<string>()));

        Assert.Equal(["ERROR connection refused", "ERROR elsewhere"], Messages(await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "/ecs/web", ["filterPattern"] = "ERROR" })));
        Assert.Equal(["ERROR connection refused"], Messages(await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "/ecs/web", ["filterPattern"] = "\"connection refused\"" })));
        Assert.Equal(["""{"level":"error","msg":"disk full"}"""], Messages(await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "/ecs/web", ["filterPattern"] = "{ $.level = \"error\" }" })));
        Assert.Equal(["ERROR elsewhere"], Messages(await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "/ecs/web", ["logStreamNames"] = new JsonArray("other/x/3") })));
        Assert.Equal(["GET /health 200", "ERROR connection refused"], Messages(await OkAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "/ecs/web", ["startTime"] = Now - 3000, ["endTime"] = Now - 2000 })));

        // Paging: one event a page, resumed by the token, ends without one.
        var seen = new List<string>();
        var request = new JsonObject { ["logGroupName"] = "/ecs/web", ["limit"] = 2 };
        while (true)
        {
            var page = await OkAsync("FilterLogEvents", request);
            seen.AddRange(Messages(page));
            if (page["nextToken"] is not { } next) break;
            request["nextToken"] = next.GetValue<string>();
        }
        Assert.Equal(5, seen.Count);
        Assert.Equal("InvalidParameterException", await RefusedAsync("FilterLogEvents", new JsonObject { ["logGroupName"] = "/ecs/web", ["filterPattern"] = "{ $.level = " }));
    }

    [Fact]
    public async Task DescribeLogStreams_orders_by_name_or_last_event_time_and_pages()
    {
        await StreamAsync("g", "b");
        await StreamAsync("g", "a");
        await StreamAsync("g", "c");
        await PutAsync("g", "c", (Now - 3000, "x"));
        await PutAsync("g", "a", (Now - 2000, "x"));
        await PutAsync("g", "b", (Now - 1000, "x"));

        var byName = await OkAsync("DescribeLogStreams", new JsonObject { ["logGroupName"] = "g", ["limit"] = 2 });
        Assert.Equal(["a", "b"], byName["logStreams"]!.AsArray().Select(s => s!["logStreamName"]!.GetValue<string>()));
        var next = await OkAsync("DescribeLogStreams", new JsonObject { ["logGroupName"] = "g", ["limit"] = 2, ["nextToken"] = byName["nextToken"]!.GetValue<string>() });
        Assert.Equal(["c"], next["logStreams"]!.AsArray().Select(s => s!["logStreamName"]!.GetValue<string>()));

        var byTime = await OkAsync("DescribeLogStreams", new JsonObject { ["logGroupName"] = "g", ["orderBy"] = "LastEventTime", ["descending"] = true });
        Assert.Equal(["b", "a", "c"], byTime["logStreams"]!.AsArray().Select(s => s!["logStreamName"]!.GetValue<string>()));
        Assert.Equal(Now - 1000, byTime["logStreams"]![0]!["lastEventTimestamp"]!.GetValue<long>());
        Assert.Equal("InvalidParameterException", await RefusedAsync("DescribeLogStreams", new JsonObject { ["logGroupName"] = "g", ["orderBy"] = "LastEventTime", ["logStreamNamePrefix"] = "a" }));
    }

    [Fact]
    public async Task Retention_deletes_events_older_than_the_groups_retention()
    {
        await StreamAsync("g", "s");
        await PutAsync("g", "s", (Now - TimeSpan.FromDays(3).Ticks / 10_000, "old"), (Now - TimeSpan.FromDays(3).Ticks / 10_000 + 1, "old too"));
        await PutAsync("g", "s", (Now, "new"));
        await OkAsync("PutRetentionPolicy", new JsonObject { ["logGroupName"] = "g", ["retentionInDays"] = 1 });

        await _api.Get<LogRetention>().SweepAsync(_token);

        var events = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["startFromHead"] = true });
        Assert.Equal(["new"], Messages(events));
    }

    [Fact]
    public async Task A_batch_of_ten_thousand_events_and_a_mebibyte_is_stored_within_Azures_limits()
    {
        await StreamAsync("g", "s");
        var message = new string('x', 72);
        await PutAsync("g", "s", [.. Enumerable.Range(0, 10_000).Select(i => (Now - 10_000 + i, $"{i:D5} {message}"))]);
        var big = new string('y', 200 * 1024);
        await PutAsync("g", "s", [.. Enumerable.Range(0, 4).Select(i => (Now, big))]);

        var events = await OkAsync("GetLogEvents", new JsonObject { ["logGroupName"] = "g", ["logStreamName"] = "s", ["startFromHead"] = true });
        Assert.Equal(10_000, events["events"]!.AsArray().Count);
        Assert.StartsWith("09999 ", Messages(events)[^1]);
    }
}
