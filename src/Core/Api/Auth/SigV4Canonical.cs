using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Serverless.Core.Api.Auth;

/// <summary>
/// The parts of a SigV4 canonical request, built byte for byte as botocore's <c>SigV4Auth</c> builds them
/// for a non-S3 service. The server cannot ask the client what it signed, so every rule here mirrors
/// the client, including the ones that look odd (the path is encoded a second time).
/// </summary>
internal static class SigV4Canonical
{
    /// <summary>RFC 3986 unreserved characters, the only ones SigV4 leaves unencoded.</summary>
    public static bool IsUnreserved(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~';

    /// <summary>
    /// Canonical URI: botocore's <c>quote(normalize_url_path(path), safe='/~')</c>. The path is the one on
    /// the wire, already percent-encoded, so <c>%20</c> signs as <c>%2520</c>: non-S3 services double-encode.
    /// </summary>
    public static void AppendUri(CharBuffer buffer, string rawPath)
    {
        var path = IsNormalized(rawPath) ? rawPath : RemoveDotSegments(rawPath);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in path.AsSpan().EnumerateRunes())
        {
            if (rune.IsAscii && (rune.Value == '/' || IsUnreserved((char)rune.Value)))
            {
                buffer.Append((char)rune.Value);
                continue;
            }
            var count = rune.EncodeToUtf8(utf8);
            for (var i = 0; i < count; i++) buffer.AppendPercentEncoded(utf8[i]);
        }
    }

    /// <summary>
    /// Canonical query string: every pair decoded then re-encoded (so <c>%2f</c> and <c>/</c> both sign as
    /// <c>%2F</c>), a name without <c>=</c> gets an empty value, pairs sorted by encoded name then value.
    /// A literal <c>+</c> is a plus, not a space: SigV4 clients encode spaces as <c>%20</c>.
    /// </summary>
    /// <param name="excludeSignature">Presigned requests sign everything but <c>X-Amz-Signature</c> itself.</param>
    public static void AppendQuery(CharBuffer buffer, string rawQuery, bool excludeSignature)
    {
        if (rawQuery.Length == 0) return;   // every ECS call: the operation travels in X-Amz-Target

        var pairs = new List<(string Name, string Value)>();
        var query = rawQuery.AsSpan();
        foreach (var range in query.Split('&'))
        {
            var pair = query[range];
            if (pair.IsEmpty) continue;
            var equals = pair.IndexOf('=');
            var name = Reencode(equals < 0 ? pair : pair[..equals]);
            if (excludeSignature && name == "X-Amz-Signature") continue;
            pairs.Add((name, equals < 0 ? "" : Reencode(pair[(equals + 1)..])));
        }
        pairs.Sort(static (a, b) =>
        {
            var byName = string.CompareOrdinal(a.Name, b.Name);
            return byName != 0 ? byName : string.CompareOrdinal(a.Value, b.Value);
        });

        for (var i = 0; i < pairs.Count; i++)
        {
            if (i > 0) buffer.Append('&');
            buffer.Append(pairs[i].Name);
            buffer.Append('=');
            buffer.Append(pairs[i].Value);
        }
    }

    /// <summary>
    /// Canonical headers then the signed-header list: one <c>name:value</c> line per signed name, in the
    /// order the client listed them; repeated headers joined by <c>,</c>; each value trimmed with inner
    /// whitespace runs collapsed (botocore's <c>' '.join(value.split())</c>). A signed header the request
    /// lacks signs as an empty value, which simply fails the comparison.
    /// </summary>
    public static void AppendHeaders(
        CharBuffer buffer, ReadOnlySpan<char> signedHeaders, IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        foreach (var range in signedHeaders.Split(';'))
        {
            var name = signedHeaders[range];
            if (name.IsEmpty) continue;
            buffer.AppendLowerInvariant(name);
            buffer.Append(':');
            var first = true;
            for (var i = 0; i < headers.Count; i++)
            {
                if (!name.Equals(headers[i].Key, StringComparison.OrdinalIgnoreCase)) continue;
                if (!first) buffer.Append(',');
                AppendTrimmed(buffer, headers[i].Value);
                first = false;
            }
            buffer.Append('\n');
        }
        buffer.Append('\n');
        buffer.Append(signedHeaders);
    }

    public static void Sha256(ReadOnlySpan<char> text, Span<byte> destination)
    {
        byte[]? rented = null;
        var max = Encoding.UTF8.GetMaxByteCount(text.Length);
        var bytes = max <= 2048 ? stackalloc byte[2048] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            SHA256.HashData(bytes[..Encoding.UTF8.GetBytes(text, bytes)], destination);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public static void HmacSha256(ReadOnlySpan<byte> key, ReadOnlySpan<char> text, Span<byte> destination)
    {
        byte[]? rented = null;
        var max = Encoding.UTF8.GetMaxByteCount(text.Length);
        var bytes = max <= 2048 ? stackalloc byte[2048] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            HMACSHA256.HashData(key, bytes[..Encoding.UTF8.GetBytes(text, bytes)], destination);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public static void WriteHexLower(ReadOnlySpan<byte> bytes, Span<char> destination)
    {
        for (var i = 0; i < bytes.Length; i++)
        {
            destination[2 * i] = HexLower[bytes[i] >> 4];
            destination[2 * i + 1] = HexLower[bytes[i] & 0xF];
        }
    }

    private const string HexLower = "0123456789abcdef";

    // Most paths ("/" for every ECS call) have nothing to normalise: skip the allocating rewrite.
    private static bool IsNormalized(string path)
    {
        if (path.Length == 0 || path[0] != '/') return false;
        var rest = path.AsSpan(1);
        if (rest.IsEmpty) return true;
        foreach (var range in rest.Split('/'))
        {
            var segment = rest[range];
            var isLast = range.End.GetOffset(rest.Length) == rest.Length;
            if (segment.IsEmpty && !isLast) return false;
            if (segment is "." or "..") return false;
        }
        return true;
    }

    // botocore.utils.remove_dot_segments: RFC 3986 5.2.4, and empty segments dropped as AWS requires.
    // It runs on the encoded path, so "%2E%2E" is an ordinary segment, exactly as the client saw it.
    private static string RemoveDotSegments(string path)
    {
        if (path.Length == 0) return "/";
        var kept = new List<string>();
        foreach (var segment in path.Split('/'))
        {
            if (segment.Length == 0 || segment == ".") continue;
            if (segment == "..")
            {
                if (kept.Count > 0) kept.RemoveAt(kept.Count - 1);
            }
            else
            {
                kept.Add(segment);
            }
        }
        var first = path[0] == '/' ? "/" : "";
        var last = path[^1] == '/' && kept.Count > 0 ? "/" : "";
        return first + string.Join('/', kept) + last;
    }

    private static string Reencode(ReadOnlySpan<char> component)
    {
        var clean = true;
        foreach (var c in component) clean &= IsUnreserved(c);
        if (clean) return new string(component);

        var encoded = new StringBuilder(component.Length + 8);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < component.Length;)
        {
            var c = component[i];
            if (c == '%' && i + 2 < component.Length
                && char.IsAsciiHexDigit(component[i + 1]) && char.IsAsciiHexDigit(component[i + 2]))
            {
                AppendByte(encoded, (byte)((HexValue(component[i + 1]) << 4) | HexValue(component[i + 2])));
                i += 3;
                continue;
            }
            Rune.DecodeFromUtf16(component[i..], out var rune, out var consumed);
            var count = rune.EncodeToUtf8(utf8);
            for (var b = 0; b < count; b++) AppendByte(encoded, utf8[b]);
            i += consumed;
        }
        return encoded.ToString();

        static void AppendByte(StringBuilder to, byte b)
        {
            if (b < 0x80 && IsUnreserved((char)b)) to.Append((char)b);
            else to.Append('%').Append(HexUpper[b >> 4]).Append(HexUpper[b & 0xF]);
        }

        static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
    }

    private const string HexUpper = "0123456789ABCDEF";

    private static void AppendTrimmed(CharBuffer buffer, string value)
    {
        var pendingSpace = false;
        foreach (var c in value.AsSpan().Trim())
        {
            if (char.IsWhiteSpace(c))
            {
                pendingSpace = true;
                continue;
            }
            if (pendingSpace) buffer.Append(' ');
            pendingSpace = false;
            buffer.Append(c);
        }
    }
}

/// <summary>
/// A growable char buffer reused per thread, so building the canonical request and the string to sign
/// allocates nothing on the hot path.
/// </summary>
internal sealed class CharBuffer
{
    private const string HexUpper = "0123456789ABCDEF";
    private char[] _chars = new char[1024];

    public int Length { get; private set; }

    public int Capacity => _chars.Length;

    public ReadOnlySpan<char> Written => _chars.AsSpan(0, Length);

    public void Clear() => Length = 0;

    public void Append(char c)
    {
        if (Length == _chars.Length) Grow(1);
        _chars[Length++] = c;
    }

    public void Append(ReadOnlySpan<char> text)
    {
        if (Length + text.Length > _chars.Length) Grow(text.Length);
        text.CopyTo(_chars.AsSpan(Length));
        Length += text.Length;
    }

    public void AppendLowerInvariant(ReadOnlySpan<char> text)
    {
        if (Length + text.Length > _chars.Length) Grow(text.Length);
        Length += text.ToLowerInvariant(_chars.AsSpan(Length));
    }

    public void AppendPercentEncoded(byte b)
    {
        Append('%');
        Append(HexUpper[b >> 4]);
        Append(HexUpper[b & 0xF]);
    }

    public void AppendHexLower(ReadOnlySpan<byte> bytes)
    {
        if (Length + 2 * bytes.Length > _chars.Length) Grow(2 * bytes.Length);
        SigV4Canonical.WriteHexLower(bytes, _chars.AsSpan(Length));
        Length += 2 * bytes.Length;
    }

    private void Grow(int needed) => Array.Resize(ref _chars, Math.Max(_chars.Length * 2, Length + needed));
}
