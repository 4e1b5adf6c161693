namespace Serverless.Core.Secrets;

/// <summary>
/// Settings of the secret stores (section <c>Secrets</c>, or flat <c>Secrets__*</c> app settings).
/// </summary>
public sealed class SecretsOptions
{
    /// <summary>
    /// The key-encryption keys that wrap every value's data key, as <c>id:base64</c> pairs (32 bytes
    /// each, AES-256) separated by <c>;</c>. The first wraps new data keys; every one listed unwraps.
    /// Rotation: put a new key first and keep the old ones listed; values written from then on are
    /// wrapped by the new key, older ones stay readable under the old (nothing re-wraps them yet, so an
    /// old key may be dropped only once every value wrapped by it is gone). Locally
    /// <c>scripts/run.sh</c> generates one into the state directory on first start (never into git).
    /// See <see cref="KeyEncryptionKeys"/>.
    /// </summary>
    public string KeyEncryptionKeys { get; set; } = "";

    /// <summary>
    /// In Azure, instead of <see cref="KeyEncryptionKeys"/>: a Key Vault key's id without a version
    /// (<c>https://&lt;vault&gt;.vault.azure.net/keys/&lt;name&gt;</c>) that wraps the key ring in table
    /// <c>SecretKeyRing</c> (<see cref="KeyVaultKeyRing"/>); the app's identity needs wrap and unwrap on it.
    /// </summary>
    public string KeyVaultKeyId { get; set; } = "";
}
