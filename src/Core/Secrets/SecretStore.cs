using System.Buffers.Text;
using System.Text;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;

namespace Serverless.Core.Secrets;

/// <summary>
/// The <c>Secrets</c> table: one partition per secret (its name, '/' written as '|', which no secret
/// name contains), holding the metadata row (<see cref="SecretRecord"/>) and one row per version with
/// that version's encrypted value. A secret's every change is one entity-group transaction in its
/// partition, conditional on the metadata row's ETag, so a version never exists without its labels
/// nor a label without its version.
/// </summary>
public sealed class SecretStore(StorageClients storage)
{
    private const string TableName = "Secrets";
    private const string ValuePrefix = "V";

    public static string Partition(string name) => name.Replace('/', '|');

    /// <summary>A version id may hold any character: the row key is its base64url form.</summary>
    private static string VersionRow(string versionId) => "v|" + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(versionId));

    public async Task<SecretRecord?> FindAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var found = await table.GetEntityIfExistsAsync<TableEntity>(Partition(name), SecretRecord.MetadataRow, cancellationToken: cancellationToken);
        return found.HasValue ? SecretRecord.FromEntity(found.Value!) : null;
    }

    /// <summary>The encrypted value of one version, or null when the row is gone.</summary>
    public async Task<EncryptedValue?> ReadVersionAsync(string name, string versionId, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var found = await table.GetEntityIfExistsAsync<TableEntity>(Partition(name), VersionRow(versionId), cancellationToken: cancellationToken);
        return found.HasValue ? EncryptedValue.ReadFrom(found.Value!, ValuePrefix) : null;
    }

    /// <summary>Every secret's metadata (ListSecrets is an account-wide listing, as on AWS).</summary>
    public async Task<List<SecretRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var secrets = new List<SecretRecord>();
        await foreach (var entity in table.QueryAsync<TableEntity>($"RowKey eq '{SecretRecord.MetadataRow}'", cancellationToken: cancellationToken))
            secrets.Add(SecretRecord.FromEntity(entity));
        return secrets;
    }

    /// <summary>Creates the secret and its first version (if any) together; false when the name is taken.</summary>
    public async Task<bool> CreateAsync(SecretRecord secret, (string VersionId, EncryptedValue Value)? version, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var actions = new List<TableTransactionAction> { new(TableTransactionActionType.Add, secret.ToEntity()) };
        if (version is { } v) actions.Add(new(TableTransactionActionType.Add, VersionEntity(secret.Name, v.VersionId, v.Value)));
        try
        {
            await table.SubmitTransactionAsync(actions, cancellationToken);
            return true;
        }
        catch (TableTransactionFailedException e) when (e.Status == 409)
        {
            return false;
        }
    }

    /// <summary>
    /// Writes the changed metadata, a new version and the removal of pruned versions in one
    /// transaction, conditional on the ETag the metadata was read with.
    /// </summary>
    /// <exception cref="ConcurrentUpdateException">Someone else changed the secret first.</exception>
    public async Task SaveAsync(SecretRecord secret, (string VersionId, EncryptedValue Value)? added, IEnumerable<string> removed, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var actions = new List<TableTransactionAction> { new(TableTransactionActionType.UpdateReplace, secret.ToEntity(), secret.ETag) };
        if (added is { } v) actions.Add(new(TableTransactionActionType.Add, VersionEntity(secret.Name, v.VersionId, v.Value)));
        foreach (var id in removed) actions.Add(new(TableTransactionActionType.Delete, new TableEntity(Partition(secret.Name), VersionRow(id)), ETag.All));
        try
        {
            await table.SubmitTransactionAsync(actions, cancellationToken);
        }
        catch (TableTransactionFailedException e) when (e.Status is 412 or 409 or 404)
        {
            throw new ConcurrentUpdateException(secret.Arn);
        }
    }

    /// <summary>Removes the secret and every version (ForceDeleteWithoutRecovery, or a recovery window that ended).</summary>
    public async Task PurgeAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"PartitionKey eq {Partition(name)}"), cancellationToken);
    }

    private static TableEntity VersionEntity(string name, string versionId, EncryptedValue value)
    {
        var entity = new TableEntity(Partition(name), VersionRow(versionId)) { ["VersionId"] = versionId };
        value.WriteTo(entity, ValuePrefix);
        return entity;
    }
}
