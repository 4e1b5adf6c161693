using System.Buffers.Text;
using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Api;

namespace Serverless.Core.Logs;

/// <summary>
/// CloudWatch Logs (target prefix <c>Logs_20140328</c>, AWS JSON 1.1) at the one endpoint: log groups and
/// streams, PutLogEvents, GetLogEvents, FilterLogEvents, retention and tags, as botocore's <c>logs</c>
/// model and AWS's documentation define them. Timestamps are epoch milliseconds, as in the Logs API.
/// </summary>
public sealed class LogsActions(LogStore store, LogEventStore events, LogIngest ingest, EcsOptions options, TimeProvider time) : IActionSource
{
    public const string TargetPrefix = "Logs_20140328";

    /// <summary>GetLogEvents and FilterLogEvents answer at most this many bytes of messages (AWS: 1 MB).</summary>
    private const int MaxResponseBytes = 1_048_576;

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("CreateLogGroup", CreateLogGroupAsync, TargetPrefix);
        registry.Map("DeleteLogGroup", DeleteLogGroupAsync, TargetPrefix);
        registry.Map("DescribeLogGroups", DescribeLogGroupsAsync, TargetPrefix);
        registry.Map("CreateLogStream", CreateLogStreamAsync, TargetPrefix);
        registry.Map("DeleteLogStream", DeleteLogStreamAsync, TargetPrefix);
        registry.Map("DescribeLogStreams", DescribeLogStreamsAsync, TargetPrefix);
        registry.Map("PutLogEvents", PutLogEventsAsync, TargetPrefix);
        registry.Map("GetLogEvents", GetLogEventsAsync, TargetPrefix);
        registry.Map("FilterLogEvents", FilterLogEventsAsync, TargetPrefix);
        registry.Map("PutRetentionPolicy", PutRetentionPolicyAsync, TargetPrefix);
        registry.Map("DeleteRetentionPolicy", DeleteRetentionPolicyAsync, TargetPrefix);
        registry.Map("TagResource", TagResourceAsync, TargetPrefix);
        registry.Map("UntagResource", UntagResourceAsync, TargetPrefix);
        registry.Map("ListTagsForResource", ListTagsForResourceAsync, TargetPrefix);
    }

    private string GroupArn(string name) => $"arn:aws:logs:{options.Region}:{options.AccountId}:log-group:{name}";

    // ---- groups

    private async Task<JsonObject> CreateLogGroupAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        if (request.Bool("deletionProtectionEnabled") == true)
            throw new InvalidParameterException("deletionProtectionEnabled is not supported by this endpoint.");
        var tags = Tags(request["tags"] as JsonObject);
        await store.CreateGroupAsync(new LogGroup(request.String("logGroupName")!, Guid.NewGuid().ToString("N"), time.GetUtcNow(), null,
            request.String("logGroupClass") ?? "STANDARD", request.String("kmsKeyId"), false, tags), cancellationToken);
        return [];
    }

    /// <summary>Deletes the group and its streams; their events go after, unseen, as the group no longer exists.</summary>
    private async Task<JsonObject> DeleteLogGroupAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var group = await store.GetGroupAsync(request.String("logGroupName")!, cancellationToken);
        foreach (var stream in await store.DeleteGroupAsync(group, cancellationToken))
            await events.DeleteAllAsync(stream.Id, cancellationToken);
        return [];
    }

    private async Task<JsonObject> DescribeLogGroupsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var prefix = request.String("logGroupNamePrefix");
        var pattern = request.String("logGroupNamePattern");
        var identifiers = request.Strings("logGroupIdentifiers").Select(GroupNameOf).ToHashSet(StringComparer.Ordinal);
        if (prefix is not null && !string.IsNullOrEmpty(pattern))
            throw new InvalidParameterException("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.");
        if (identifiers.Count > 0 && (prefix is not null || !string.IsNullOrEmpty(pattern)))
            throw new InvalidParameterException("logGroupIdentifiers is mutually exclusive with logGroupNamePrefix and logGroupNamePattern.");
        var logGroupClass = request.String("logGroupClass");
        var limit = request.Int("limit") ?? 50;
        var after = TokenText(request);

        var page = new JsonArray();
        string? last = null;
        var more = false;
        await foreach (var group in store.ListGroupsAsync(prefix, after, cancellationToken))
        {
            if (identifiers.Count > 0 && !identifiers.Contains(group.Name)) continue;
            if (!string.IsNullOrEmpty(pattern) && !group.Name.Contains(pattern, StringComparison.OrdinalIgnoreCase)) continue;
            if (logGroupClass is not null && group.LogGroupClass != logGroupClass) continue;
            if (page.Count == limit)
            {
                more = true;
                break;
            }
            page.Add(ToJson(group));
            last = group.Name;
        }
        var response = new JsonObject { ["logGroups"] = page };
        if (more) response["nextToken"] = Token(last!);
        return response;
    }

    private JsonObject ToJson(LogGroup group)
    {
        var json = new JsonObject
        {
            ["logGroupName"] = group.Name,
            ["creationTime"] = group.CreationTime.ToUnixTimeMilliseconds(),
        };
        if (group.RetentionInDays is { } days) json["retentionInDays"] = days;
        // This endpoint has no metric filters.
        json["metricFilterCount"] = 0;
        json["arn"] = GroupArn(group.Name) + ":*";
        if (group.KmsKeyId is not null) json["kmsKeyId"] = group.KmsKeyId;
        json["logGroupClass"] = group.LogGroupClass;
        json["logGroupArn"] = GroupArn(group.Name);
        return json;
    }

    private async Task<JsonObject> PutRetentionPolicyAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var days = request.Int("retentionInDays")!.Value;
        if (!LogEventRules.RetentionDays.Contains(days))
            throw new InvalidParameterException(
                $"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{string.Join(", ", LogEventRules.RetentionDays)}]");
        await store.UpdateGroupAsync(request.String("logGroupName")!, g => g with { RetentionInDays = days }, cancellationToken);
        return [];
    }

    private async Task<JsonObject> DeleteRetentionPolicyAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        await store.UpdateGroupAsync(request.String("logGroupName")!, g => g with { RetentionInDays = null }, cancellationToken);
        return [];
    }

    // ---- tags (log groups are the taggable resource here)

    private async Task<JsonObject> TagResourceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var added = Tags(request["tags"] as JsonObject);
        await store.UpdateGroupAsync(TaggedGroup(request), g =>
        {
            var tags = new Dictionary<string, string>(g.Tags);
            foreach (var (key, value) in added) tags[key] = value;
            if (tags.Count > 50) throw new TooManyTagsException("A resource can have no more than 50 tags.");
            return g with { Tags = tags };
        }, cancellationToken);
        return [];
    }

    private async Task<JsonObject> UntagResourceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var keys = request.Strings("tagKeys").ToHashSet(StringComparer.Ordinal);
        await store.UpdateGroupAsync(TaggedGroup(request), g => g with { Tags = g.Tags.Where(t => !keys.Contains(t.Key)).ToDictionary() }, cancellationToken);
        return [];
    }

    private async Task<JsonObject> ListTagsForResourceAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var group = await store.GetGroupAsync(TaggedGroup(request), cancellationToken);
        var tags = new JsonObject();
        foreach (var (key, value) in group.Tags.OrderBy(t => t.Key, StringComparer.Ordinal)) tags[key] = value;
        return new JsonObject { ["tags"] = tags };
    }

    private static Dictionary<string, string> Tags(JsonObject? tags)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in tags ?? [])
        {
            if (key.StartsWith("aws:", StringComparison.OrdinalIgnoreCase))
                throw new InvalidParameterException("Tag keys beginning with 'aws:' are reserved for AWS use.");
            result[key] = value!.GetValue<string>();
        }
        return result;
    }

    /// <summary>The group a tagging ARN names: <c>arn:aws:logs:REGION:ACCOUNT:log-group:NAME</c>, optionally ending <c>:*</c>.</summary>
    private string TaggedGroup(JsonObject request)
    {
        var arn = request.String("resourceArn")!;
        var prefix = GroupArn("");
        if (!arn.StartsWith(prefix, StringComparison.Ordinal))
        {
            if (arn.StartsWith("arn:", StringComparison.Ordinal) && arn.Contains(":logs:", StringComparison.Ordinal))
                throw new ResourceNotFoundException("The specified resource does not exist.");
            throw new InvalidParameterException($"Invalid resourceArn: {arn}");
        }
        var name = arn[prefix.Length..];
        return name.EndsWith(":*", StringComparison.Ordinal) ? name[..^2] : name;
    }

    /// <summary>A log group's name from a name or its ARN (<c>logGroupIdentifier</c>).</summary>
    private string GroupNameOf(string identifier)
    {
        if (!identifier.StartsWith("arn:", StringComparison.Ordinal)) return identifier;
        var prefix = GroupArn("");
        if (!identifier.StartsWith(prefix, StringComparison.Ordinal)) throw LogStore.GroupNotFound();
        var name = identifier[prefix.Length..];
        return name.EndsWith(":*", StringComparison.Ordinal) ? name[..^2] : name;
    }

    /// <summary><c>logGroupName</c> or <c>logGroupIdentifier</c>: exactly one of them.</summary>
    private string GroupName(JsonObject request)
    {
        var name = request.String("logGroupName");
        var identifier = request.String("logGroupIdentifier");
        if (name is not null && identifier is not null)
            throw new InvalidParameterException("LogGroup name and LogGroup ARN are mutually exclusive parameters.");
        if (name is null && identifier is null)
            throw new InvalidParameterException("Either logGroupName or logGroupIdentifier must be specified.");
        return name ?? GroupNameOf(identifier!);
    }

    // ---- streams

    private async Task<JsonObject> CreateLogStreamAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var group = await store.GetGroupAsync(request.String("logGroupName")!, cancellationToken);
        await store.CreateStreamAsync(group, request.String("logStreamName")!, time.GetUtcNow(), cancellationToken);
        return [];
    }

    private async Task<JsonObject> DeleteLogStreamAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var group = await store.GetGroupAsync(request.String("logGroupName")!, cancellationToken);
        var stream = await store.GetStreamAsync(group, request.String("logStreamName")!, cancellationToken);
        if (!await store.DeleteStreamAsync(group, stream.Name, cancellationToken)) throw LogStore.StreamNotFound();
        await events.DeleteAllAsync(stream.Id, cancellationToken);
        return [];
    }

    /// <summary>
    /// One partition read of the group's streams (with the prefix as a key range), ordered by name or
    /// by last event time, ascending or descending, paged by the position of the last one answered.
    /// </summary>
    private async Task<JsonObject> DescribeLogStreamsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var byTime = request.String("orderBy") == "LastEventTime";
        var prefix = request.String("logStreamNamePrefix");
        if (byTime && prefix is not null)
            throw new InvalidParameterException("Cannot order by LastEventTime with a logStreamNamePrefix.");
        var descending = request.Bool("descending") == true;
        var limit = request.Int("limit") ?? 50;
        var after = TokenText(request);
        var group = await store.GetGroupAsync(GroupName(request), cancellationToken);

        var streams = new List<LogStream>();
        await foreach (var stream in store.ListStreamsAsync(group, prefix, cancellationToken)) streams.Add(stream);
        string Position(LogStream s) => byTime ? $"{LogKeys.Time(s.LastEventTimestamp ?? 0)}|{s.Name}" : s.Name;
        var ordered = descending
            ? streams.OrderByDescending(Position, StringComparer.Ordinal)
            : streams.OrderBy(Position, StringComparer.Ordinal);
        var rest = ordered.Where(s => after is null || (descending
            ? string.CompareOrdinal(Position(s), after) < 0
            : string.CompareOrdinal(Position(s), after) > 0)).ToList();
        var page = rest.Take(limit).ToList();
        var response = new JsonObject { ["logStreams"] = page.Select(s => (JsonNode?)ToJson(s)).ToJsonArray() };
        if (rest.Count > limit) response["nextToken"] = Token(Position(page[^1]));
        return response;
    }

    private JsonObject ToJson(LogStream stream)
    {
        var json = new JsonObject
        {
            ["logStreamName"] = stream.Name,
            ["creationTime"] = stream.CreationTime.ToUnixTimeMilliseconds(),
        };
        if (stream.FirstEventTimestamp is { } first) json["firstEventTimestamp"] = first;
        if (stream.LastEventTimestamp is { } last) json["lastEventTimestamp"] = last;
        if (stream.LastIngestionTime is { } ingested) json["lastIngestionTime"] = ingested;
        json["arn"] = $"{GroupArn(stream.GroupName)}:log-stream:{stream.Name}";
        return json;
    }

    // ---- events

    private async Task<JsonObject> PutLogEventsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var batch = request["logEvents"]!.AsArray()
            .Select(e => (e!["timestamp"]!.GetValue<long>(), e["message"]!.GetValue<string>()))
            .ToList();
        var rejected = await ingest.PutAsync(request.String("logGroupName")!, request.String("logStreamName")!, batch, cancellationToken);

        var response = new JsonObject();
        if (rejected.Any)
        {
            var info = new JsonObject();
            if (rejected.TooNewStartIndex is { } tooNew) info["tooNewLogEventStartIndex"] = tooNew;
            if (rejected.TooOldEndIndex is { } tooOld) info["tooOldLogEventEndIndex"] = tooOld;
            if (rejected.ExpiredEndIndex is { } expired) info["expiredLogEventEndIndex"] = expired;
            response["rejectedLogEventsInfo"] = info;
        }
        return response;
    }

    /// <summary>
    /// One stream's events in time order. Tokens are <c>f/&lt;eventId&gt;</c> (events after it) and
    /// <c>b/&lt;eventId&gt;</c> (events before it); at the end of the stream the token given comes back.
    /// Without a token: from <c>startTime</c> with <c>startFromHead</c>, else the newest events.
    /// </summary>
    private async Task<JsonObject> GetLogEventsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var group = await store.GetGroupAsync(GroupName(request), cancellationToken);
        var stream = await store.GetStreamAsync(group, request.String("logStreamName")!, cancellationToken);
        var from = request["startTime"]?.GetValue<long>() ?? 0;
        var until = request["endTime"]?.GetValue<long>() ?? long.MaxValue / 2;
        var limit = request.Int("limit") ?? 10_000;
        var token = request.String("nextToken");
        string? position = null;
        var forward = request.Bool("startFromHead") == true;
        if (token is not null)
        {
            if (token.Length < 3 || token[0] is not ('f' or 'b') || token[1] != '/' || token.AsSpan(2).ContainsAnyExceptInRange('0', '9'))
                throw new InvalidParameterException("The specified nextToken is invalid.");
            forward = token[0] == 'f';
            position = token[2..];
        }

        var page = new List<LogEvent>();
        var bytes = 0;
        var read = forward
            ? events.ReadForwardAsync(stream, from, until, position, cancellationToken)
            : events.ReadBackwardAsync(stream, from, until, position, cancellationToken);
        await foreach (var e in read)
        {
            bytes += Encoding.UTF8.GetByteCount(e.Message) + 26;
            if (page.Count == limit || (page.Count > 0 && bytes > MaxResponseBytes)) break;
            page.Add(e);
        }
        if (!forward) page.Reverse();

        var response = new JsonObject
        {
            ["events"] = page.Select(e => (JsonNode?)new JsonObject
            {
                ["timestamp"] = e.Timestamp,
                ["message"] = e.Message,
                ["ingestionTime"] = e.IngestionTime,
            }).ToJsonArray(),
        };
        if (page.Count > 0)
        {
            response["nextForwardToken"] = "f/" + page[^1].EventId;
            response["nextBackwardToken"] = "b/" + page[0].EventId;
        }
        else
        {
            // Nothing more this way: the token given comes back, as AWS answers at the end of a stream.
            response["nextForwardToken"] = token is not null && forward ? token : "f/" + (position ?? LogKeys.Time(from));
            response["nextBackwardToken"] = token is not null && !forward ? token : "b/" + (position ?? LogKeys.Time(Math.Min(until, 999_999_999_999_999)));
        }
        return response;
    }

    /// <summary>
    /// Events of the group's streams (named, by prefix, or all) in the time range that match the pattern,
    /// merged in time order. Only streams whose time bounds meet the range are read, one key range each.
    /// The token is the last eventId answered: eventIds order events across streams as they are answered.
    /// </summary>
    private async Task<JsonObject> FilterLogEventsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var names = request.Strings("logStreamNames").ToHashSet(StringComparer.Ordinal);
        var prefix = request.String("logStreamNamePrefix");
        if (names.Count > 0 && prefix is not null)
            throw new InvalidParameterException("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.");
        var pattern = FilterPattern.Parse(request.String("filterPattern"));
        var from = request["startTime"]?.GetValue<long>() ?? 0;
        // FilterLogEvents' endTime is inclusive ("events with a timestamp later than this time are not returned").
        var until = (request["endTime"]?.GetValue<long>() ?? long.MaxValue / 2 - 1) + 1;
        if (until <= from) throw new InvalidParameterException("endTime must be greater than or equal to startTime.");
        var limit = request.Int("limit") ?? 10_000;
        var after = TokenText(request);
        var group = await store.GetGroupAsync(GroupName(request), cancellationToken);

        var streams = new List<LogStream>();
        await foreach (var stream in store.ListStreamsAsync(group, prefix, cancellationToken))
        {
            if (names.Count > 0 && !names.Contains(stream.Name)) continue;
            streams.Add(stream);
        }
        if (names.Count > 0 && streams.Count < names.Count) throw LogStore.StreamNotFound();

        var resumeFrom = after is not null && after.Length >= 15 && long.TryParse(after.AsSpan(0, 15), out var t) ? Math.Max(from, t) : from;
        var readers = new List<(LogStream Stream, IAsyncEnumerator<LogEvent> Events)>();
        var merge = new PriorityQueue<int, string>(StringComparer.Ordinal);
        try
        {
            foreach (var stream in streams.Where(s => s.FirstBound <= until && s.LastBound >= resumeFrom))
            {
                var reader = Matching(events.ReadForwardAsync(stream, resumeFrom, until, after, cancellationToken), pattern).GetAsyncEnumerator(cancellationToken);
                readers.Add((stream, reader));
                if (await reader.MoveNextAsync()) merge.Enqueue(readers.Count - 1, reader.Current.EventId);
            }

            var page = new JsonArray();
            var bytes = 0;
            string? last = null;
            var more = false;
            while (merge.TryDequeue(out var index, out _))
            {
                var (stream, reader) = readers[index];
                var e = reader.Current;
                bytes += Encoding.UTF8.GetByteCount(e.Message) + 26;
                if (page.Count == limit || (page.Count > 0 && bytes > MaxResponseBytes))
                {
                    more = true;
                    break;
                }
                page.Add(new JsonObject
                {
                    ["logStreamName"] = stream.Name,
                    ["timestamp"] = e.Timestamp,
                    ["message"] = e.Message,
                    ["ingestionTime"] = e.IngestionTime,
                    ["eventId"] = e.EventId,
                });
                last = e.EventId;
                if (await reader.MoveNextAsync()) merge.Enqueue(index, reader.Current.EventId);
            }

            var response = new JsonObject
            {
                ["events"] = page,
                // Deprecated in AWS: complete unless the page filled before the end of the range.
                ["searchedLogStreams"] = streams.Select(s => (JsonNode?)new JsonObject { ["logStreamName"] = s.Name, ["searchedCompletely"] = !more }).ToJsonArray(),
            };
            if (more) response["nextToken"] = Token(last!);
            return response;
        }
        finally
        {
            foreach (var (_, reader) in readers) await reader.DisposeAsync();
        }
    }

    private static async IAsyncEnumerable<LogEvent> Matching(IAsyncEnumerable<LogEvent> source, FilterPattern pattern)
    {
        await foreach (var e in source)
            if (pattern.Matches(e.Message)) yield return e;
    }

    // ---- tokens: base64url of a position (a name, an eventId), opaque to clients

    private static string Token(string position) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(position));

    private static string? TokenText(JsonObject request)
    {
        var token = request.String("nextToken");
        if (token is null) return null;
        try
        {
            if (token.Length > 4096) throw new FormatException();
            return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
        }
        catch (FormatException)
        {
            throw new InvalidParameterException("The specified nextToken is invalid.");
        }
    }
}
