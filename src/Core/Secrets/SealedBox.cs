using System.Security.Cryptography;
using System.Text;

namespace Serverless.Core.Secrets;

/// <summary>
/// Public-key sealing of a task's resolved values to the one worker that runs the task: ECDH on
/// P-256 with a fresh ephemeral key per seal, SHA-256 of the shared secret as an AES-256-GCM key,
/// and the task ARN as associated data (a box sealed for one task does not open as another's).
/// Only the holder of the worker's private key opens it; the control plane cannot open it again.
/// </summary>
public static class SealedBox
{
    private const int NonceBytes = 12;
    private const int TagBytes = 16;

    /// <summary>A new key pair: the private key as PKCS#8 (kept by the worker) and the public key as SubjectPublicKeyInfo.</summary>
    public static (byte[] PrivateKey, byte[] PublicKey) NewKeyPair()
    {
        using var key = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        return (key.ExportPkcs8PrivateKey(), key.ExportSubjectPublicKeyInfo());
    }

    public static byte[] PublicKeyOf(byte[] privateKey)
    {
        using var key = ECDiffieHellman.Create();
        key.ImportPkcs8PrivateKey(privateKey, out _);
        return key.ExportSubjectPublicKeyInfo();
    }

    /// <summary>ephemeral public key length (2 bytes) | ephemeral public key | nonce | ciphertext | tag.</summary>
    public static byte[] Seal(byte[] recipientPublicKey, ReadOnlySpan<byte> plaintext, string context)
    {
        using var recipient = ECDiffieHellman.Create();
        recipient.ImportSubjectPublicKeyInfo(recipientPublicKey, out _);
        using var ephemeral = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
        var ephemeralPublic = ephemeral.ExportSubjectPublicKeyInfo();
        var key = ephemeral.DeriveKeyFromHash(recipient.PublicKey, HashAlgorithmName.SHA256);
        try
        {
            var box = new byte[2 + ephemeralPublic.Length + NonceBytes + plaintext.Length + TagBytes];
            box[0] = (byte)(ephemeralPublic.Length >> 8);
            box[1] = (byte)ephemeralPublic.Length;
            ephemeralPublic.CopyTo(box, 2);
            var offset = 2 + ephemeralPublic.Length;
            RandomNumberGenerator.Fill(box.AsSpan(offset, NonceBytes));
            using var aes = new AesGcm(key, TagBytes);
            aes.Encrypt(box.AsSpan(offset, NonceBytes), plaintext, box.AsSpan(offset + NonceBytes, plaintext.Length), box.AsSpan(^TagBytes), Encoding.UTF8.GetBytes(context));
            return box;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The plaintext; throws <see cref="CryptographicException"/> when the key or the context does not match.</summary>
    public static byte[] Open(byte[] privateKey, ReadOnlySpan<byte> box, string context)
    {
        if (box.Length < 2) throw new CryptographicException("The sealed box is malformed.");
        var publicLength = (box[0] << 8) | box[1];
        var offset = 2 + publicLength;
        if (box.Length < offset + NonceBytes + TagBytes) throw new CryptographicException("The sealed box is malformed.");
        using var own = ECDiffieHellman.Create();
        own.ImportPkcs8PrivateKey(privateKey, out _);
        using var ephemeral = ECDiffieHellman.Create();
        ephemeral.ImportSubjectPublicKeyInfo(box.Slice(2, publicLength), out _);
        var key = own.DeriveKeyFromHash(ephemeral.PublicKey, HashAlgorithmName.SHA256);
        try
        {
            var plaintext = new byte[box.Length - offset - NonceBytes - TagBytes];
            using var aes = new AesGcm(key, TagBytes);
            aes.Decrypt(box.Slice(offset, NonceBytes), box.Slice(offset + NonceBytes, plaintext.Length), box[^TagBytes..], plaintext, Encoding.UTF8.GetBytes(context));
            return plaintext;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }
}
