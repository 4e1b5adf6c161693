using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Serverless.Core.Secrets;

/// <summary>
/// The key-encryption keys (KEKs) that wrap data keys: AES-256 keys, and the wrap is AES-GCM with the
/// key id as associated data. They come from configuration (<see cref="SecretsOptions.KeyEncryptionKeys"/>,
/// what <c>run.sh</c> generates locally), or, when <see cref="SecretsOptions.KeyVaultKeyId"/> names a
/// Key Vault key (in Azure), from the <see cref="KeyVaultKeyRing"/>: keys kept only wrapped by the vault
/// key and unwrapped once per process, on first use, with the app's managed identity.
/// </summary>
public sealed class KeyEncryptionKeys
{
    private const int KeyBytes = 32;

    private readonly ConcurrentDictionary<string, byte[]> _keys = new(StringComparer.Ordinal);
    private readonly KeyVaultKeyRing? _ring;
    private readonly Lock _loading = new();
    private Task? _loaded;

    public KeyEncryptionKeys(SecretsOptions options, KeyVaultKeyRing? ring = null)
    {
        _ring = options.KeyVaultKeyId is { Length: > 0 } ? ring ?? throw new ArgumentNullException(nameof(ring)) : null;
        if (_ring is not null && options.KeyEncryptionKeys.Length > 0)
            throw new InvalidOperationException("Secrets__KeyVaultKeyId and Secrets__KeyEncryptionKeys are both set: set one.");
        foreach (var pair in options.KeyEncryptionKeys.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = pair.IndexOf(':');
            byte[] key;
            try
            {
                key = colon > 0 ? Convert.FromBase64String(pair[(colon + 1)..]) : [];
            }
            catch (FormatException)
            {
                key = [];
            }
            // The message names the key id only: the setting's value is itself a secret.
            if (key.Length != KeyBytes)
                throw new InvalidOperationException($"Secrets__KeyEncryptionKeys: entry {_keys.Count + 1} is not 'id:<base64 of {KeyBytes} bytes>'.");
            var id = pair[..colon];
            _currentKeyId ??= id;
            _keys[id] = key;
        }
    }

    /// <summary>The key that wraps new data keys, or null when none is configured (the stores then refuse to store).</summary>
    public string? CurrentKeyId
    {
        get
        {
            EnsureLoaded();
            return _currentKeyId;
        }
    }

    private string? _currentKeyId;

    /// <summary>A new random AES-256 key in the format of the setting, for <c>run.sh</c> and tests.</summary>
    public static string Generate(string id) => $"{id}:{Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeyBytes))}";

    /// <summary>Wraps <paramref name="dataKey"/> with the current KEK (<see cref="Aead"/>, the key id as context).</summary>
    public (string KeyId, byte[] Wrapped) Wrap(ReadOnlySpan<byte> dataKey)
    {
        var id = CurrentKeyId ?? throw new SecretStoreNotConfiguredException();
        return (id, Aead.Seal(_keys[id], dataKey, id));
    }

    /// <summary>Unwraps a data key wrapped by <paramref name="keyId"/>; throws <see cref="CryptographicException"/> when it cannot.</summary>
    public byte[] Unwrap(string keyId, ReadOnlySpan<byte> wrapped)
    {
        EnsureLoaded();
        // A ring key another control plane added since this one loaded (a rotation): load again, once.
        if (_ring is not null && !_keys.ContainsKey(keyId))
        {
            lock (_loading) if (_loaded is { IsCompletedSuccessfully: true }) _loaded = null;
            EnsureLoaded();
        }
        return _keys.TryGetValue(keyId, out var key)
            ? Aead.Open(key, wrapped, keyId)
            : throw new CryptographicException($"The key-encryption key {keyId} is not configured.");
    }

    /// <summary>
    /// With a Key Vault key: the ring, loaded once per process on first use (its callers are
    /// synchronous; the wait happens once). A failed load is tried again by the next call, and the
    /// failure names Key Vault's status only.
    /// </summary>
    private void EnsureLoaded()
    {
        if (_ring is null) return;
        Task loading;
        lock (_loading) loading = _loaded ??= LoadAsync(_ring);
        try
        {
            loading.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is CryptographicException or HttpRequestException or Azure.RequestFailedException or Azure.Identity.AuthenticationFailedException)
        {
            lock (_loading) if (_loaded == loading) _loaded = null;
            throw new SecretStoreUnavailableException(e is CryptographicException ? e.Message : $"Key Vault could not be reached ({e.GetType().Name}).");
        }
    }

    private async Task LoadAsync(KeyVaultKeyRing ring)
    {
        var keys = await ring.LoadAsync(CancellationToken.None).ConfigureAwait(false);
        foreach (var (id, key) in keys) _keys[id] = key;
        _currentKeyId = keys[0].Id;
    }
}

/// <summary>No key-encryption key is configured: nothing can be stored encrypted, so nothing is stored.</summary>
public sealed class SecretStoreNotConfiguredException()
    : Serverless.Core.Api.EcsException("No key-encryption key is configured (Secrets__KeyEncryptionKeys): secret values cannot be stored or read.")
{
    public override string ErrorType => "InternalServiceError";
    public override int HttpStatus => 500;
}

/// <summary>The key-encryption key in Key Vault could not be used (unreachable, refused): nothing is stored or read meanwhile.</summary>
public sealed class SecretStoreUnavailableException(string reason)
    : Serverless.Core.Api.EcsException($"The key-encryption key is not available: {reason}")
{
    public override string ErrorType => "InternalServiceError";
    public override int HttpStatus => 500;
}
