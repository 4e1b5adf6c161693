using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Serverless.Core.WebConsole;

namespace Serverless.Core.Tests.WebConsole;

public sealed class ConsoleFilesTests : IDisposable
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("console-files-");
    private readonly ConsoleFiles _files;

    public ConsoleFilesTests()
    {
        File.WriteAllText(Path.Combine(_directory.FullName, "index.html"), "<!doctype html><script type=module src=/console/app-ABC123.js></script>");
        File.WriteAllText(Path.Combine(_directory.FullName, "app-ABC123.js"), "console.log(1)");
        File.WriteAllText(Path.Combine(_directory.FullName, "notes.txt"), "not a console file");
        _files = new ConsoleFiles(_directory.FullName);
    }

    public void Dispose() => _directory.Delete(recursive: true);

    private (IActionResult Result, HttpResponse Response) Get(string path, string? ifNoneMatch = null)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = "GET";
        http.Request.Path = path;
        if (ifNoneMatch is not null) http.Request.Headers.IfNoneMatch = ifNoneMatch;
        return (_files.Serve(http.Request), http.Response);
    }

    [Theory]
    [InlineData("/console")]
    [InlineData("/console/")]
    public void The_bare_path_is_index_html_revalidated_on_every_load(string path)
    {
        var (result, response) = Get(path);

        var file = Assert.IsType<FileContentResult>(result);
        Assert.Equal("text/html; charset=utf-8", file.ContentType);
        Assert.Equal("no-cache", response.Headers.CacheControl.ToString());
        Assert.False(string.IsNullOrEmpty(response.Headers.ETag.ToString()));
    }

    [Fact]
    public void A_hashed_bundle_is_immutable()
    {
        var (result, response) = Get("/console/app-ABC123.js");

        Assert.Equal("text/javascript; charset=utf-8", Assert.IsType<FileContentResult>(result).ContentType);
        Assert.Equal("public, max-age=31536000, immutable", response.Headers.CacheControl.ToString());
    }

    [Fact]
    public void Every_answer_carries_the_content_security_policy_and_nosniff()
    {
        foreach (var path in new[] { "/console/", "/console/app-ABC123.js", "/console/missing.js" })
        {
            var (_, response) = Get(path);
            Assert.Equal(ConsoleFiles.ContentSecurityPolicy, response.Headers.ContentSecurityPolicy.ToString());
            Assert.Contains("script-src 'self'", ConsoleFiles.ContentSecurityPolicy, StringComparison.Ordinal);
            Assert.DoesNotContain("unsafe", ConsoleFiles.ContentSecurityPolicy, StringComparison.Ordinal);
            Assert.Equal("nosniff", response.Headers.XContentTypeOptions.ToString());
        }
    }

    [Theory]
    [InlineData("/console/missing.js")]
    [InlineData("/console/notes.txt")]
    [InlineData("/console/../index.html")]
    [InlineData("/console/%2e%2e/secrets.json")]
    [InlineData("/console/sub/app-ABC123.js")]
    public void Only_the_built_files_are_served_by_exact_name(string path)
    {
        var (result, response) = Get(path);

        Assert.IsType<NotFoundResult>(result);
        Assert.Equal("no-store", response.Headers.CacheControl.ToString());
    }

    [Fact]
    public void A_request_with_the_current_etag_gets_304()
    {
        var (_, first) = Get("/console/");
        var (result, _) = Get("/console/", ifNoneMatch: first.Headers.ETag.ToString());

        Assert.Equal(StatusCodes.Status304NotModified, Assert.IsType<StatusCodeResult>(result).StatusCode);
    }

    [Fact]
    public void Without_a_build_nothing_is_served()
    {
        var files = new ConsoleFiles(Path.Combine(_directory.FullName, "absent"));

        Assert.False(files.IsBuilt);
        Assert.IsType<NotFoundResult>(files.Serve(new DefaultHttpContext { Request = { Path = "/console/" } }.Request));
    }
}
