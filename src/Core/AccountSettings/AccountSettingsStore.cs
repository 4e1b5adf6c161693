using Azure;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.AccountSettings;

/// <summary>
/// The <c>AccountSettings</c> table: one small partition for the account, a row per principal and
/// setting (at most a dozen per principal), keyed <c>principal|name</c> so a principal's settings are
/// one range read. The account default is the row set of the root principal.
/// </summary>
public sealed class AccountSettingsStore(StorageClients storage)
{
    private const string TableName = "AccountSettings";
    private const string Partition = "account";

    /// <summary>The settings set for <paramref name="principalArn"/>, in name order.</summary>
    public async Task<List<AccountSetting>> ListAsync(string principalArn, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var prefix = Prefix(principalArn);
        // '|' + 1 is '}': every row key that starts with the prefix, and nothing else.
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {Partition} and RowKey gt {prefix} and RowKey lt {prefix[..^1] + "}"}");
        var settings = new List<AccountSetting>();
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            settings.Add(new AccountSetting(entity.GetString("Name")!, entity.GetString("Value")!, entity.GetString("PrincipalArn")!));
        return settings;
    }

    /// <summary>Sets (inserts or replaces) one setting: last writer wins, as for ECS.</summary>
    public async Task PutAsync(AccountSetting setting, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var entity = new TableEntity(Partition, Key(setting.PrincipalArn, setting.Name))
        {
            ["Name"] = setting.Name,
            ["Value"] = setting.Value,
            ["PrincipalArn"] = setting.PrincipalArn,
        };
        // ETag-less upsert on purpose: a setting is one value and the last PutAccountSetting wins.
        await table.UpsertEntityAsync(entity, TableUpdateMode.Replace, cancellationToken);
    }

    /// <summary>Removes one setting; false when it was not set.</summary>
    public async Task<bool> DeleteAsync(string principalArn, string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            var response = await table.DeleteEntityAsync(Partition, Key(principalArn, name), ETag.All, cancellationToken);
            return response.Status != 404;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return false;
        }
    }

    private static string Key(string principalArn, string name) => Prefix(principalArn) + name;

    // Row keys may not hold / \ # ? (an IAM ARN has '/'): the principal is percent-encoded.
    private static string Prefix(string principalArn) => Uri.EscapeDataString(principalArn) + "|";
}
