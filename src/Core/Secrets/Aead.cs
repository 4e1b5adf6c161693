using System.Security.Cryptography;
using System.Text;

namespace Serverless.Core.Secrets;

/// <summary>
/// AES-256-GCM as every sealing here uses it: a random 96-bit nonce, the associated data binding
/// the ciphertext to what it belongs to, and the layout nonce | ciphertext | tag.
/// </summary>
public static class Aead
{
    private const int NonceBytes = 12;
    private const int TagBytes = 16;

    public static byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, string context)
    {
        var sealedBytes = new byte[NonceBytes + plaintext.Length + TagBytes];
        RandomNumberGenerator.Fill(sealedBytes.AsSpan(0, NonceBytes));
        using var aes = new AesGcm(key, TagBytes);
        aes.Encrypt(sealedBytes.AsSpan(0, NonceBytes), plaintext, sealedBytes.AsSpan(NonceBytes, plaintext.Length), sealedBytes.AsSpan(^TagBytes), Encoding.UTF8.GetBytes(context));
        return sealedBytes;
    }

    /// <summary>The plaintext; throws <see cref="CryptographicException"/> when the key, the context or the bytes do not match.</summary>
    public static byte[] Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> sealedBytes, string context)
    {
        if (sealedBytes.Length < NonceBytes + TagBytes) throw new CryptographicException("The sealed bytes are malformed.");
        var plaintext = new byte[sealedBytes.Length - NonceBytes - TagBytes];
        using var aes = new AesGcm(key, TagBytes);
        aes.Decrypt(sealedBytes[..NonceBytes], sealedBytes[NonceBytes..^TagBytes], sealedBytes[^TagBytes..], plaintext, Encoding.UTF8.GetBytes(context));
        return plaintext;
    }
}
