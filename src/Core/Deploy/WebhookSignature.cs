using System.Security.Cryptography;
using System.Text;

namespace Serverless.Core.Deploy;

/// <summary>
/// GitHub's webhook signature: <c>X-Hub-Signature-256: sha256=&lt;hex HMAC-SHA256 of the raw body&gt;</c>.
/// </summary>
public static class WebhookSignature
{
    public const string Header = "X-Hub-Signature-256";
    private const string Prefix = "sha256=";

    /// <summary>The header value GitHub would send for <paramref name="body"/> signed with <paramref name="secret"/>.</summary>
    public static string Sign(ReadOnlySpan<byte> body, string secret)
        => Prefix + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    /// <summary>
    /// Whether <paramref name="header"/> is a valid signature of <paramref name="body"/> under any of
    /// <paramref name="secrets"/> (several during a rotation). Every secret is tried and the digests
    /// are compared in constant time, so the time taken says nothing about which part was wrong.
    /// </summary>
    public static bool IsValid(ReadOnlySpan<byte> body, string? header, IReadOnlyList<string> secrets)
    {
        Span<byte> given = stackalloc byte[HMACSHA256.HashSizeInBytes];
        var parsed = header is { Length: 71 } && header.StartsWith(Prefix, StringComparison.Ordinal)
            && Convert.FromHexString(header.AsSpan(Prefix.Length), given, out _, out var written) == System.Buffers.OperationStatus.Done
            && written == given.Length;

        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        var valid = false;
        foreach (var secret in secrets)
        {
            HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body, expected);
            valid |= CryptographicOperations.FixedTimeEquals(expected, given);
        }
        return parsed && valid;
    }
}
