using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Serverless.Core.Api.Auth;

/// <summary>
/// Verifies AWS Signature Version 4 as ECS's front end does: the canonical request botocore builds, the
/// checks in the order AWS JSON services (Coral) make them, and their error codes and messages, so an AWS
/// client reports a failure exactly as it would against AWS.
/// </summary>
/// <remarks>
/// <para>Both the <c>Authorization</c> header and presigned query (<c>X-Amz-Algorithm=...</c>) forms are
/// accepted. As for every non-S3 service, a presigned request's <c>X-Amz-Expires</c> is ignored and the
/// same clock window applies.</para>
/// <para>The credential scope's region and service are signed into the key, but not checked against this
/// deployment: clients point at one endpoint with whatever region they are configured for, and the same
/// endpoint serves <c>ecs</c> and <c>application-autoscaling</c>. AWS answers a wrong scope with
/// "Credential should be scoped to a valid region"; rejecting here would only break clients that work.</para>
/// <para>Thread-safe; one instance serves every request. Pure: it reads the request, the keys and the clock.</para>
/// </remarks>
public sealed class SigV4Verifier
{
    public const string Algorithm = "AWS4-HMAC-SHA256";

    /// <summary>How far the request's time may be from ours, either way (AWS allows up to 15 minutes).</summary>
    public static readonly TimeSpan AllowedSkew = TimeSpan.FromMinutes(5);

    private const string Terminator = "aws4_request";
    private const string TimestampFormat = "yyyyMMdd'T'HHmmss'Z'";
    private static readonly string[] HttpDateFormats = ["r", "ddd, dd MMM yyyy HH:mm:ss zzz"];

    // A request signs with one key per (access key, day, region, service); a handful are live at once.
    // The bound caps what clients inventing regions could make us hold; clearing is cheap to recover from.
    private const int MaxCachedSigningKeys = 256;

    // A canonical request past this leaves its buffer to the GC instead of pinning it to the thread.
    private const int MaxRetainedBufferChars = 64 * 1024;

    [ThreadStatic]
    private static CharBuffer? t_buffer;

    private readonly TimeProvider _time;
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _secrets;

    // Keyed by "AKID/yyyyMMdd/region/service", a prefix of the Credential itself, so a hit costs no
    // allocation. The access key id stands for its secret: the keys are fixed for this instance's life.
    private readonly ConcurrentDictionary<string, byte[]> _signingKeys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]>.AlternateLookup<ReadOnlySpan<char>> _signingKeyLookup;

    public SigV4Verifier(IReadOnlyDictionary<string, string> secretsByAccessKeyId, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(secretsByAccessKeyId);
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _secrets = new Dictionary<string, string>(secretsByAccessKeyId, StringComparer.Ordinal)
            .GetAlternateLookup<ReadOnlySpan<char>>();
        _signingKeyLookup = _signingKeys.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>
    /// Returns the access key id whose secret signed <paramref name="request"/>, or throws
    /// <see cref="AuthenticationException"/> carrying the error AWS would answer with.
    /// </summary>
    public string Verify(SignedRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);

        var header = FindHeader(request.Headers, "Authorization");
        var presigned = FindQueryParameter(request.RawQueryString, "X-Amz-Algorithm") is not null;
        if (header is not null && presigned)
        {
            throw new AuthenticationException("InvalidSignatureException",
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.");
        }

        var auth = presigned ? FromQuery(request.RawQueryString) : FromHeader(header, request.Headers);

        CheckClock(auth.Time);
        CheckSignedHeaders(auth.SignedHeaders.Span, request.Headers);
        if (!auth.Algorithm.Span.SequenceEqual(Algorithm))
        {
            throw AuthenticationException.Incomplete(
                $"Unsupported AWS 'algorithm': '{auth.Algorithm}' (only {Algorithm} for now). ");
        }

        var scope = CredentialScope.Parse(auth.Credential);
        CheckScope(scope, auth.Timestamp);

        if (!_secrets.TryGetValue(scope.AccessKeyId, out var accessKeyId, out var secret))
        {
            throw AuthenticationException.UnrecognizedClient();
        }

        CheckSignature(request, auth, scope, secret, presigned);

        // Keys here are long-term keys: no session token can belong to them, and AWS refuses the pairing.
        var token = presigned
            ? FindQueryParameter(request.RawQueryString, "X-Amz-Security-Token")
            : FindHeader(request.Headers, "X-Amz-Security-Token");
        if (token is not null) throw AuthenticationException.UnrecognizedClient();

        return accessKeyId;
    }

    private static PresentedAuth FromHeader(string? header, IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        // Coral treats a header that is not SigV4 at all (Basic, Bearer, SigV2) as no token.
        var value = header.AsMemory().Trim();
        if (header is null || !value.Span.StartsWith("AWS4-", StringComparison.Ordinal))
        {
            throw AuthenticationException.MissingToken();
        }

        var algorithmEnd = value.Span.IndexOfAny(',', ' ');
        var algorithm = algorithmEnd < 0 ? value : value[..algorithmEnd];
        var parameters = algorithmEnd < 0 ? ReadOnlyMemory<char>.Empty : value[(algorithmEnd + 1)..];

        ReadOnlyMemory<char>? credential = null, signedHeaders = null, signature = null;
        foreach (var range in parameters.Span.SplitAny(", "))
        {
            var pair = parameters[range];
            if (pair.IsEmpty) continue;
            var equals = pair.Span.IndexOf('=');
            if (equals < 0)
            {
                throw AuthenticationException.Incomplete(
                    $"'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'.");
            }
            var name = pair.Span[..equals];
            if (name.SequenceEqual("Credential")) credential = pair[(equals + 1)..];
            else if (name.SequenceEqual("SignedHeaders")) signedHeaders = pair[(equals + 1)..];
            else if (name.SequenceEqual("Signature")) signature = pair[(equals + 1)..];
        }

        var amzDate = FindHeader(headers, "X-Amz-Date");
        var date = amzDate ?? FindHeader(headers, "Date");

        // AWS lists everything missing at once, then echoes the header.
        StringBuilder? missing = null;
        if (credential is not { IsEmpty: false }) Require(ref missing, "Authorization header requires 'Credential' parameter. ");
        if (signature is not { IsEmpty: false }) Require(ref missing, "Authorization header requires 'Signature' parameter. ");
        if (signedHeaders is null) Require(ref missing, "Authorization header requires 'SignedHeaders' parameter. ");
        if (date is null)
        {
            Require(ref missing,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
        }
        if (missing is not null) throw AuthenticationException.Incomplete($"{missing}Authorization={header}");

        var (time, timestamp) = ParseTime(date!, allowHttpDate: amzDate is null);
        return new PresentedAuth(algorithm, credential!.Value, signedHeaders!.Value, signature!.Value,
            time, timestamp);
    }

    private static PresentedAuth FromQuery(string rawQuery)
    {
        var algorithm = FindQueryParameter(rawQuery, "X-Amz-Algorithm");
        var credential = FindQueryParameter(rawQuery, "X-Amz-Credential");
        var signature = FindQueryParameter(rawQuery, "X-Amz-Signature");
        var signedHeaders = FindQueryParameter(rawQuery, "X-Amz-SignedHeaders");
        var date = FindQueryParameter(rawQuery, "X-Amz-Date");

        StringBuilder? missing = null;
        if (string.IsNullOrEmpty(algorithm)) RequireQuery(ref missing, "X-Amz-Algorithm");
        if (string.IsNullOrEmpty(credential)) RequireQuery(ref missing, "X-Amz-Credential");
        if (string.IsNullOrEmpty(signature)) RequireQuery(ref missing, "X-Amz-Signature");
        if (string.IsNullOrEmpty(signedHeaders)) RequireQuery(ref missing, "X-Amz-SignedHeaders");
        if (string.IsNullOrEmpty(date)) RequireQuery(ref missing, "X-Amz-Date");
        if (missing is not null)
        {
            throw AuthenticationException.Incomplete($"{missing}Re-examine the query-string parameters.");
        }

        var (time, timestamp) = ParseTime(date!, allowHttpDate: false);
        return new PresentedAuth(algorithm.AsMemory(), credential.AsMemory(), signedHeaders.AsMemory(), signature.AsMemory(),
            time, timestamp);

        static void RequireQuery(ref StringBuilder? missing, string name)
            => Require(ref missing, $"AWS query-string parameters must include '{name}'. ");
    }

    private static void Require(ref StringBuilder? missing, string sentence) => (missing ??= new()).Append(sentence);

    // X-Amz-Date is ISO 8601 basic; a Date header may also be an HTTP date (botocore sends RFC 2822 with
    // "-0000"). Either way the string to sign carries the basic form, which is what the client signed.
    private static (DateTimeOffset Time, string Timestamp) ParseTime(string value, bool allowHttpDate)
    {
        var text = value.Trim();
        const DateTimeStyles utc = DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal;
        if (DateTimeOffset.TryParseExact(text, TimestampFormat, CultureInfo.InvariantCulture, utc, out var time))
        {
            return (time, text);
        }
        if (allowHttpDate
            && DateTimeOffset.TryParseExact(text, HttpDateFormats, CultureInfo.InvariantCulture, utc, out time))
        {
            return (time, Format(time));
        }
        throw AuthenticationException.Incomplete(
            $"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601");
    }

    private void CheckClock(DateTimeOffset requestTime)
    {
        var now = _time.GetUtcNow();
        var minutes = (int)AllowedSkew.TotalMinutes;
        if (requestTime < now - AllowedSkew)
        {
            throw AuthenticationException.Expired(
                $"Signature expired: {Format(requestTime)} is now earlier than {Format(now - AllowedSkew)} " +
                $"({Format(now)} - {minutes} min.)");
        }
        if (requestTime > now + AllowedSkew)
        {
            throw AuthenticationException.Expired(
                $"Signature not yet current: {Format(requestTime)} is still later than {Format(now + AllowedSkew)} " +
                $"({Format(now)} + {minutes} min.)");
        }
    }

    private static string Format(DateTimeOffset time)
        => time.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);

    /// <summary>At most this many names in <c>SignedHeaders</c>; botocore signs five or six.</summary>
    public const int MaxSignedHeaders = 64;

    /// <summary>A canonical request longer than this is not echoed in the mismatch message.</summary>
    public const int MaxEchoedCanonicalRequest = 16 * 1024;

    // What the signature must cover, checked before any canonical request is built:
    // - Host: without it a captured request could be replayed against another endpoint;
    // - every x-amz-* header present, as the SigV4 documentation requires and every SDK does: above
    //   all X-Amz-Target, which chooses the action, so a signed ListClusters cannot become a DeleteCluster;
    // - each name once, and a bounded number of them: a name listed again adds its value to the
    //   canonical request again, so one small request could make us build and echo megabytes.
    private static void CheckSignedHeaders(ReadOnlySpan<char> signedHeaders, IReadOnlyList<KeyValuePair<string, string>> headers)
    {
        var count = 0;
        var host = false;
        foreach (var range in signedHeaders.Split(';'))
        {
            var name = signedHeaders[range];
            if (++count > MaxSignedHeaders)
            {
                throw AuthenticationException.Incomplete(
                    $"SignedHeaders may list at most {MaxSignedHeaders} headers.");
            }
            host |= name.Equals("host", StringComparison.OrdinalIgnoreCase);
            if (signedHeaders[(range.End.GetOffset(signedHeaders.Length))..].Length > 0
                && ContainsName(signedHeaders[(range.End.GetOffset(signedHeaders.Length) + 1)..], name))
            {
                throw AuthenticationException.Incomplete($"SignedHeaders lists '{name}' more than once.");
            }
        }
        if (!host)
        {
            throw new AuthenticationException("InvalidSignatureException",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
        }
        for (var i = 0; i < headers.Count; i++)
        {
            var name = headers[i].Key;
            // A session token is refused after the signature in any case (no key here has one).
            if (name.StartsWith("x-amz-", StringComparison.OrdinalIgnoreCase)
                && !name.Equals("X-Amz-Security-Token", StringComparison.OrdinalIgnoreCase)
                && !ContainsName(signedHeaders, name))
            {
                throw new AuthenticationException("InvalidSignatureException",
                    $"'{name}' must be a 'SignedHeader' in the AWS Authorization.");
            }
        }
    }

    private static bool ContainsName(ReadOnlySpan<char> signedHeaders, ReadOnlySpan<char> name)
    {
        foreach (var range in signedHeaders.Split(';'))
        {
            if (signedHeaders[range].Equals(name, StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }

    // AWS reports every scope problem in one message; region and service are deliberately not among them.
    private static void CheckScope(CredentialScope scope, string timestamp)
    {
        var terminatorOk = scope.Terminator.SequenceEqual(Terminator);
        var dateOk = scope.Date.SequenceEqual(timestamp.AsSpan(0, 8));
        if (terminatorOk && dateOk) return;

        var message = new StringBuilder();
        if (!terminatorOk)
        {
            message.Append($"Credential should be scoped with a valid terminator: '{Terminator}', not '{scope.Terminator}'. ");
        }
        if (!dateOk)
        {
            message.Append("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ")
                .Append($"'{scope.Date}' != '{timestamp.AsSpan(0, 8)}', from '{timestamp}'.");
        }
        throw new AuthenticationException("InvalidSignatureException", message.ToString());
    }

    private void CheckSignature(SignedRequest request, PresentedAuth auth, CredentialScope scope, string secret, bool presigned)
    {
        var buffer = t_buffer ??= new CharBuffer();
        buffer.Clear();
        try
        {
            buffer.Append(request.Method);
            buffer.Append('\n');
            SigV4Canonical.AppendUri(buffer, request.RawPath);
            buffer.Append('\n');
            SigV4Canonical.AppendQuery(buffer, request.RawQueryString, excludeSignature: presigned);
            buffer.Append('\n');
            SigV4Canonical.AppendHeaders(buffer, auth.SignedHeaders.Span, request.Headers);
            buffer.Append('\n');
            AppendPayloadHash(buffer, request);
            var canonicalLength = buffer.Length;

            Span<byte> digest = stackalloc byte[32];
            SigV4Canonical.Sha256(buffer.Written, digest);
            buffer.Append(Algorithm);
            buffer.Append('\n');
            buffer.Append(auth.Timestamp);
            buffer.Append('\n');
            buffer.Append(scope.Scope);
            buffer.Append('\n');
            buffer.AppendHexLower(digest);

            Span<byte> signature = stackalloc byte[32];
            SigV4Canonical.HmacSha256(SigningKey(scope, secret), buffer.Written[canonicalLength..], signature);
            Span<char> expected = stackalloc char[64];
            SigV4Canonical.WriteHexLower(signature, expected);

            // Constant time: how much of a guess matched must not show in how long the answer takes.
            if (!CryptographicOperations.FixedTimeEquals(
                    MemoryMarshal.AsBytes(expected), MemoryMarshal.AsBytes(auth.Signature.Span)))
            {
                throw Mismatch(buffer.Written[..canonicalLength], buffer.Written[canonicalLength..]);
            }
        }
        finally
        {
            if (buffer.Capacity > MaxRetainedBufferChars) t_buffer = null;
        }
    }

    // The body is hashed whatever X-Amz-Content-SHA256 claims: these JSON services always sign the payload
    // (botocore does unless told otherwise, and UNSIGNED-PAYLOAD is an S3 feature). A header that agrees
    // with the body is used verbatim, as botocore puts it into its canonical request as sent.
    private static void AppendPayloadHash(CharBuffer buffer, SignedRequest request)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(request.Body.Span, hash);
        Span<char> hex = stackalloc char[64];
        SigV4Canonical.WriteHexLower(hash, hex);

        var declared = FindHeader(request.Headers, "X-Amz-Content-SHA256").AsSpan().Trim();
        buffer.Append(declared.Equals(hex, StringComparison.OrdinalIgnoreCase) ? declared : hex);
    }

    private byte[] SigningKey(CredentialScope scope, string secret)
    {
        if (_signingKeyLookup.TryGetValue(scope.CacheKey, out var cached)) return cached;

        var key = DeriveSigningKey(secret, scope.Date, scope.Region, scope.Service);
        if (_signingKeys.Count >= MaxCachedSigningKeys) _signingKeys.Clear();
        _signingKeys.TryAdd(scope.CacheKey.ToString(), key);
        return key;
    }

    /// <summary>kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").</summary>
    internal static byte[] DeriveSigningKey(
        string secret, ReadOnlySpan<char> date, ReadOnlySpan<char> region, ReadOnlySpan<char> service)
    {
        var secretKey = Encoding.UTF8.GetBytes("AWS4" + secret);
        Span<byte> key = stackalloc byte[32];
        try
        {
            SigV4Canonical.HmacSha256(secretKey, date, key);
            SigV4Canonical.HmacSha256(key, region, key);
            SigV4Canonical.HmacSha256(key, service, key);
            var signingKey = new byte[32];
            SigV4Canonical.HmacSha256(key, Terminator, signingKey);
            return signingKey;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secretKey);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    // AWS JSON services tell the caller what they computed; it holds nothing secret and is the only way a
    // client author can find which header a proxy rewrote.
    // Bounded all the same: headers are bounded by the host, but the answer must not depend on that.
    private static AuthenticationException Mismatch(ReadOnlySpan<char> canonicalRequest, ReadOnlySpan<char> stringToSign)
    {
        var generic = AuthenticationException.InvalidSignature();
        if (canonicalRequest.Length > MaxEchoedCanonicalRequest) return generic;
        return new AuthenticationException(generic.ErrorType,
            $"{generic.Message}\n\nThe Canonical String for this request should have been\n'{canonicalRequest}'\n\n" +
            $"The String-to-Sign should have been\n'{stringToSign}'\n");
    }

    private static string? FindHeader(IReadOnlyList<KeyValuePair<string, string>> headers, string name)
    {
        for (var i = 0; i < headers.Count; i++)
        {
            if (string.Equals(headers[i].Key, name, StringComparison.OrdinalIgnoreCase)) return headers[i].Value;
        }
        return null;
    }

    /// <summary>The first value of <paramref name="name"/>, percent-decoded; "" when present without a value.</summary>
    private static string? FindQueryParameter(string rawQuery, string name)
    {
        if (rawQuery.Length == 0) return null;
        var query = rawQuery.AsSpan();
        foreach (var range in query.Split('&'))
        {
            var pair = query[range];
            var equals = pair.IndexOf('=');
            if (!(equals < 0 ? pair : pair[..equals]).SequenceEqual(name)) continue;
            return equals < 0 ? "" : Uri.UnescapeDataString(pair[(equals + 1)..].ToString());
        }
        return null;
    }

    private readonly record struct PresentedAuth(
        ReadOnlyMemory<char> Algorithm,
        ReadOnlyMemory<char> Credential,
        ReadOnlyMemory<char> SignedHeaders,
        ReadOnlyMemory<char> Signature,
        DateTimeOffset Time,
        string Timestamp);

    /// <summary><c>AKID/yyyyMMdd/region/service/aws4_request</c>, sliced without copying.</summary>
    private readonly ref struct CredentialScope
    {
        public ReadOnlySpan<char> AccessKeyId { get; init; }
        public ReadOnlySpan<char> Date { get; init; }
        public ReadOnlySpan<char> Region { get; init; }
        public ReadOnlySpan<char> Service { get; init; }
        public ReadOnlySpan<char> Terminator { get; init; }

        /// <summary>What the string to sign carries: everything after the access key id.</summary>
        public ReadOnlySpan<char> Scope { get; init; }

        /// <summary>Everything before the terminator: what selects one signing key.</summary>
        public ReadOnlySpan<char> CacheKey { get; init; }

        public static CredentialScope Parse(ReadOnlyMemory<char> credential)
        {
            // AWS ignores trailing slashes, then insists on exactly five elements.
            var value = credential.Span.TrimEnd('/');
            Span<Range> parts = stackalloc Range[6];
            if (value.Split(parts, '/') != 5)
            {
                throw AuthenticationException.Incomplete(
                    "Credential must have exactly 5 slash-delimited elements, " +
                    $"e.g. keyid/date/region/service/term, got '{credential}'");
            }
            return new CredentialScope
            {
                AccessKeyId = value[parts[0]],
                Date = value[parts[1]],
                Region = value[parts[2]],
                Service = value[parts[3]],
                Terminator = value[parts[4]],
                Scope = value[parts[1].Start..],
                CacheKey = value[..parts[3].End],
            };
        }
    }
}
