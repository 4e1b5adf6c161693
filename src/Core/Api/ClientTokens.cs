using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Api;

/// <summary>
/// <c>clientToken</c> idempotency: the first request with a token claims it (an insert, so two
/// concurrent retries cannot both run) and records its response; a repeat with the same token
/// gets that response back; the same token with different parameters is refused, as ECS does.
/// </summary>
public sealed class ClientTokens(StorageClients storage, TimeProvider time)
{
    private const string TableName = "ClientTokens";
    private static readonly TimeSpan InFlightTimeout = TimeSpan.FromSeconds(30);

    public async Task<JsonObject> RunOnceAsync(
        string cluster, string action, string? token, JsonObject request, Func<Task<JsonObject>> run, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token)) return await run();
        if (token.Length > 64) throw new InvalidParameterException("clientToken may be at most 64 characters.");

        var table = await storage.TableAsync(TableName, cancellationToken);
        var key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{action}\n{token}")));
        var fingerprint = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(request.ToJsonString())));
        var claim = new TableEntity(cluster, key) { ["Fingerprint"] = fingerprint, ["ClaimedAt"] = time.GetUtcNow() };

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
                if (attempt > 50) throw new ConcurrentUpdateException($"clientToken {token}");
                await Task.Delay(200, cancellationToken);
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
