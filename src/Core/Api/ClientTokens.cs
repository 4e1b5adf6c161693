using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Api;

/// <summary>
/// <c>clientToken</c> idempotency, one protocol for every action that takes a token: a repeat with
/// the same token gets the first request's response back; the same token with different parameters
/// is refused, as ECS does. <see cref="RunOnceAsync"/> claims the token before running (an insert,
/// so two concurrent retries cannot both run) and records the response after it. An action with a
/// step that must not run twice (RunTask's Start) does it after the answer is recorded.
/// </summary>
public sealed class ClientTokens(StorageClients storage, TimeProvider time)
{
    private const string TableName = "ClientTokens";
    private static readonly TimeSpan InFlightTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ClaimPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>How long a token's answer is kept for retries.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(24);

    /// <summary>Deletes the records of tokens first used before <paramref name="before"/> (a batch per cluster); returns how many.</summary>
    public async Task<int> DeleteClaimedBeforeAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        return await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"ClaimedAt lt {before}"), cancellationToken);
    }

    /// <summary>Refuses a token ECS would refuse; true when there is one.</summary>
    public static bool Validate(string? token)
    {
        if (string.IsNullOrEmpty(token)) return false;
        if (token.Length > 64) throw new InvalidParameterException("clientToken may be at most 64 characters.");
        return true;
    }

    private TableEntity Row(string cluster, string action, string token, JsonObject request) => new(
        cluster, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{action}\n{token}"))))
    {
        ["Fingerprint"] = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical(request)!.ToJsonString()))),
        ["ClaimedAt"] = time.GetUtcNow(),
    };

    /// <summary>The request with every object's members in ordinal order: SDKs send the same parameters in different orders.</summary>
    private static JsonNode? Canonical(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Canonical(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Canonical).ToArray()),
        _ => node?.DeepClone(),
    };

    public async Task<JsonObject> RunOnceAsync(
        string cluster, string action, string? token, JsonObject request, Func<Task<JsonObject>> run, CancellationToken cancellationToken)
    {
        if (!Validate(token)) return await run();

        var table = await storage.TableAsync(TableName, cancellationToken);
        var claim = Row(cluster, action, token!, request);
        var key = claim.RowKey;
        var fingerprint = claim.GetString("Fingerprint");

        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await table.AddEntityAsync(claim, cancellationToken);
                break;
            }
            catch (RequestFailedException e) when (e.Status == 409)
            {
                var existing = (await table.GetEntityIfExistsAsync<TableEntity>(cluster, key, cancellationToken: cancellationToken)).Value;
                if (existing is null) continue;
                if (existing.GetString("Fingerprint") != fingerprint)
                    throw new InvalidParameterException("The clientToken was already used with different parameters.");
                if (LargeJson.Read(existing, "Response") is { } response) return JsonNode.Parse(response)!.AsObject();
                if (time.GetUtcNow() - existing.GetDateTimeOffset("ClaimedAt") > InFlightTimeout)
                {
                    // The first attempt died mid-way; whoever deletes the stale claim runs again.
                    try { await table.DeleteEntityAsync(existing, existing.ETag, cancellationToken); } catch (RequestFailedException) { }
                    continue;
                }
                // Still in flight: wait for its answer, or until its claim goes stale and is taken
                // over above. A 500 here would only send the client back to the same wait (an SDK
                // retries a few times within seconds, and the claim of an attempt that died lives 30 s).
                if (attempt > InFlightTimeout / ClaimPoll + 10) throw new ConcurrentUpdateException($"clientToken {token}");
                await Task.Delay(ClaimPoll, time, cancellationToken);
            }
        }

        JsonObject result;
        try
        {
            result = await run();
        }
        catch
        {
            await table.DeleteEntityAsync(cluster, key, cancellationToken: CancellationToken.None);
            throw;
        }
        LargeJson.Write(claim, result.ToJsonString(), "Response");
        await table.UpsertEntityAsync(claim, TableUpdateMode.Replace, CancellationToken.None);
        return result;
    }
}
