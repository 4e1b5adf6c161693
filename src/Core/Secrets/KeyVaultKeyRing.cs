using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Azure;
using Azure.Core;
using Azure.Data.Tables;
using Serverless.Core.Storage;

namespace Serverless.Core.Secrets;

/// <summary>
/// The key-encryption keys when a Key Vault key guards them (<see cref="SecretsOptions.KeyVaultKeyId"/>):
/// the AES-256 keys that wrap data keys live in table <c>SecretKeyRing</c> only wrapped by the vault's
/// RSA key (Key Vault's <c>wrapkey</c>, RSA-OAEP-256), so the KEK never leaves the vault and no row
/// holds a usable key. Each control plane unwraps the ring once (one <c>unwrapkey</c> per ring entry,
/// with its managed identity) and keeps the keys in memory, as it keeps configured ones; the first to
/// find the ring empty makes its first key (an insert that a racing process loses and then reads).
/// Rotation: <see cref="RotateAsync"/> adds a new ring key wrapped by the vault key's current version,
/// which wraps new data keys from then on; older ring keys still unwrap older values. A new version of
/// the vault key needs nothing: each ring row names the version that wrapped it.
/// Key Vault is called over its REST API (api-version 7.4) because the Keys client library is not
/// among the packages available to this repository; the credential is Azure.Identity's.
/// </summary>
public sealed class KeyVaultKeyRing(StorageClients storage, SecretsOptions options, TokenCredential credential, HttpClient http)
{
    public const string TableName = "SecretKeyRing";
    private const string Partition = "ring";
    private const string ApiVersion = "7.4";
    private static readonly string[] Scopes = ["https://vault.azure.net/.default"];

    /// <summary>Every ring key, unwrapped, newest first (the first wraps new data keys); makes the first one when the ring is empty.</summary>
    public async Task<IReadOnlyList<(string Id, byte[] Key)>> LoadAsync(CancellationToken cancellationToken)
    {
        var rows = await ReadAsync(cancellationToken);
        if (rows.Count == 0)
        {
            await AddAsync(cancellationToken);
            rows = await ReadAsync(cancellationToken);
        }
        var keys = await Task.WhenAll(rows.Select(async row =>
            (row.RowKey, await UnwrapAsync(row.GetString("Kid"), row.GetBinary("Wrapped"), cancellationToken))));
        return keys;
    }

    /// <summary>Adds a ring key that wraps new data keys from the next load on (a new Key Vault key version is picked up here too).</summary>
    public Task RotateAsync(CancellationToken cancellationToken) => AddAsync(cancellationToken);

    private async Task AddAsync(CancellationToken cancellationToken)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        try
        {
            var answer = await CallAsync(new Uri(KeyId, "wrapkey"), key, cancellationToken);
            // Newest first in a partition scan: the row key counts down with time.
            var id = $"kv{DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UtcNow.UtcTicks:D19}";
            var table = await storage.TableAsync(TableName, cancellationToken);
            await table.AddEntityAsync(new TableEntity(Partition, id) { ["Kid"] = answer.Kid, ["Wrapped"] = answer.Value }, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            // Another control plane added one at the same tick: the ring has a key, which is all this wanted.
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private async Task<List<TableEntity>> ReadAsync(CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(TableName, cancellationToken);
        var rows = new List<TableEntity>();
        await foreach (var row in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {Partition}"), cancellationToken: cancellationToken))
            rows.Add(row);
        return rows;
    }

    private async Task<byte[]> UnwrapAsync(string? kid, byte[]? wrapped, CancellationToken cancellationToken)
    {
        if (kid is null || wrapped is null) throw new CryptographicException($"A row of {TableName} is incomplete.");
        // The row names the vault key version that wrapped it; it must be this vault's key.
        var versioned = new Uri(kid.TrimEnd('/') + "/");
        if (!KeyId.IsBaseOf(versioned)) throw new CryptographicException($"A row of {TableName} was wrapped by another key ({kid}).");
        return (await CallAsync(new Uri(versioned, "unwrapkey"), wrapped, cancellationToken)).Value;
    }

    // The configured key id with a trailing slash, so "wrapkey" resolves below it (versionless: the vault uses the current version).
    private Uri KeyId => new(options.KeyVaultKeyId.TrimEnd('/') + "/");

    private async Task<(string Kid, byte[] Value)> CallAsync(Uri operation, byte[] value, CancellationToken cancellationToken)
    {
        var token = await credential.GetTokenAsync(new TokenRequestContext(Scopes), cancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{operation}?api-version={ApiVersion}")
        {
            Content = JsonContent.Create(new JsonObject { ["alg"] = "RSA-OAEP-256", ["value"] = Base64Url(value) }),
        };
        request.Headers.Authorization = new("Bearer", token.Token);
        using var response = await http.SendAsync(request, cancellationToken);
        // The answer's body can name the key but never a value; only the status is passed on.
        if (!response.IsSuccessStatusCode)
            throw new CryptographicException($"Key Vault answered {(int)response.StatusCode} to {operation.AbsolutePath.Split('/')[^1]} for the key-encryption key.");
        var body = await response.Content.ReadFromJsonAsync<JsonObject>(cancellationToken)
                   ?? throw new CryptographicException("Key Vault answered without a body.");
        return (body["kid"]?.GetValue<string>() ?? operation.ToString(), FromBase64Url(body["value"]!.GetValue<string>()));
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] FromBase64Url(string text)
    {
        var padded = text.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(padded + new string('=', (4 - padded.Length % 4) % 4));
    }
}
