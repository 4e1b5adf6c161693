using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;

namespace Serverless.Core.Deploy;

/// <summary>One service's part of a delivery, and how far it got (each step is recorded before the next).</summary>
public sealed record PlannedDeployment
{
    public required string Cluster { get; init; }
    public required string Service { get; init; }
    public required string Image { get; init; }
    public string? Container { get; init; }
    public bool Force { get; init; }
    /// <summary>The secret part of the status URL (32 random bytes, base64url).</summary>
    public required string StatusToken { get; init; }
    /// <summary>
    /// Recorded just before registering: the family's latest ACTIVE revision then. An attempt that
    /// finds this set but no <see cref="TaskDefinitionArn"/> died around the registration.
    /// </summary>
    public int? RegisteringAfter { get; init; }
    /// <summary>The revision registered for this delivery, once registered.</summary>
    public string? TaskDefinitionArn { get; init; }
    /// <summary>The deployment the service started on it, once started (or the current one when nothing changed).</summary>
    public string? DeploymentId { get; init; }
    /// <summary>The image was already deployed and <see cref="Force"/> was not set: nothing registered.</summary>
    public bool Unchanged { get; init; }
    /// <summary>Set when this part was refused: the HTTP status and message.</summary>
    public int? ErrorStatus { get; init; }
    public string? ErrorMessage { get; init; }

    public bool IsFinished => DeploymentId is not null || ErrorStatus is not null;
}

/// <summary>
/// A delivery as recorded: claimed (<see cref="Answer"/> null) while it is worked on, then answered.
/// <see cref="Single"/>: the generic payload, answered with one deployment's members rather than a list.
/// </summary>
public sealed record Delivery
{
    public required string Id { get; init; }
    public required string Fingerprint { get; init; }
    public bool Single { get; init; }
    /// <summary>The base of this delivery's status URLs, as the first attempt saw it, so a resumed one answers the same.</summary>
    public required string StatusBase { get; init; }
    public required DateTimeOffset ReceivedAt { get; init; }
    public required DateTimeOffset ClaimedAt { get; init; }
    public required IReadOnlyList<PlannedDeployment> Targets { get; init; }
    public int? AnswerStatus { get; init; }
    public string? Answer { get; init; }
    public ETag ETag { get; init; }

    public bool IsAnswered => AnswerStatus is not null;
}

/// <summary>Where a status URL points.</summary>
public sealed record DeploymentStatusLink(string Cluster, string Service, string DeploymentId, string TaskDefinitionArn);

/// <summary>
/// The <c>Deploys</c> table, and the only code that touches it. Three kinds of row, each its own
/// partition so no delivery contends with another: a delivery (<c>d</c> + SHA-256 of its
/// <c>X-GitHub-Delivery</c>; inserted to claim it, so of two control planes receiving the same
/// delivery exactly one works on it), a status link (<c>s</c> + its token: one point read per poll),
/// and a service's deploy lock (<c>l|cluster|service</c>: deliveries for one service run one after another).
/// </summary>
public sealed class DeliveryStore(StorageClients storage)
{
    public const string TableName = "Deploys";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public static string Fingerprint(ReadOnlySpan<byte> body) => Convert.ToHexStringLower(SHA256.HashData(body));

    private static string DeliveryKey(string id) => "d" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)));

    public async Task<Delivery?> FindAsync(string deliveryId, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(DeliveryKey(deliveryId), "", cancellationToken: cancellationToken);
        return response.HasValue ? ToDelivery(response.Value!) : null;
    }

    /// <summary>Inserts the delivery: the row as written when this caller claimed it, null when it was recorded before.</summary>
    public async Task<Delivery?> TryInsertAsync(Delivery delivery, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            var response = await table.AddEntityAsync(ToEntity(delivery), cancellationToken);
            return delivery with { ETag = response.Headers.ETag ?? default };
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return null;
        }
    }

    /// <summary>Writes the delivery conditionally on the ETag it was read with; another writer first is a <see cref="ConcurrentUpdateException"/>.</summary>
    public async Task<Delivery> SaveAsync(Delivery delivery, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            var response = await table.UpdateEntityAsync(ToEntity(delivery), delivery.ETag, TableUpdateMode.Replace, cancellationToken);
            return delivery with { ETag = response.Headers.ETag ?? default };
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
            throw new ConcurrentUpdateException($"delivery {delivery.Id}");
        }
    }

    /// <summary>Deliveries claimed before <paramref name="claimedBefore"/> and never answered (a scan: the sweep's, never a request's).</summary>
    public async IAsyncEnumerable<Delivery> ListUnansweredAsync(DateTimeOffset claimedBefore, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var filter = TableClient.CreateQueryFilter($"Kind eq 'delivery' and Answered eq false and ClaimedAt lt {claimedBefore}");
        await foreach (var row in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            yield return ToDelivery(row);
    }

    /// <summary>Forgets deliveries and status links received before <paramref name="before"/>; returns how many rows went.</summary>
    public async Task<int> DeleteReceivedBeforeAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"ReceivedAt lt {before}"), cancellationToken);
    }

    public async Task SaveStatusLinkAsync(string token, DeploymentStatusLink link, DateTimeOffset receivedAt, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        // Upsert: the link's content is decided by the delivery row, so writing it again on a resumed delivery is harmless.
        await table.UpsertEntityAsync(new TableEntity("s" + token, "")
        {
            ["Kind"] = "status",
            ["Cluster"] = link.Cluster,
            ["Service"] = link.Service,
            ["DeploymentId"] = link.DeploymentId,
            ["TaskDefinitionArn"] = link.TaskDefinitionArn,
            ["ReceivedAt"] = receivedAt,
        }, TableUpdateMode.Replace, cancellationToken);
    }

    public async Task<DeploymentStatusLink?> FindStatusLinkAsync(string token, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var response = await table.GetEntityIfExistsAsync<TableEntity>("s" + token, "", cancellationToken: cancellationToken);
        if (!response.HasValue) return null;
        var row = response.Value!;
        return new DeploymentStatusLink(row.GetString("Cluster"), row.GetString("Service"), row.GetString("DeploymentId"), row.GetString("TaskDefinitionArn"));
    }

    /// <summary>
    /// Takes the service's deploy lock for <paramref name="holder"/> until <paramref name="expiresAt"/>: an
    /// insert, or a conditional replace of a lock that expired (its holder crashed). Null when it is held.
    /// </summary>
    public async Task<ETag?> TryLockAsync(string cluster, string service, string holder, DateTimeOffset now, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var row = new TableEntity(LockKey(cluster, service), "") { ["Kind"] = "lock", ["Holder"] = holder, ["ExpiresAt"] = expiresAt };
        try
        {
            return (await table.AddEntityAsync(row, cancellationToken)).Headers.ETag;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
        }
        var read = await table.GetEntityIfExistsAsync<TableEntity>(row.PartitionKey, "", cancellationToken: cancellationToken);
        if (!read.HasValue || read.Value!.GetDateTimeOffset("ExpiresAt") > now) return null;
        var existing = read.Value!;
        try
        {
            return (await table.UpdateEntityAsync(row, existing.ETag, TableUpdateMode.Replace, cancellationToken)).Headers.ETag;
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
            return null;
        }
    }

    /// <summary>Releases the lock if it is still the one taken (an expired lock another caller took over is theirs).</summary>
    public async Task UnlockAsync(string cluster, string service, ETag etag, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        try
        {
            await table.DeleteEntityAsync(LockKey(cluster, service), "", etag, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
        }
    }

    private static string LockKey(string cluster, string service) => $"l|{cluster}|{service}";

    private static TableEntity ToEntity(Delivery delivery)
    {
        var row = new TableEntity(DeliveryKey(delivery.Id), "")
        {
            ["Kind"] = "delivery",
            ["DeliveryId"] = delivery.Id,
            ["Fingerprint"] = delivery.Fingerprint,
            ["Single"] = delivery.Single,
            ["StatusBase"] = delivery.StatusBase,
            ["ReceivedAt"] = delivery.ReceivedAt,
            ["ClaimedAt"] = delivery.ClaimedAt,
            ["Answered"] = delivery.IsAnswered,
            ["AnswerStatus"] = delivery.AnswerStatus,
        };
        LargeJson.Write(row, JsonSerializer.Serialize(delivery.Targets, Json), "Targets");
        if (delivery.Answer is not null) LargeJson.Write(row, delivery.Answer, "Answer");
        return row;
    }

    private static Delivery ToDelivery(TableEntity row) => new()
    {
        Id = row.GetString("DeliveryId"),
        Fingerprint = row.GetString("Fingerprint"),
        Single = row.GetBoolean("Single") ?? false,
        StatusBase = row.GetString("StatusBase"),
        ReceivedAt = row.GetDateTimeOffset("ReceivedAt")!.Value,
        ClaimedAt = row.GetDateTimeOffset("ClaimedAt")!.Value,
        Targets = JsonSerializer.Deserialize<List<PlannedDeployment>>(LargeJson.Read(row, "Targets")!, Json)!,
        AnswerStatus = row.GetInt32("AnswerStatus"),
        Answer = LargeJson.Read(row, "Answer"),
        ETag = row.ETag,
    };
}
