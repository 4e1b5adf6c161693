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
/// so two concurrent retries cannot both run) and records the response after it. A claim whose run
/// died before recording its answer is taken over once stale (<see cref="Claim.TookOver"/>): an
/// action with a step that must not run twice (RunTask's Start, sent beside the answer's record)
/// first looks for what the dead run did.
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
        if (await ClaimAsync(cluster, action, token, request, cancellationToken) is not { } claim) return await run();
        if (claim.Answer is { } answer) return answer;

        JsonObject result;
        try
        {
            result = await run();
        }
        catch
        {
            await ReleaseAsync(claim);
            throw;
        }
        await RecordAsync(claim, result);
        return result;
    }

    /// <summary>
    /// A token taken for one run of an action (<see cref="Answer"/> null: this caller runs it, then
    /// <see cref="RecordAsync"/> or <see cref="ReleaseAsync"/>), or the answer its first run recorded.
    /// </summary>
    public sealed class Claim
    {
        internal Claim(TableClient table, TableEntity row, JsonObject? answer, bool tookOver = false)
        {
            Table = table;
            Row = row;
            Answer = answer;
            TookOver = tookOver;
        }

        internal TableClient Table { get; }
        internal TableEntity Row { get; }

        /// <summary>The answer recorded by the token's first run; null when this claim is the run.</summary>
        public JsonObject? Answer { get; }

        /// <summary>
        /// This run replaced a claim gone stale with no answer: an earlier run with the token died part
        /// way, after doing any part of its work.
        /// </summary>
        public bool TookOver { get; }
    }

    /// <summary>
    /// The first half of <see cref="RunOnceAsync"/>, for an action that runs it beside its own reads:
    /// claims the token (an insert), or waits for the answer of a run in flight with the same token,
    /// or takes over a claim gone stale. Null when the request has no token.
    /// </summary>
    public async Task<Claim?> ClaimAsync(string cluster, string action, string? token, JsonObject request, CancellationToken cancellationToken)
    {
        if (!Validate(token)) return null;

        var table = await storage.TableAsync(TableName, cancellationToken);
        var claim = Row(cluster, action, token!, request);
        var key = claim.RowKey;
        var fingerprint = claim.GetString("Fingerprint");

        var tookOver = false;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await table.AddEntityAsync(claim, cancellationToken);
                return new Claim(table, claim, null, tookOver);
            }
            catch (RequestFailedException e) when (e.Status == 409)
            {
                var existing = (await table.GetEntityIfExistsAsync<TableEntity>(cluster, key, cancellationToken: cancellationToken)).Value;
                if (existing is null) continue;
                if (existing.GetString("Fingerprint") != fingerprint)
                    throw new InvalidParameterException("The clientToken was already used with different parameters.");
                if (LargeJson.Read(existing, "Response") is { } response) return new Claim(table, existing, JsonNode.Parse(response)!.AsObject());
                if (time.GetUtcNow() - existing.GetDateTimeOffset("ClaimedAt") > InFlightTimeout)
                {
                    // The first attempt died mid-way; whoever deletes the stale claim runs again.
                    try
                    {
                        await table.DeleteEntityAsync(existing, existing.ETag, cancellationToken);
                        tookOver = true;
                    }
                    catch (RequestFailedException)
                    {
                    }
                    continue;
                }
                // Still in flight: wait for its answer, or until its claim goes stale and is taken
                // over above. A 500 here would only send the client back to the same wait (an SDK
                // retries a few times within seconds, and the claim of an attempt that died lives 30 s).
                if (attempt > InFlightTimeout / ClaimPoll + 10) throw new ConcurrentUpdateException($"clientToken {token}");
                await Task.Delay(ClaimPoll, time, cancellationToken);
            }
        }
    }

    /// <summary>Records the answer of the run <paramref name="claim"/> started: from now on a retry with the token gets it.</summary>
    public async Task RecordAsync(Claim claim, JsonObject result)
    {
        if (claim.Answer is not null) throw new InvalidOperationException("The token was answered already.");
        LargeJson.Write(claim.Row, result.ToJsonString(), "Response");
        await claim.Table.UpsertEntityAsync(claim.Row, TableUpdateMode.Replace, CancellationToken.None);
    }

    /// <summary>Gives the token up after a run that failed (nothing of it stands): a retry runs again.</summary>
    public async Task ReleaseAsync(Claim claim)
    {
        if (claim.Answer is not null) return;
        await claim.Table.DeleteEntityAsync(claim.Row.PartitionKey, claim.Row.RowKey, cancellationToken: CancellationToken.None);
    }
}
