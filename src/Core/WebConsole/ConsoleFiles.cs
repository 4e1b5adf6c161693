using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;

namespace Serverless.Core.WebConsole;

/// <summary>
/// The web console's static files (built from <c>src/Console</c> by esbuild into the app's <c>console/</c>
/// folder), served at <c>/console</c>. Only the files found there at start are served, by exact name,
/// so no request path can reach another file. <c>index.html</c> is revalidated on every load and the
/// bundles it names carry a content hash and are immutable, so a new build is never hidden behind a cached
/// one. Every answer carries a content security policy that lets the page load only its own files and
/// talk only to this origin.
/// </summary>
public sealed class ConsoleFiles
{
    /// <summary>Scripts and styles from this origin only, no inline code, no frames, no plug-ins; API calls to this origin only.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private const string IndexFile = "index.html";
    private const string RouteStart = "/console/";

    private readonly FrozenDictionary<string, ConsoleFile> _files;

    public ConsoleFiles(string directory)
    {
        var files = new Dictionary<string, ConsoleFile>(StringComparer.Ordinal);
        if (Directory.Exists(directory))
        {
            foreach (var path in Directory.EnumerateFiles(directory))
            {
                var name = Path.GetFileName(path);
                if (ContentType(name) is not { } type) continue;
                var bytes = File.ReadAllBytes(path);
                var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(bytes))[..32] + "\"";
                files[name] = new ConsoleFile(bytes, type, etag);
            }
        }
        _files = files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Whether a build of the console was found (a control plane built without node serves 404 at /console).</summary>
    public bool IsBuilt => _files.ContainsKey(IndexFile);

    /// <summary>The answer to <c>GET /console/{name}</c>: index.html for <c>/console</c> and <c>/console/</c>, a named file, or 404.</summary>
    public IActionResult Serve(HttpRequest request)
    {
        var path = request.Path.Value ?? "";
        var name = path.StartsWith(RouteStart, StringComparison.Ordinal) ? path[RouteStart.Length..] : "";
        if (name.Length == 0) name = IndexFile;
        var headers = request.HttpContext.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        if (!_files.TryGetValue(name, out var file))
        {
            headers.CacheControl = "no-store";
            return new NotFoundResult();
        }
        // index.html names the current bundles, so it is checked with the server on every load; a bundle's
        // name changes whenever its content does, so a cached copy is always right.
        headers.CacheControl = name == IndexFile ? "no-cache" : "public, max-age=31536000, immutable";
        headers.ETag = file.ETag;
        if (request.Headers.IfNoneMatch.ToString() == file.ETag) return new StatusCodeResult(StatusCodes.Status304NotModified);
        return new FileContentResult(file.Bytes, file.ContentType);
    }

    private static string? ContentType(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        _ => null,
    };

    private sealed record ConsoleFile(byte[] Bytes, string ContentType, string ETag);
}

public static class ConsoleServices
{
    /// <summary>The console's files from <c>console/</c> next to the app (where the build puts them).</summary>
    public static IServiceCollection AddConsole(this IServiceCollection services)
        => services.AddSingleton(_ => new ConsoleFiles(Path.Combine(AppContext.BaseDirectory, "console")));
}
