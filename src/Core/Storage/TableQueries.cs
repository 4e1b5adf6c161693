using Azure.Data.Tables;

namespace Serverless.Core.Storage;

public static class TableQueries
{
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
        foreach (var batch in matching.GroupBy(r => r.PartitionKey).SelectMany(p => p.Chunk(100)))
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

    /// <summary>An OData string literal, quotes doubled.</summary>
    public static string Quote(string value) => "'" + value.Replace("'", "''") + "'";
}
