namespace Serverless.Core.Secrets;

/// <summary>
/// Settings of the secret stores (section <c>Secrets</c>, or flat <c>Secrets__*</c> app settings).
/// </summary>
public sealed class SecretsOptions
{
    /// <summary>
    /// The key-encryption keys that wrap every value's data key, as <c>id:base64</c> pairs (32 bytes
    /// each, AES-256) separated by <c>;</c>. The first wraps new data keys; every one listed unwraps
    /// (rotation: put a new key first, keep the old ones until <c>RewrapAsync</c> has run). Locally
    /// <c>scripts/run.sh</c> generates one into the state directory on first start; the sample settings
    /// hold a development key for tests only. See <see cref="KeyEncryptionKeys"/>.
    /// </summary>
    public string KeyEncryptionKeys { get; set; } = "";
}
