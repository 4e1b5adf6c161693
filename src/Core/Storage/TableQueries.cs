using Azure.Data.Tables;

namespace Serverless.Core.Storage;

public static class TableQueries
{
    /// <summary>Azure's most comparisons in one <c>$filter</c>.</summary>
    public const int MaxFilterComparisons = 15;

    /// <summary>Azure's most operations in one entity-group transaction (one partition, at most 4 MiB too).</summary>
    public const int MaxBatchOperations = 100;

    /// <summary>Most row keys one query names beside its partition key, within <see cref="MaxFilterComparisons"/>.</summary>
    public const int MaxRowKeysPerQuery = MaxFilterComparisons - 1;

    /// <summary>
    /// Filters that together read the rows <paramref name="rowKeys"/> of one partition: one query per
    /// <see cref="MaxRowKeysPerQuery"/> keys, since Azure refuses a filter of more than 15 comparisons.
    /// </summary>
    public static IEnumerable<string> RowsOfPartitionFilters(string partitionKey, IEnumerable<string> rowKeys)
        => rowKeys.Chunk(MaxRowKeysPerQuery).Select(chunk =>
            And([TableClient.CreateQueryFilter($"PartitionKey eq {partitionKey}"), Or(chunk.Select(k => TableClient.CreateQueryFilter($"RowKey eq {k}")))]));

    /// <summary>
    /// Clauses that must all hold, each already built with <see cref="TableClient.CreateQueryFilter(FormattableString)"/>
    /// (which quotes every value); a clause holding <c>or</c> comes from <see cref="Or"/>, so it is parenthesised.
    /// </summary>
    public static string And(IEnumerable<string> clauses) => string.Join(" and ", clauses);

    /// <summary>
    /// Clauses of which one must hold, each built with <see cref="TableClient.CreateQueryFilter(FormattableString)"/>; parenthesised.
    /// At most <see cref="MaxRowKeysPerQuery"/> of them: a list that can grow is split first (as
    /// <see cref="RowsOfPartitionFilters"/> does), since Azure refuses a filter of more than 15 comparisons.
    /// </summary>
    public static string Or(IEnumerable<string> clauses)
    {
        var list = clauses.ToList();
        if (list.Count > MaxRowKeysPerQuery)
            throw new ArgumentException($"{list.Count} alternatives in one filter; Azure takes at most {MaxFilterComparisons} comparisons: split the list.", nameof(clauses));
        return "(" + string.Join(" or ", list) + ")";
    }

    /// <summary>
    /// Deletes every entity matching <paramref name="filter"/>: one scan of keys, then one batch per
    /// partition (100 rows at most each). A batch that fails (another process deleted one of its
    /// rows first) is left for the next call. Returns how many were deleted.
    /// </summary>
    public static async Task<int> DeleteMatchingAsync(this TableClient table, string filter, CancellationToken cancellationToken)
    {
        var matching = new List<TableEntity>();
        await foreach (var row in table.QueryAsync<TableEntity>(filter, select: ["PartitionKey", "RowKey"], cancellationToken: cancellationToken))
            matching.Add(row);
        var deleted = 0;
        foreach (var batch in matching.GroupBy(r => r.PartitionKey).SelectMany(p => p.Chunk(MaxBatchOperations)))
        {
            try
            {
                await table.SubmitTransactionAsync(batch.Select(r => new TableTransactionAction(TableTransactionActionType.Delete, r, Azure.ETag.All)), cancellationToken);
                deleted += batch.Length;
            }
            catch (TableTransactionFailedException)
            {
                // Some row went first; what is left goes next time.
            }
        }
        return deleted;
    }

    /// <summary>
    /// Up to <paramref name="take"/> entities matching <paramref name="filter"/>, and whether more exist:
    /// reads pages until it has one entity past the limit, so callers can page by key.
    /// </summary>
    public static async Task<(List<T> Items, bool More)> TakeAsync<T>(
        this TableClient table, string filter, int take, IEnumerable<string>? select, CancellationToken cancellationToken)
        where T : class, ITableEntity
    {
        var items = new List<T>(Math.Min(take, 1000));
        await foreach (var entity in table.QueryAsync<T>(filter, maxPerPage: take >= 1000 ? 1000 : take + 1, select, cancellationToken))
        {
            if (items.Count == take) return (items, true);
            items.Add(entity);
        }
        return (items, false);
    }
}
