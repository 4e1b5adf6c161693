using System.Security.Cryptography;
using Azure.Data.Tables;

namespace Serverless.Core.Secrets;

/// <summary>
/// One value encrypted envelope-style: a fresh AES-256 data key encrypts it (AES-GCM, bound by
/// <c>context</c> to the row it belongs to, so a ciphertext copied to another row does not open),
/// and the data key is stored only wrapped by a key-encryption key.
/// </summary>
public sealed record EncryptedValue(string KeyId, byte[] WrappedKey, byte[] Ciphertext)
{
    /// <summary>Table Storage holds at most 64 KiB per binary property: the ciphertext is split into this many at most.</summary>
    private const int ChunkBytes = 64 * 1024;
    private const int MaxChunks = 3;

    public static EncryptedValue Seal(KeyEncryptionKeys keys, ReadOnlySpan<byte> plaintext, string context)
    {
        var dataKey = RandomNumberGenerator.GetBytes(32);
        try
        {
            var ciphertext = Aead.Seal(dataKey, plaintext, context);
            var (keyId, wrapped) = keys.Wrap(dataKey);
            return new EncryptedValue(keyId, wrapped, ciphertext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>The plaintext; throws <see cref="CryptographicException"/> when the key, the context or the bytes do not match.</summary>
    public byte[] Open(KeyEncryptionKeys keys, string context)
    {
        var dataKey = keys.Unwrap(KeyId, WrappedKey);
        try
        {
            return Aead.Open(dataKey, Ciphertext, context);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>An opaque, printable form (what SSM answers for a SecureString read without decryption).</summary>
    public string ToBase64()
        => Convert.ToBase64String([.. System.Text.Encoding.UTF8.GetBytes(KeyId), 0, .. BitConverter.GetBytes(WrappedKey.Length), .. WrappedKey, .. Ciphertext]);

    /// <summary>Writes the value into <paramref name="entity"/> as <c>{prefix}Kek</c>, <c>{prefix}Key</c>, <c>{prefix}0..n</c>.</summary>
    public void WriteTo(TableEntity entity, string prefix)
    {
        entity[prefix + "Kek"] = KeyId;
        entity[prefix + "Key"] = WrappedKey;
        var chunks = Ciphertext.Chunk(ChunkBytes).ToList();
        if (chunks.Count > MaxChunks) throw new ArgumentException("The value is too large to store.");
        for (var i = 0; i < MaxChunks; i++)
        {
            if (i < chunks.Count) entity[prefix + i] = chunks[i];
            else entity.Remove(prefix + i);
        }
    }

    /// <summary>The value written by <see cref="WriteTo"/>, or null when the entity holds none.</summary>
    public static EncryptedValue? ReadFrom(TableEntity entity, string prefix)
    {
        if (entity.GetString(prefix + "Kek") is not { } keyId || entity.GetBinary(prefix + "Key") is not { } wrapped) return null;
        var ciphertext = new List<byte>();
        for (var i = 0; i < MaxChunks && entity.GetBinary(prefix + i) is { } chunk; i++) ciphertext.AddRange(chunk);
        return new EncryptedValue(keyId, wrapped, [.. ciphertext]);
    }
}
