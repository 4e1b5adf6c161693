using System.Security.Cryptography;

namespace Serverless.Core.Secrets;

/// <summary>
/// Public-key sealing of a task's resolved values to the one worker that runs the task: ECDH on
/// P-256 with a fresh ephemeral key per seal, SHA-256 of the shared secret as an AES-256-GCM key,
/// and the task ARN as associated data (a box sealed for one task does not open as another's).
/// Only the holder of the worker's private key opens it; the control plane cannot open it again.
/// </summary>
public static class SealedBox
{
    /// <summary>A new key pair: the private key as PKCS#8 (kept by the worker) and the public key as SubjectPublicKeyInfo.</summary>
    public static (byte[] PrivateKey, byte[] PublicKey) NewKeyPair()
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        return (key.ExportPkcs8PrivateKey(), key.ExportSubjectPublicKeyInfo());
    }

    /// <summary>ephemeral public key length (2 bytes) | ephemeral public key | <see cref="Aead"/>'s nonce | ciphertext | tag.</summary>
    public static byte[] Seal(byte[] recipientPublicKey, ReadOnlySpan<byte> plaintext, string context)
    {
        using var recipient = ECDiffieHellman.Create();
        recipient.ImportSubjectPublicKeyInfo(recipientPublicKey, out _);
        using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var ephemeralPublic = ephemeral.ExportSubjectPublicKeyInfo();
        var key = ephemeral.DeriveKeyFromHash(recipient.PublicKey, HashAlgorithmName.SHA256);
        try
        {
            return [(byte)(ephemeralPublic.Length >> 8), (byte)ephemeralPublic.Length, .. ephemeralPublic, .. Aead.Seal(key, plaintext, context)];
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The plaintext; throws <see cref="CryptographicException"/> when the key or the context does not match.</summary>
    public static byte[] Open(byte[] privateKey, ReadOnlySpan<byte> box, string context)
    {
        var publicLength = box.Length < 2 ? int.MaxValue : (box[0] << 8) | box[1];
        if (box.Length < 2 + publicLength) throw new CryptographicException("The sealed box is malformed.");
        using var own = ECDiffieHellman.Create();
        own.ImportPkcs8PrivateKey(privateKey, out _);
        using var ephemeral = ECDiffieHellman.Create();
        ephemeral.ImportSubjectPublicKeyInfo(box.Slice(2, publicLength), out _);
        var key = own.DeriveKeyFromHash(ephemeral.PublicKey, HashAlgorithmName.SHA256);
        try
        {
            return Aead.Open(key, box[(2 + publicLength)..], context);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }
}
