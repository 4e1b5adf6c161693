using Azure.Data.Tables;

namespace Serverless.Core.Storage;

public static class TableQueries
{
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
