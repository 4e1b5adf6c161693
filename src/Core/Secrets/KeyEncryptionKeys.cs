using System.Security.Cryptography;

namespace Serverless.Core.Secrets;

/// <summary>
/// The key-encryption keys (KEKs) that wrap data keys. Here they are AES-256 keys from configuration
/// (<see cref="SecretsOptions.KeyEncryptionKeys"/>) and the wrap is AES-GCM with the key id as
/// associated data. In Azure the same contract is a Key Vault key: <c>WrapAsync</c> is
/// <c>CryptographyClient.WrapKeyAsync(KeyWrapAlgorithm.RsaOaep256, dataKey)</c> and <c>UnwrapAsync</c>
/// its <c>UnwrapKeyAsync</c>, with the key's versioned id as <see cref="CurrentKeyId"/>, so the KEK
/// never leaves the vault. That client is NOT wired in this repository (no Key Vault can run here):
/// a deployment today sets <c>Secrets__KeyEncryptionKeys</c> from a Key Vault reference instead.
/// </summary>
public sealed class KeyEncryptionKeys
{
    private const int KeyBytes = 32;

    private readonly Dictionary<string, byte[]> _keys = new(StringComparer.Ordinal);

    public KeyEncryptionKeys(SecretsOptions options)
    {
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
            CurrentKeyId ??= id;
            _keys[id] = key;
        }
    }

    /// <summary>The key that wraps new data keys, or null when none is configured (the stores then refuse to store).</summary>
    public string? CurrentKeyId { get; }

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
        => _keys.TryGetValue(keyId, out var key)
            ? Aead.Open(key, wrapped, keyId)
            : throw new CryptographicException($"The key-encryption key {keyId} is not configured.");
}

/// <summary>No key-encryption key is configured: nothing can be stored encrypted, so nothing is stored.</summary>
public sealed class SecretStoreNotConfiguredException()
    : Serverless.Core.Api.EcsException("No key-encryption key is configured (Secrets__KeyEncryptionKeys): secret values cannot be stored or read.")
{
    public override string ErrorType => "InternalServiceError";
    public override int HttpStatus => 500;
}
