using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tags;

namespace Serverless.Core.Capacity;

/// <summary>
/// A capacity provider: a named pool of workers (an Auto Scaling group to ECS) with its managed
/// scaling and termination protection settings, and the one cluster it is associated with.
/// </summary>
public sealed record CapacityProviderRecord
{
    public const string Active = "ACTIVE";
    public const string Inactive = "INACTIVE";

    public required string Name { get; init; }
    public string Status { get; init; } = Active;
    /// <summary>ECS's <c>autoScalingGroupProvider</c>, with ECS's defaults filled in.</summary>
    public required JsonObject AutoScalingGroupProvider { get; init; }
    public string UpdateStatus { get; init; } = "CREATE_COMPLETE";
    public IReadOnlyList<Tag> Tags { get; init; } = [];
    /// <summary>The cluster it is associated with (PutClusterCapacityProviders), or null.</summary>
    public string? Cluster { get; init; }
    public ETag ETag { get; init; }

    internal TableEntity ToEntity() => new(CapacityProviderStore.Partition, Name)
    {
        ["Status"] = Status,
        ["AutoScalingGroupProvider"] = AutoScalingGroupProvider.ToJsonString(),
        ["UpdateStatus"] = UpdateStatus,
        ["Tags"] = Tag.Serialize(Tags),
        ["Cluster"] = Cluster,
    };

    internal static CapacityProviderRecord FromEntity(TableEntity entity) => new()
    {
        Name = entity.RowKey,
        Status = entity.GetString("Status") ?? Active,
        AutoScalingGroupProvider = JsonNode.Parse(entity.GetString("AutoScalingGroupProvider") ?? "{}")!.AsObject(),
        UpdateStatus = entity.GetString("UpdateStatus") ?? "CREATE_COMPLETE",
        Tags = Tag.Deserialize(entity.GetString("Tags")),
        Cluster = entity.GetString("Cluster"),
        ETag = entity.ETag,
    };
}

/// <summary>
/// The <c>CapacityProviders</c> table: capacity providers are account-wide and few, so they share
/// one partition, which DescribeCapacityProviders reads whole; every write is conditional on the ETag.
/// </summary>
public sealed class CapacityProviderStore(StorageClients storage, Arns arns)
{
    private const string TableName = "CapacityProviders";
    internal const string Partition = "capacity-provider";

    public async Task<CapacityProviderRecord?> FindAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(Partition, name, cancellationToken: cancellationToken);
        return response.HasValue ? CapacityProviderRecord.FromEntity(response.Value!) : null;
    }

    /// <summary>Every ACTIVE capacity provider, in name order.</summary>
    public async Task<IReadOnlyList<CapacityProviderRecord>> ListActiveAsync(CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var result = new List<CapacityProviderRecord>();
        await foreach (var entity in table.QueryAsync<TableEntity>(
            TableClient.CreateQueryFilter($"PartitionKey eq {Partition} and Status eq {CapacityProviderRecord.Active}"), cancellationToken: cancellationToken))
            result.Add(CapacityProviderRecord.FromEntity(entity));
        return result.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>Inserts a new provider, or takes over the row of a deleted (INACTIVE) one; false when an ACTIVE one has the name.</summary>
    public async Task<bool> TryAddAsync(CapacityProviderRecord provider, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            await table.AddEntityAsync(provider.ToEntity(), cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            var existing = await FindAsync(provider.Name, cancellationToken);
            if (existing is null || existing.Status == CapacityProviderRecord.Active) return false;
            try
            {
                await table.UpdateEntityAsync(provider.ToEntity(), existing.ETag, TableUpdateMode.Replace, cancellationToken);
                return true;
            }
            catch (RequestFailedException conflict) when (conflict.Status is 412 or 404)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Read-change-write on the ETag, retried on a lost race; <paramref name="change"/> may throw to
    /// refuse, or return null to leave the row as it is. Null when the provider does not exist.
    /// </summary>
    public async Task<CapacityProviderRecord?> UpdateAsync(string name, Func<CapacityProviderRecord, CapacityProviderRecord?> change, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        for (var attempt = 1; ; attempt++)
        {
            var current = await FindAsync(name, cancellationToken);
            if (current is null) return null;
            var next = change(current);
            if (next is null) return current;
            try
            {
                var response = await table.UpdateEntityAsync(next.ToEntity(), current.ETag, TableUpdateMode.Replace, cancellationToken);
                return next with { ETag = response.Headers.ETag ?? default };
            }
            catch (RequestFailedException e) when (e.Status is 412 or 404)
            {
                if (attempt >= 5) throw new ConcurrentUpdateException(arns.CapacityProvider(name));
                await Task.Delay(Random.Shared.Next(5, 20 * attempt), cancellationToken);
            }
        }
    }
}
