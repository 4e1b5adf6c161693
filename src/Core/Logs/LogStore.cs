using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;

namespace Serverless.Core.Logs;

/// <summary>A log group: its name, settings and tags. <see cref="Id"/> names its streams' partition.</summary>
public sealed record LogGroup(
    string Name, string Id, DateTimeOffset CreationTime, int? RetentionInDays, string LogGroupClass,
    string? KmsKeyId, bool DeletionProtection, IReadOnlyDictionary<string, string> Tags, ETag ETag = default);

/// <summary>
/// A log stream. <see cref="Id"/> is its events' partition; <see cref="Number"/> goes into its eventIds.
/// The first/last event times are what ECS shows (eventually consistent, as in AWS); the bounds,
/// which only widen, are what reads across streams may rely on (<see cref="StreamBounds"/>).
/// </summary>
public sealed record LogStream(
    string GroupName, string Name, string Id, string Number, DateTimeOffset CreationTime,
    long? FirstEventTimestamp, long? LastEventTimestamp, long? LastIngestionTime,
    long? FirstBound, long? LastBound, ETag ETag = default);

/// <summary>
/// Tables <c>LogGroups</c> (one partition; a row per group, keyed so rows sort by name) and
/// <c>LogStreams</c> (a partition per group incarnation, a row per stream). Both change at the rate
/// streams are created or their time bounds widen (at most once a minute per stream), never per event.
/// A group or stream deleted and created again gets a new id, so nothing of the old one can show.
/// </summary>
public sealed class LogStore(StorageClients storage)
{
    private const string GroupsTable = "LogGroups";
    private const string StreamsTable = "LogStreams";
    private const string GroupsPartition = "groups";

    public async Task CreateGroupAsync(LogGroup group, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(GroupsTable, cancellationToken);
        try
        {
            await table.AddEntityAsync(ToEntity(group), cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            throw new ResourceAlreadyExistsException("The specified log group already exists");
        }
    }

    public async Task<LogGroup?> FindGroupAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(GroupsTable, cancellationToken);
        var row = await table.GetEntityIfExistsAsync<TableEntity>(GroupsPartition, LogKeys.Group(name), cancellationToken: cancellationToken);
        return row.HasValue ? ToGroup(row.Value!) : null;
    }

    public async Task<LogGroup> GetGroupAsync(string name, CancellationToken cancellationToken)
        => await FindGroupAsync(name, cancellationToken) ?? throw GroupNotFound();

    public static ResourceNotFoundException GroupNotFound() => new("The specified log group does not exist.");

    public static ResourceNotFoundException StreamNotFound() => new("The specified log stream does not exist.");

    /// <summary>Groups in name order after <paramref name="afterName"/>, whose names start with <paramref name="prefix"/>.</summary>
    public async IAsyncEnumerable<LogGroup> ListGroupsAsync(string? prefix, string? afterName, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(GroupsTable, cancellationToken);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {GroupsPartition}");
        if (prefix is not null)
        {
            var key = LogKeys.Group(prefix);
            filter += " and " + TableClient.CreateQueryFilter($"RowKey ge {key} and RowKey lt {LogKeys.PrefixEnd(key)}");
        }
        if (afterName is not null) filter += " and " + TableClient.CreateQueryFilter($"RowKey gt {LogKeys.Group(afterName)}");
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            yield return ToGroup(row);
    }

    /// <summary>Replaces the group row if it is unchanged since it was read.</summary>
    public async Task SaveGroupAsync(LogGroup group, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(GroupsTable, cancellationToken);
        try
        {
            await table.UpdateEntityAsync(ToEntity(group), group.ETag, TableUpdateMode.Replace, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw GroupNotFound();
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            throw new ConcurrentUpdateException(group.Name);
        }
    }

    /// <summary>Reads the group, applies <paramref name="change"/>, writes it back; re-reads on a lost race.</summary>
    public async Task<LogGroup> UpdateGroupAsync(string name, Func<LogGroup, LogGroup> change, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var changed = change(await GetGroupAsync(name, cancellationToken));
            try
            {
                await SaveGroupAsync(changed, cancellationToken);
                return changed;
            }
            catch (ConcurrentUpdateException) when (attempt < 5)
            {
            }
        }
    }

    /// <summary>
    /// Deletes the group row, then its streams' rows (batches of 100); returns the streams that were
    /// in it, whose events the caller deletes. The group is gone for readers once its row is.
    /// </summary>
    public async Task<List<LogStream>> DeleteGroupAsync(LogGroup group, CancellationToken cancellationToken)
    {
        var groups = await storage.TableAsync(GroupsTable, cancellationToken);
        try
        {
            // Unconditional: a retention or tag change made meanwhile does not keep a deleted group.
            await groups.DeleteEntityAsync(GroupsPartition, LogKeys.Group(group.Name), ETag.All, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw GroupNotFound();
        }
        var streams = new List<LogStream>();
        await foreach (var stream in ListStreamsAsync(group, null, cancellationToken)) streams.Add(stream);
        var table = await storage.TableAsync(StreamsTable, cancellationToken);
        await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"PartitionKey eq {group.Id}"), cancellationToken);
        return streams;
    }

    public async Task<LogStream> CreateStreamAsync(LogGroup group, string name, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var stream = new LogStream(group.Name, name, Guid.NewGuid().ToString("N"),
            RandomNumberGenerator.GetInt32(100_000_000).ToString("D8", System.Globalization.CultureInfo.InvariantCulture),
            now, null, null, null, null, null);
        var table = await storage.TableAsync(StreamsTable, cancellationToken);
        try
        {
            var response = await table.AddEntityAsync(ToEntity(group, stream), cancellationToken);
            // With its ETag, the creator may widen its time bounds without reading it first.
            return stream with { ETag = response.Headers.ETag ?? default };
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            throw new ResourceAlreadyExistsException("The specified log stream already exists");
        }
    }

    public async Task<LogStream?> FindStreamAsync(LogGroup group, string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(StreamsTable, cancellationToken);
        var row = await table.GetEntityIfExistsAsync<TableEntity>(group.Id, LogKeys.Stream(name), cancellationToken: cancellationToken);
        return row.HasValue ? ToStream(group.Name, row.Value!) : null;
    }

    public async Task<LogStream> GetStreamAsync(LogGroup group, string name, CancellationToken cancellationToken)
        => await FindStreamAsync(group, name, cancellationToken) ?? throw StreamNotFound();

    /// <summary>The group's streams whose names start with <paramref name="prefix"/>, in name-key order: one partition.</summary>
    public async IAsyncEnumerable<LogStream> ListStreamsAsync(LogGroup group, string? prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(StreamsTable, cancellationToken);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {group.Id}");
        if (prefix is not null)
        {
            var key = LogKeys.Stream(prefix);
            filter += " and " + TableClient.CreateQueryFilter($"RowKey ge {key} and RowKey lt {LogKeys.PrefixEnd(key)}");
        }
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            yield return ToStream(group.Name, row);
    }

    /// <summary>
    /// Writes the stream's new times if the row is unchanged since read: the stream as written (its new ETag),
    /// or null when another writer went first.
    /// </summary>
    public async Task<LogStream?> TrySaveStreamAsync(LogGroup group, LogStream stream, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(StreamsTable, cancellationToken);
        try
        {
            var response = await table.UpdateEntityAsync(ToEntity(group, stream), stream.ETag, TableUpdateMode.Replace, cancellationToken);
            return stream with { ETag = response.Headers.ETag ?? default };
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            return null;
        }
    }

    public async Task<bool> DeleteStreamAsync(LogGroup group, string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(StreamsTable, cancellationToken);
        try
        {
            var response = await table.DeleteEntityAsync(group.Id, LogKeys.Stream(name), ETag.All, cancellationToken);
            return response.Status != 404;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }

    private static TableEntity ToEntity(LogGroup group) => new(GroupsPartition, LogKeys.Group(group.Name))
    {
        ["Name"] = group.Name,
        ["Id"] = group.Id,
        ["Created"] = group.CreationTime,
        ["RetentionInDays"] = group.RetentionInDays,
        ["Class"] = group.LogGroupClass,
        ["KmsKeyId"] = group.KmsKeyId,
        ["DeletionProtection"] = group.DeletionProtection,
        // At most 50 tags of 128 + 256 characters: well under 64 KiB.
        ["Tags"] = JsonSerializer.Serialize(group.Tags),
    };

    private static LogGroup ToGroup(TableEntity row) => new(
        row.GetString("Name")!, row.GetString("Id")!, row.GetDateTimeOffset("Created")!.Value, row.GetInt32("RetentionInDays"),
        row.GetString("Class") ?? "STANDARD", row.GetString("KmsKeyId"), row.GetBoolean("DeletionProtection") ?? false,
        JsonSerializer.Deserialize<Dictionary<string, string>>(row.GetString("Tags") ?? "{}")!, row.ETag);

    private static TableEntity ToEntity(LogGroup group, LogStream stream) => new(group.Id, LogKeys.Stream(stream.Name))
    {
        ["Name"] = stream.Name,
        ["Id"] = stream.Id,
        ["Number"] = stream.Number,
        ["Created"] = stream.CreationTime,
        ["FirstEvent"] = stream.FirstEventTimestamp,
        ["LastEvent"] = stream.LastEventTimestamp,
        ["LastIngestion"] = stream.LastIngestionTime,
        ["FirstBound"] = stream.FirstBound,
        ["LastBound"] = stream.LastBound,
    };

    private static LogStream ToStream(string groupName, TableEntity row) => new(
        groupName, row.GetString("Name")!, row.GetString("Id")!, row.GetString("Number")!, row.GetDateTimeOffset("Created")!.Value,
        row.GetInt64("FirstEvent"), row.GetInt64("LastEvent"), row.GetInt64("LastIngestion"),
        row.GetInt64("FirstBound"), row.GetInt64("LastBound"), row.ETag);
}
