using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;

namespace Serverless.Core.Secrets;

/// <summary>
/// The <c>Parameters</c> table: one partition per parameter (its name, '/' written as '|', which no
/// parameter name contains, so a path is a key range), holding the current version (row <c>p</c>)
/// and every version of its history (rows <c>v0000000001</c>...). A new version is one
/// entity-group transaction: the current row replaced on its ETag, the history row added, and the
/// history's oldest version dropped beyond <see cref="MaxVersions"/>.
/// </summary>
public sealed class ParameterStore(StorageClients storage)
{
    private const string TableName = "Parameters";

    /// <summary>Systems Manager keeps the last 100 versions of a parameter.</summary>
    public const long MaxVersions = 100;

    public static string Partition(string name) => name.Replace('/', '|');

    public async Task<ParameterRecord?> FindAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var found = await table.GetEntityIfExistsAsync<TableEntity>(Partition(name), ParameterRecord.CurrentRow, cancellationToken: cancellationToken);
        return found.HasValue ? ParameterRecord.FromEntity(found.Value!) : null;
    }

    public async Task<ParameterRecord?> FindVersionAsync(string name, long version, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var found = await table.GetEntityIfExistsAsync<TableEntity>(Partition(name), ParameterRecord.VersionRow(version), cancellationToken: cancellationToken);
        return found.HasValue ? ParameterRecord.FromEntity(found.Value!) : null;
    }

    /// <summary>The history of one parameter, oldest first.</summary>
    public async Task<List<ParameterRecord>> HistoryAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var versions = new List<ParameterRecord>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {Partition(name)} and RowKey gt {"v"} and RowKey lt {"w"}");
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            versions.Add(ParameterRecord.FromEntity(entity));
        return versions;
    }

    /// <summary>
    /// Current versions in name order: all of them, or those under <paramref name="path"/> (which ends
    /// in '/'), after <paramref name="afterName"/>; the caller stops reading when it has enough.
    /// </summary>
    public async IAsyncEnumerable<ParameterRecord> ListAsync(string? path, string? afterName, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = $"RowKey eq '{ParameterRecord.CurrentRow}'";
        if (path is not null)
        {
            var prefix = Partition(path);
            // '|' + 1 is '}': every key that starts with the prefix, and nothing else.
            filter += " and " + TableClient.CreateQueryFilter($"PartitionKey gt {prefix} and PartitionKey lt {prefix[..^1] + "}"}");
        }
        if (afterName is not null) filter += " and " + TableClient.CreateQueryFilter($"PartitionKey gt {Partition(afterName)}");
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            yield return ParameterRecord.FromEntity(entity);
    }

    /// <summary>
    /// Writes <paramref name="parameter"/> as the new current version (inserted when
    /// <paramref name="previous"/> is null, else replaced on its ETag) with its history row.
    /// </summary>
    /// <returns>False when another writer went first (the caller reads again).</returns>
    public async Task<bool> PutAsync(ParameterRecord parameter, ParameterRecord? previous, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var actions = new List<TableTransactionAction>
        {
            previous is null
                ? new(TableTransactionActionType.Add, parameter.ToEntity(ParameterRecord.CurrentRow))
                : new(TableTransactionActionType.UpdateReplace, parameter.ToEntity(ParameterRecord.CurrentRow), previous.ETag),
            // Upsert: a history row left by a parameter deleted and created again is replaced.
            new(TableTransactionActionType.UpsertReplace, parameter.ToEntity(ParameterRecord.VersionRow(parameter.Version))),
        };
        if (parameter.Version > MaxVersions)
        {
            actions.Add(new(TableTransactionActionType.Delete,
                new TableEntity(Partition(parameter.Name), ParameterRecord.VersionRow(parameter.Version - MaxVersions)), ETag.All));
        }
        try
        {
            await table.SubmitTransactionAsync(actions, cancellationToken);
            return true;
        }
        catch (TableTransactionFailedException e) when (e.Status is 409 or 412 or 404)
        {
            return false;
        }
    }

    /// <summary>Removes a parameter and its history; false when it did not exist.</summary>
    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"PartitionKey eq {Partition(name)}"), cancellationToken) > 0;
    }
}
