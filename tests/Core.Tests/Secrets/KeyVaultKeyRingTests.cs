using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Core;
using Serverless.Core.Secrets;
using Serverless.Core.Storage;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Secrets;

/// <summary>
/// Key-encryption keys guarded by a Key Vault key. No Key Vault runs here, so its REST API is played by
/// <see cref="FakeKeyVault"/> (wrapkey / unwrapkey with RSA-OAEP-256 and real RSA keys, a version per
/// key rotation, the bearer token checked); the ring's table is real (Azurite behind the limits proxy).
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class KeyVaultKeyRingTests(AzuriteFixture azurite)
{
    private const string Vault = "https://vault.test/keys/kek";
    private readonly StorageClients _storage = new(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("kv") });
    private readonly FakeKeyVault _vault = new();

    private KeyEncryptionKeys Process()
    {
        var options = new SecretsOptions { KeyVaultKeyId = Vault };
        return new KeyEncryptionKeys(options, new KeyVaultKeyRing(_storage, options, new StaticToken(), new HttpClient(_vault)));
    }

    [Fact]
    public async Task Values_sealed_by_one_control_plane_open_in_another_and_in_none_without_the_vault()
    {
        var first = Process();
        var sealedValue = EncryptedValue.Seal(first, Encoding.UTF8.GetBytes("hunter2-hunter2"), "ctx");
        Assert.Equal(1, _vault.Wraps);

        var second = Process();
        Assert.Equal("hunter2-hunter2", Encoding.UTF8.GetString(sealedValue.Open(second, "ctx")));
        Assert.Equal(1, _vault.Wraps); // the second found the ring: it made no key of its own

        // The ring row is useless without the vault: a process that cannot reach it opens nothing.
        _vault.Down = true;
        var cut = Process();
        var refused = Assert.Throws<SecretStoreUnavailableException>(() => sealedValue.Open(cut, "ctx"));
        Assert.Contains("503", refused.Message);
        _vault.Down = false;
        Assert.Equal("hunter2-hunter2", Encoding.UTF8.GetString(sealedValue.Open(cut, "ctx")));

        var table = await _storage.TableAsync(KeyVaultKeyRing.TableName, CancellationToken.None);
        var row = Assert.Single(await table.QueryAsync<Azure.Data.Tables.TableEntity>().ToListAsync());
        Assert.StartsWith(Vault + "/", row.GetString("Kid"));
        Assert.Equal(256, row.GetBinary("Wrapped").Length); // an RSA-2048 OAEP block, not a 32-byte key
    }

    [Fact]
    public async Task A_rotation_under_a_new_vault_key_version_wraps_new_values_and_old_ones_still_open()
    {
        var before = Process();
        var old = EncryptedValue.Seal(before, [1, 2, 3], "ctx");

        _vault.NewVersion();
        var options = new SecretsOptions { KeyVaultKeyId = Vault };
        await new KeyVaultKeyRing(_storage, options, new StaticToken(), new HttpClient(_vault)).RotateAsync(CancellationToken.None);

        var after = Process();
        var fresh = EncryptedValue.Seal(after, [4, 5, 6], "ctx");
        Assert.NotEqual(old.KeyId, fresh.KeyId);
        Assert.Equal([1, 2, 3], old.Open(after, "ctx"));
        // The process that loaded before the rotation finds the new ring key when it first meets it.
        Assert.Equal([4, 5, 6], fresh.Open(before, "ctx"));
        Assert.Equal(2, _vault.VersionsUsedToUnwrap.Count);
    }

    [Fact]
    public void A_vault_key_and_configured_keys_together_are_refused()
    {
        var options = new SecretsOptions { KeyVaultKeyId = Vault, KeyEncryptionKeys = KeyEncryptionKeys.Generate("local") };
        var refused = Assert.Throws<InvalidOperationException>(() =>
            new KeyEncryptionKeys(options, new KeyVaultKeyRing(_storage, options, new StaticToken(), new HttpClient(_vault))));
        Assert.Contains("set one", refused.Message);
    }

    private sealed class StaticToken : TokenCredential
    {
        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
            => new("test-token", DateTimeOffset.UtcNow.AddHours(1));

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken)
            => ValueTask.FromResult(GetToken(requestContext, cancellationToken));
    }

    /// <summary>Key Vault's <c>POST /keys/{name}[/{version}]/wrapkey|unwrapkey</c> for one RSA key with versions.</summary>
    private sealed class FakeKeyVault : HttpMessageHandler
    {
        private readonly Dictionary<string, RSA> _versions = [];
        private string _current = "";

        public FakeKeyVault() => NewVersion();

        public bool Down { get; set; }

        public int Wraps { get; private set; }

        public HashSet<string> VersionsUsedToUnwrap { get; } = [];

        public void NewVersion()
        {
            _current = Guid.NewGuid().ToString("N");
            _versions[_current] = RSA.Create(2048);
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Down) return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
            if (request.Headers.Authorization?.ToString() != "Bearer test-token") return new HttpResponseMessage(HttpStatusCode.Unauthorized);
            Assert.Equal("api-version=7.4", request.RequestUri!.Query.TrimStart('?'));
            var segments = request.RequestUri.AbsolutePath.Trim('/').Split('/'); // keys, kek, [version], operation
            var body = (await request.Content!.ReadFromJsonAsync<JsonObject>(cancellationToken))!;
            Assert.Equal("RSA-OAEP-256", body["alg"]!.GetValue<string>());
            var value = FromBase64Url(body["value"]!.GetValue<string>());
            var version = segments.Length == 4 ? segments[2] : _current;
            if (!_versions.TryGetValue(version, out var rsa)) return new HttpResponseMessage(HttpStatusCode.NotFound);
            byte[] answer;
            switch (segments[^1])
            {
                case "wrapkey":
                    Wraps++;
                    answer = rsa.Encrypt(value, RSAEncryptionPadding.OaepSHA256);
                    break;
                case "unwrapkey":
                    VersionsUsedToUnwrap.Add(version);
                    answer = rsa.Decrypt(value, RSAEncryptionPadding.OaepSHA256);
                    break;
                default:
                    return new HttpResponseMessage(HttpStatusCode.BadRequest);
            }
            return new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = JsonContent.Create(new JsonObject { ["kid"] = $"{Vault}/{version}", ["value"] = Convert.ToBase64String(answer).TrimEnd('=').Replace('+', '-').Replace('/', '_') }),
            };
        }

        private static byte[] FromBase64Url(string text)
        {
            var padded = text.Replace('-', '+').Replace('_', '/');
            return Convert.FromBase64String(padded + new string('=', (4 - padded.Length % 4) % 4));
        }
    }
}
