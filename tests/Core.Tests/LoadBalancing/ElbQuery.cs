using System.Text;
using System.Xml.Linq;
using Serverless.Core.Api.Query;
using Serverless.Core.Tests.Api;

namespace Serverless.Core.Tests.LoadBalancing;

/// <summary>An ELBv2 call through the harness's endpoint in the query protocol, signed as a client signs it.</summary>
internal static class ElbQuery
{
    public static readonly XNamespace Ns = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

    public static async Task<(int Status, XElement Xml)> CallAsync(ApiHarness api, string action, params (string Name, string Value)[] parameters)
    {
        var form = string.Join('&', new[] { ("Action", action), ("Version", "2015-12-01") }.Concat(parameters)
            .Select(p => $"{Uri.EscapeDataString(p.Item1)}={Uri.EscapeDataString(p.Item2)}"));
        var body = Encoding.UTF8.GetBytes(form);
        var headers = new List<(string Name, string Value)>
        {
            ("Host", ApiHarness.Host),
            ("X-Amz-Date", TimeProvider.System.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'")),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        };
        headers.Add(("Authorization", ApiHarness.Authorization(headers, "host;x-amz-date", body)));
        var (context, output) = ApiHarness.PostContext(headers, body);
        var result = (QueryXmlResult)await api.Endpoint.HandleAsync(context.Request, CancellationToken.None);
        await result.WriteAsync(context.Response);
        Assert.Equal("text/xml", context.Response.ContentType);
        return (result.StatusCode, XElement.Parse(Encoding.UTF8.GetString(output.ToArray())));
    }
}
