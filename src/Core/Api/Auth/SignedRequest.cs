namespace Serverless.Core.Api.Auth;

/// <summary>
/// An HTTP request exactly as it arrived, the input <see cref="SigV4Verifier"/> checks. Fill it from
/// the wire, not from a framework's decoded view: the signature covers the bytes the client sent.
/// </summary>
/// <param name="Method">The request-line method, e.g. <c>POST</c>.</param>
/// <param name="RawPath">
/// The request-line path, still percent-encoded (ASP.NET Core's <c>IHttpRequestFeature.RawTarget</c>
/// up to <c>?</c>, not <c>HttpRequest.Path</c>, which is decoded). Empty means <c>/</c>.
/// </param>
/// <param name="RawQueryString">The query string without the leading <c>?</c>, still encoded; may be empty.</param>
/// <param name="Headers">Every header as received; a name may repeat, names compare case-insensitively.</param>
/// <param name="Body">The complete request body.</param>
public sealed record SignedRequest(
    string Method,
    string RawPath,
    string RawQueryString,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    ReadOnlyMemory<byte> Body);
