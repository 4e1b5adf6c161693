using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.TaskDefinitions;

/// <summary>
/// The <c>TaskDefinitions</c> table, and the only code that touches it.
/// <para>
/// Partition key is the family, so a family's revisions are one small partition and every
/// per-family read or write stays inside it. The partition holds one <em>family row</em>
/// (row key <c>family</c>: the latest revision number and how many revisions are in each status)
/// and one <em>revision row</em> per revision (row key: the revision zero-padded to 10 digits, so
/// row keys sort numerically; the described definition is JSON split by <see cref="LargeJson"/>).
/// Registering is one entity-group transaction — replace the family row on its ETag and insert
/// the next revision row — so concurrent registrations get consecutive revisions with no gap or
/// duplicate; status changes update the revision row and the family row's counts together the
/// same way.
/// </para>
/// <para>
/// A separate partition <c>~families-desc</c> holds one row per family keyed by the family name
/// with its characters' order inverted, so ListTaskDefinitions can walk families in descending
/// order (Table Storage only reads keys ascending). It is written once, before a family's first
/// revision. Family names use only <c>[a-zA-Z0-9_-]</c>, all below <c>~</c>, so range scans over
/// families stop short of it.
/// </para>
/// </summary>
public sealed class TaskDefinitionStore(StorageClients storage, Arns arns, TimeProvider time, ILogger<TaskDefinitionStore> logger)
{
    public const string TableName = "TaskDefinitions";

    private const string FamilyRowKey = "family";
    private const string DescendingIndexPartition = "~families-desc";
    private const string FamiliesEnd = "~";
    private const string FirstRevisionKey = "0000000000";
    private const string LastRevisionKey = "9999999999";

    /// <summary>Revisions read per descending window: one server page.</summary>
    private const int Window = 1000;

    /// <summary>Attempts at a conditional write before giving up; each lost race means another writer won.</summary>
    private const int MaxAttempts = 30;
    private const int MaxFamiliesRemembered = 10_000;

    /// <summary>
    /// The newest revision number this process has seen per family: only a lower bound for the
    /// next lookup's query (revision numbers only grow), never an answer, so it cannot go stale.
    /// </summary>
    private readonly ConcurrentDictionary<string, int> _newestSeen = new(StringComparer.Ordinal);


    /// <summary>
    /// Stores <paramref name="body"/> (from <see cref="TaskDefinitionDefaults.Resolve"/>) as the
    /// family's next revision, ACTIVE, with <paramref name="tags"/>. Retries lost races
    /// (<see cref="OptimisticUpdate"/>); throws ECS's <see cref="ClientException"/> if it keeps losing.
    /// </summary>
    public async Task<TaskDefinitionRecord> RegisterAsync(JsonObject body, IReadOnlyList<Tag> tags, CancellationToken cancellationToken)
    {
        var family = body.String("family")!;
        var json = body.ToJsonString(AwsJson.Options);
        if (!LargeJson.Fits(json))
            throw new ClientException($"The task definition is too large: {json.Length} characters, at most {LargeJson.MaxChars} are supported.");

        var table = await storage.TableAsync(TableName, cancellationToken);
        var registeredAt = DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());
        try
        {
            return await OptimisticUpdate.RetryAsync(attempt => TryRegisterAsync(table, family, json, tags, registeredAt, attempt, cancellationToken),
                cancellationToken, MaxAttempts);
        }
        catch (ConcurrentUpdateException)
        {
            // ECS refuses the same way when a family sees too many simultaneous registrations.
            throw new ClientException("Too many concurrent attempts to create a new revision of the specified family.");
        }
    }

    private async Task<TaskDefinitionRecord> TryRegisterAsync(
        TableClient table, string family, string json, IReadOnlyList<Tag> tags, DateTimeOffset registeredAt, int attempt, CancellationToken cancellationToken)
    {
        var familyRow = await ReadFamilyAsync(table, family, cancellationToken);
        if (familyRow is null) await AddToDescendingIndexAsync(table, family, cancellationToken);

        var revision = (familyRow?.GetInt32("Latest") ?? 0) + 1;
        var counts = FamilyCounts.From(familyRow);
        counts.Add(TaskDefinitionRecord.Active, 1);
        var newFamilyRow = FamilyEntity(family, revision, counts);

        var revisionRow = new TableEntity(family, RevisionKey(revision))
        {
            ["Revision"] = revision,
            ["Status"] = TaskDefinitionRecord.Active,
            ["RegisteredAt"] = registeredAt,
            ["Tags"] = Tag.Serialize(tags),
        };
        LargeJson.Write(revisionRow, json);

        TableTransactionAction familyAction = familyRow is null
            ? new(TableTransactionActionType.Add, newFamilyRow)
            : new(TableTransactionActionType.UpdateReplace, newFamilyRow, familyRow.ETag);
        try
        {
            var responses = await table.SubmitTransactionAsync([familyAction, new(TableTransactionActionType.Add, revisionRow)], cancellationToken);
            revisionRow.ETag = responses.Value[1].Headers.ETag ?? default;
            var record = ToRecord(revisionRow);
            logger.LogInformation("Registered {TaskDefinitionArn} after {Attempts} attempt(s)", record.Arn, attempt);
            return record;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            // Another registration took this revision number first: read the family row again.
            throw new ConcurrentUpdateException(arns.TaskDefinition(family, revision));
        }
    }

    /// <summary>The revision <paramref name="revision"/> of <paramref name="family"/>, in any status, or null.</summary>
    public async Task<TaskDefinitionRecord?> FindAsync(string family, int revision, CancellationToken cancellationToken)
    {
        if (!IsFamily(family) || revision < 1) return null;
        var table = await storage.TableAsync(TableName, cancellationToken);
        var row = await ReadRevisionAsync(table, family, revision, cancellationToken);
        return row is null ? null : ToRecord(row);
    }

    /// <summary>
    /// The revision a <c>taskDefinition</c> parameter names, as RunTask, CreateService and
    /// UpdateService take it: <c>family</c> (its latest ACTIVE revision), <c>family:revision</c> or an
    /// ARN; null when there is none. Any status: callers decide what an INACTIVE revision may do.
    /// </summary>
    public async Task<TaskDefinitionRecord?> FindByReferenceAsync(string reference, CancellationToken cancellationToken)
    {
        if (arns.ResourcePart(reference, "task-definition") is not { Length: > 0 } name) return null;
        return TaskDefinitionKey.TryParse(name) is { } key
            ? await FindAsync(key.Family, key.Revision, cancellationToken)
            : await FindLatestActiveAsync(name, cancellationToken);
    }

    /// <summary>The highest ACTIVE revision of <paramref name="family"/>, or null when it has none.</summary>
    public async Task<TaskDefinitionRecord?> FindLatestActiveAsync(string family, CancellationToken cancellationToken)
    {
        if (!IsFamily(family)) return null;
        var table = await storage.TableAsync(TableName, cancellationToken);
        TableEntity? familyRow, newest;
        if (_newestSeen.TryGetValue(family, out var seen)
            && await ReadFromAsync(table, family, seen, cancellationToken) is { } rows)
        {
            // One request: the family row (its key sorts after every revision's) and the revisions
            // from the newest this process has seen, which is usually still the newest.
            familyRow = rows.Find(r => r.RowKey == FamilyRowKey);
            newest = familyRow?.GetInt32("Latest") is { } number
                ? rows.Find(r => r.RowKey == RevisionKey(number)) ?? await ReadRevisionAsync(table, family, number, cancellationToken)
                : null;
        }
        else
        {
            familyRow = await ReadFamilyAsync(table, family, cancellationToken);
            newest = familyRow?.GetInt32("Latest") is { } number ? await ReadRevisionAsync(table, family, number, cancellationToken) : null;
        }
        if (familyRow is null || FamilyCounts.From(familyRow).Of(TaskDefinitionRecord.Active) == 0) return null;
        var latest = familyRow.GetInt32("Latest")!.Value;
        if (_newestSeen.Count >= MaxFamiliesRemembered) _newestSeen.Clear();
        _newestSeen[family] = latest;
        // Usually the newest revision is the one, without the index query.
        if (newest?.GetString("Status") == TaskDefinitionRecord.Active) return ToRecord(newest);
        // Find the number by row key alone, then read that one row in full.
        await foreach (var key in DescendingAsync(table, family, latest - 1, TaskDefinitionRecord.Active, ["RowKey"], cancellationToken))
        {
            var row = await ReadRevisionAsync(table, family, ParseRevisionKey(key.RowKey), cancellationToken);
            if (row?.GetString("Status") == TaskDefinitionRecord.Active) return ToRecord(row);
        }
        return null;
    }

    /// <summary>
    /// Moves an ACTIVE revision to INACTIVE, stamping <c>deregisteredAt</c>. A revision in another
    /// status is returned unchanged (ECS lets a deregistration be repeated). Null when it does not exist.
    /// </summary>
    public Task<TaskDefinitionRecord?> DeregisterAsync(TaskDefinitionKey key, CancellationToken cancellationToken)
        => TransitionAsync(key, TaskDefinitionRecord.Active, TaskDefinitionRecord.Inactive, "DeregisteredAt", cancellationToken);

    /// <summary>
    /// Moves an INACTIVE revision to DELETE_IN_PROGRESS, stamping <c>deleteRequestedAt</c>. A
    /// revision in another status is returned unchanged, for the caller to judge. Null when it does not exist.
    /// </summary>
    public Task<TaskDefinitionRecord?> MarkDeleteInProgressAsync(TaskDefinitionKey key, CancellationToken cancellationToken)
        => TransitionAsync(key, TaskDefinitionRecord.Inactive, TaskDefinitionRecord.DeleteInProgress, "DeleteRequestedAt", cancellationToken);

    private async Task<TaskDefinitionRecord?> TransitionAsync(
        TaskDefinitionKey key, string from, string to, string stampProperty, CancellationToken cancellationToken)
    {
        if (!IsFamily(key.Family) || key.Revision < 1) return null;
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await OptimisticUpdate.RetryAsync(async _ =>
        {
            var row = await ReadRevisionAsync(table, key.Family, key.Revision, cancellationToken);
            if (row is null) return null;
            if (row.GetString("Status") != from) return ToRecord(row);

            var familyRow = await ReadFamilyAsync(table, key.Family, cancellationToken)
                ?? throw new InvalidOperationException($"Task definition family {key.Family} has a revision row but no family row");
            var counts = FamilyCounts.From(familyRow);
            counts.Add(from, -1);
            counts.Add(to, 1);

            var stamp = DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());
            var revisionChange = new TableEntity(key.Family, row.RowKey) { ["Status"] = to, [stampProperty] = stamp };
            try
            {
                var responses = await table.SubmitTransactionAsync(
                [
                    new(TableTransactionActionType.UpdateMerge, revisionChange, row.ETag),
                    new(TableTransactionActionType.UpdateReplace, FamilyEntity(key.Family, familyRow.GetInt32("Latest")!.Value, counts), familyRow.ETag),
                ], cancellationToken);
                row["Status"] = to;
                row[stampProperty] = stamp;
                row.ETag = responses.Value[0].Headers.ETag ?? default;
                var record = ToRecord(row);
                logger.LogInformation("Moved {TaskDefinitionArn} from {From} to {To}", record.Arn, from, to);
                return record;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                throw new ConcurrentUpdateException(arns.TaskDefinition(key.Family, key.Revision));
            }
        }, cancellationToken, MaxAttempts);
    }

    /// <summary>
    /// One page of ListTaskDefinitions: revisions in <paramref name="status"/> of
    /// <paramref name="family"/> (every family when null), by family name then revision (ascending,
    /// or both descending), after <paramref name="after"/>. As on ECS, <c>familyPrefix</c> names one
    /// whole family ("web" lists web's revisions, not web-api's), so a family reads one partition;
    /// without it, the scan stops one key past the page.
    /// </summary>
    public async Task<(IReadOnlyList<TaskDefinitionKey> Items, bool More)> ListAsync(
        string? family, string status, bool descending, int take, TaskDefinitionKey? after, CancellationToken cancellationToken)
    {
        if (family is { Length: > 0 } && (!IsFamily(family) || after is { } other && other.Family != family)) return ([], false);
        var prefix = family ?? "";
        var table = await storage.TableAsync(TableName, cancellationToken);
        var items = new List<TaskDefinitionKey>(take + 1);
        if (!descending)
        {
            // Table Storage returns rows in (PartitionKey, RowKey) order, which is the ASC order:
            // first the rest of the cursor's family, then the families after it in the prefix range.
            var statusFilter = TableClient.CreateQueryFilter($"Status eq {status}");
            if (after is { } cursor)
            {
                var rest = TableQueries.And([
                    TableClient.CreateQueryFilter($"PartitionKey eq {cursor.Family} and RowKey gt {RevisionKey(cursor.Revision)} and RowKey le {LastRevisionKey}"),
                    statusFilter]);
                if (await AddKeysAsync(table, rest, take, items, cancellationToken)) return (items, true);
            }
            var lower = after is { } from ? TableClient.CreateQueryFilter($"PartitionKey gt {from.Family}") : TableClient.CreateQueryFilter($"PartitionKey ge {prefix}");
            var upper = family is { Length: > 0 } ? TableClient.CreateQueryFilter($"PartitionKey le {family}") : TableClient.CreateQueryFilter($"PartitionKey lt {FamiliesEnd}");
            var filter = TableQueries.And([
                lower, upper, TableClient.CreateQueryFilter($"RowKey ge {FirstRevisionKey} and RowKey le {LastRevisionKey}"), statusFilter]);
            var more = await AddKeysAsync(table, filter, take - items.Count, items, cancellationToken);
            return (items, more);
        }

        if (after is { } last && await AddDescendingAsync(table, last.Family, last.Revision - 1, status, take, items, cancellationToken))
            return (Trim(items, take), true);
        if (family is { Length: > 0 })
        {
            if (after is not null) return (Trim(items, take), false);
            var filled = await AddFamiliesDescendingAsync(table, [family], status, take, items, cancellationToken);
            return (Trim(items, take), filled);
        }

        // Families in descending order come from the inverted-name index. The names starting with
        // the prefix are the keys starting with the inverted prefix. Their family rows are read a
        // batch at a time, in parallel, to skip families with nothing in this status.
        var invertedPrefix = InvertFamily(prefix)[..^1];
        var indexFilter = TableQueries.And([
            TableClient.CreateQueryFilter($"PartitionKey eq {DescendingIndexPartition}"),
            after is { } start
                ? TableClient.CreateQueryFilter($"RowKey gt {InvertFamily(start.Family)}")
                : TableClient.CreateQueryFilter($"RowKey ge {invertedPrefix}"),
            TableClient.CreateQueryFilter($"RowKey lt {invertedPrefix + "~~"}")]);
        var batch = new List<string>();
        await foreach (var entry in table.QueryAsync<TableEntity>(indexFilter, maxPerPage: 100, select: ["RowKey"], cancellationToken: cancellationToken))
        {
            batch.Add(RevertFamily(entry.RowKey));
            if (batch.Count < 16) continue;
            if (await AddFamiliesDescendingAsync(table, batch, status, take, items, cancellationToken)) return (Trim(items, take), true);
            batch.Clear();
        }
        var lastBatchFilled = await AddFamiliesDescendingAsync(table, batch, status, take, items, cancellationToken);
        return (Trim(items, take), lastBatchFilled);
    }

    /// <summary>
    /// One page of ListTaskDefinitionFamilies: family names starting with <paramref name="prefix"/>
    /// after <paramref name="afterFamily"/>, in name order. A prefix bounds the scan to the
    /// partitions in its range; <paramref name="status"/> is judged on the family row's ACTIVE count.
    /// </summary>
    public async Task<(IReadOnlyList<string> Families, bool More)> ListFamiliesAsync(
        string? prefix, FamilyStatusFilter status, int take, string? afterFamily, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        prefix ??= "";
        var lower = afterFamily is not null && string.CompareOrdinal(afterFamily, prefix) >= 0
            ? TableClient.CreateQueryFilter($"PartitionKey gt {afterFamily}")
            : TableClient.CreateQueryFilter($"PartitionKey ge {prefix}");
        // Every family starting with the prefix sorts below prefix + "~", as '~' follows every family character.
        List<string> clauses = [lower, TableClient.CreateQueryFilter($"PartitionKey lt {prefix + FamiliesEnd} and RowKey eq {FamilyRowKey}")];
        if (status == FamilyStatusFilter.Active) clauses.Add(TableClient.CreateQueryFilter($"Active gt {0}"));
        if (status == FamilyStatusFilter.Inactive) clauses.Add(TableClient.CreateQueryFilter($"Active eq {0}"));
        var filter = TableQueries.And(clauses);
        var (rows, more) = await table.TakeAsync<TableEntity>(filter, take, ["PartitionKey"], cancellationToken);
        return (rows.Select(r => r.PartitionKey).ToList(), more);
    }

    /// <summary>The tags of a revision; null when it does not exist.</summary>
    public async Task<IReadOnlyList<Tag>?> FindTagsAsync(TaskDefinitionKey key, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await ReadRevisionAsync(table, key.Family, key.Revision, cancellationToken) is { } row ? Tag.Deserialize(row.GetString("Tags")) : null;
    }

    /// <summary>Applies <paramref name="change"/> to a revision's tags, conditional on the row's ETag, retrying lost races; false when it does not exist.</summary>
    public async Task<bool> UpdateTagsAsync(TaskDefinitionKey key, Func<IReadOnlyList<Tag>, IReadOnlyList<Tag>> change, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await OptimisticUpdate.RetryAsync(async _ =>
        {
            if (await ReadRevisionAsync(table, key.Family, key.Revision, cancellationToken) is not { } row) return false;
            var tags = change(Tag.Deserialize(row.GetString("Tags")));
            try
            {
                await table.UpdateEntityAsync(
                    new TableEntity(key.Family, row.RowKey) { ["Tags"] = Tag.Serialize(tags) }, row.ETag, TableUpdateMode.Merge, cancellationToken);
                return true;
            }
            catch (RequestFailedException e) when (e.Status is 412 or 404)
            {
                throw new ConcurrentUpdateException(arns.TaskDefinition(key.Family, key.Revision));
            }
        }, cancellationToken, MaxAttempts);
    }

    private TaskDefinitionRecord ToRecord(TableEntity row)
    {
        var family = row.PartitionKey;
        var revision = row.GetInt32("Revision")!.Value;
        var status = row.GetString("Status")!;
        var arn = arns.TaskDefinition(family, revision);
        var body = (JsonObject)JsonNode.Parse(LargeJson.Read(row)!)!;
        var described = TaskDefinitionDefaults.Describe(
            body, arn, revision, status,
            row.GetDateTimeOffset("RegisteredAt")!.Value, row.GetDateTimeOffset("DeregisteredAt"), row.GetDateTimeOffset("DeleteRequestedAt"));
        return new TaskDefinitionRecord(family, revision, status, arn, described, Tag.Deserialize(row.GetString("Tags")), row.ETag);
    }

    /// <summary>
    /// The family row and the revisions from <paramref name="fromRevision"/> up, in one query; null
    /// when they do not fit one small page (many registrations since), for the caller to read them apart.
    /// </summary>
    private static async Task<List<TableEntity>?> ReadFromAsync(TableClient table, string family, int fromRevision, CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {family} and RowKey ge {RevisionKey(fromRevision)} and RowKey le {FamilyRowKey}");
        var (rows, more) = await table.TakeAsync<TableEntity>(filter, 20, select: null, cancellationToken);
        return more ? null : rows;
    }

    private static async Task<TableEntity?> ReadFamilyAsync(TableClient table, string family, CancellationToken cancellationToken)
    {
        var response = await table.GetEntityIfExistsAsync<TableEntity>(family, FamilyRowKey, cancellationToken: cancellationToken);
        return response.HasValue ? response.Value : null;
    }

    private static async Task<TableEntity?> ReadRevisionAsync(TableClient table, string family, int revision, CancellationToken cancellationToken)
    {
        var response = await table.GetEntityIfExistsAsync<TableEntity>(family, RevisionKey(revision), cancellationToken: cancellationToken);
        return response.HasValue ? response.Value : null;
    }

    /// <summary>
    /// Records the family in the descending index. Idempotent, and written before the family's
    /// first revision, so a failure in between leaves only an entry that lists nothing.
    /// </summary>
    private static async Task AddToDescendingIndexAsync(TableClient table, string family, CancellationToken cancellationToken)
    {
        // Upsert: the row carries nothing but its key, so whichever writer lands last changes nothing.
        await table.UpsertEntityAsync(
            new TableEntity(DescendingIndexPartition, InvertFamily(family)) { ["Family"] = family },
            TableUpdateMode.Merge, cancellationToken);
    }

    /// <summary>Rows of <paramref name="family"/> from revision <paramref name="fromInclusive"/> down, optionally in one status.</summary>
    private static async IAsyncEnumerable<TableEntity> DescendingAsync(
        TableClient table, string family, int fromInclusive, string? status, IEnumerable<string>? select,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (var high = fromInclusive; high >= 1; high -= Window)
        {
            var low = Math.Max(1, high - Window + 1);
            var range = TableClient.CreateQueryFilter($"PartitionKey eq {family} and RowKey ge {RevisionKey(low)} and RowKey le {RevisionKey(high)}");
            var filter = status is null ? range : TableQueries.And([range, TableClient.CreateQueryFilter($"Status eq {status}")]);
            var window = new List<TableEntity>();
            await foreach (var row in table.QueryAsync<TableEntity>(filter, select: select, cancellationToken: cancellationToken)) window.Add(row);
            for (var i = window.Count - 1; i >= 0; i--) yield return window[i];
        }
    }

    /// <summary>Adds up to <paramref name="take"/> keys matching <paramref name="filter"/>; true when more exist.</summary>
    private static async Task<bool> AddKeysAsync(TableClient table, string filter, int take, List<TaskDefinitionKey> items, CancellationToken cancellationToken)
    {
        var (rows, more) = await table.TakeAsync<TableEntity>(filter, take, ["PartitionKey", "RowKey"], cancellationToken);
        items.AddRange(rows.Select(r => new TaskDefinitionKey(r.PartitionKey, ParseRevisionKey(r.RowKey))));
        return more;
    }

    /// <summary>Adds keys of one family, descending from <paramref name="fromInclusive"/>, until <paramref name="take"/> + 1 are held; true then.</summary>
    private static async Task<bool> AddDescendingAsync(
        TableClient table, string family, int fromInclusive, string status, int take, List<TaskDefinitionKey> items, CancellationToken cancellationToken)
    {
        if (items.Count > take) return true;
        await foreach (var row in DescendingAsync(table, family, fromInclusive, status, ["RowKey"], cancellationToken))
        {
            items.Add(new TaskDefinitionKey(family, ParseRevisionKey(row.RowKey)));
            if (items.Count > take) return true;
        }
        return false;
    }

    private static async Task<bool> AddFamiliesDescendingAsync(
        TableClient table, List<string> families, string status, int take, List<TaskDefinitionKey> items, CancellationToken cancellationToken)
    {
        var rows = await Task.WhenAll(families.Select(f => ReadFamilyAsync(table, f, cancellationToken)));
        foreach (var row in rows)
        {
            if (row is null || FamilyCounts.From(row).Of(status) == 0) continue;
            if (await AddDescendingAsync(table, row.PartitionKey, row.GetInt32("Latest")!.Value, status, take, items, cancellationToken)) return true;
        }
        return false;
    }

    /// <summary>Pages collect one key past the page to learn whether more follow; this drops it.</summary>
    private static List<TaskDefinitionKey> Trim(List<TaskDefinitionKey> items, int take)
    {
        if (items.Count > take) items.RemoveRange(take, items.Count - take);
        return items;
    }

    private static TableEntity FamilyEntity(string family, int latest, FamilyCounts counts) => new(family, FamilyRowKey)
    {
        ["Latest"] = latest,
        ["Active"] = counts.Of(TaskDefinitionRecord.Active),
        ["Inactive"] = counts.Of(TaskDefinitionRecord.Inactive),
        ["DeleteInProgress"] = counts.Of(TaskDefinitionRecord.DeleteInProgress),
    };

    /// <summary>How many revisions of a family are in each status, kept on the family row.</summary>
    private sealed class FamilyCounts
    {
        private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

        public static FamilyCounts From(TableEntity? row)
        {
            var counts = new FamilyCounts();
            if (row is null) return counts;
            counts._counts[TaskDefinitionRecord.Active] = row.GetInt32("Active") ?? 0;
            counts._counts[TaskDefinitionRecord.Inactive] = row.GetInt32("Inactive") ?? 0;
            counts._counts[TaskDefinitionRecord.DeleteInProgress] = row.GetInt32("DeleteInProgress") ?? 0;
            return counts;
        }

        public int Of(string status) => _counts.GetValueOrDefault(status);

        public void Add(string status, int delta) => _counts[status] = Of(status) + delta;
    }

    public static bool IsFamily(string family) => TaskDefinitionValidation.NamePattern().IsMatch(family);

    /// <summary>Zero-padded to 10 digits, so row keys sort as the numbers do.</summary>
    internal static string RevisionKey(int revision) => revision.ToString("D10", CultureInfo.InvariantCulture);

    private static int ParseRevisionKey(string rowKey) => int.Parse(rowKey, NumberStyles.None, CultureInfo.InvariantCulture);

    /// <summary>The 64 characters a family name may use, in ordinal order.</summary>
    private const string FamilyAlphabet = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

    /// <summary>
    /// A key that sorts family names in reverse: each character mirrored within the alphabet,
    /// then <c>~</c>, which sorts after every mirrored character, so a name sorts before its own
    /// prefixes ("web-api" before "web"), as descending order requires.
    /// </summary>
    internal static string InvertFamily(string family)
        => string.Concat(family.Select(c => FamilyAlphabet[FamilyAlphabet.Length - 1 - FamilyAlphabet.IndexOf(c)])) + "~";

    internal static string RevertFamily(string inverted) => InvertFamily(inverted[..^1])[..^1];

}
