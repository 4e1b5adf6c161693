using Serverless.Core.Api;
using Serverless.Core.Logs;

namespace Serverless.Core.Tests.Logs;

public sealed class FilterPatternTests
{
    private const string AccessLog = "127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 1534";

    // AWS's space-delimited examples, on its Apache access log line: seven fields, the [time] and the "request" one each.
    [Theory]
    [InlineData("[ip, user, username, timestamp, request, status_code, bytes]", true)]
    [InlineData("[ip, user, username, timestamp, request, status_code]", false)]
    [InlineData("[ip, user, username, timestamp, request, status_code, bytes, extra]", false)]
    [InlineData("[..., status_code, bytes]", true)]
    [InlineData("[ip, user, ...]", true)]
    [InlineData("[ip, user, ..., status_code = 200, bytes]", true)]
    [InlineData("[ip, user, username, timestamp, request, status_code = 4*, bytes]", false)]
    [InlineData("[ip, user, username, timestamp, request, status_code = 2*, bytes]", true)]
    [InlineData("[ip, user, username, timestamp, request = \"*gif*\", status_code, bytes]", true)]
    [InlineData("[ip, user, username, timestamp, request = *html*, status_code, bytes]", false)]
    [InlineData("[ip, user, username = frank, ...]", true)]
    [InlineData("[ip != 127.0.0.1, ...]", false)]
    [InlineData("[ip, user, username, timestamp = 10/Oct/2000*, ...]", true)]
    [InlineData("[..., bytes > 1000]", true)]
    [InlineData("[..., bytes <= 1000]", false)]
    [InlineData("[..., status_code >= 200 && status_code < 300, bytes]", true)]
    [InlineData("[..., status_code = 4* || status_code = 5*, bytes]", false)]
    [InlineData("[..., status_code = 4* || status_code = 2*, bytes]", true)]
    [InlineData("[..., status_code != 200, bytes]", false)]
    public void Space_delimited_patterns_match_fields_as_AWS_documents(string pattern, bool expected)
        => Assert.Equal(expected, FilterPattern.Parse(pattern).Matches(AccessLog));

    [Theory]
    [InlineData("[ip, user")]
    [InlineData("[ip,, user]")]
    [InlineData("[ip, bytes > big]")]
    [InlineData("[ip, user = ]")]
    [InlineData("[ip, status >= 200 && other < 300]")]
    [InlineData("[ip = \"unclosed]")]
    [InlineData("[ip, user, username = %fr.nk%, ...]")]
    public void Space_delimited_patterns_that_do_not_parse_are_invalid(string pattern)
        => Assert.Equal("InvalidParameterException", Assert.ThrowsAny<Serverless.Core.Api.EcsException>(() => FilterPattern.Parse(pattern)).ErrorType);

    [Theory]
    [InlineData("", "anything", true)]
    [InlineData("ERROR", "[ERROR] disk full", true)]
    [InlineData("ERROR", "[error] disk full", false)]
    [InlineData("ERROR disk", "[ERROR] disk full", true)]
    [InlineData("ERROR memory", "[ERROR] disk full", false)]
    [InlineData("\"disk full\"", "[ERROR] disk full", true)]
    [InlineData("\"full disk\"", "[ERROR] disk full", false)]
    [InlineData("?WARN ?ERROR", "[ERROR] disk full", true)]
    [InlineData("?WARN ?INFO", "[ERROR] disk full", false)]
    [InlineData("ERROR -disk", "[ERROR] disk full", false)]
    [InlineData("ERROR -memory", "[ERROR] disk full", true)]
    [InlineData("{ $.level = \"error\" }", "{\"level\":\"error\",\"n\":3}", true)]
    [InlineData("{ $.level = \"error\" }", "{\"level\":\"info\",\"n\":3}", false)]
    [InlineData("{ $.level = \"error\" }", "level error", false)]
    [InlineData("{ $.level = err* }", "{\"level\":\"error\"}", true)]
    [InlineData("{ $.level != \"error\" }", "{\"level\":\"info\"}", true)]
    [InlineData("{ $.n > 2 }", "{\"n\":3}", true)]
    [InlineData("{ $.n > 3 }", "{\"n\":3}", false)]
    [InlineData("{ $.n <= 3 && $.level = \"error\" }", "{\"n\":3,\"level\":\"error\"}", true)]
    [InlineData("{ ($.n = 1) || ($.level = \"error\") }", "{\"n\":3,\"level\":\"error\"}", true)]
    [InlineData("{ $.n = 3 }", "{\"n\":3.0}", true)]
    [InlineData("{ $.a.b[1] = \"y\" }", "{\"a\":{\"b\":[\"x\",\"y\"]}}", true)]
    [InlineData("{ $.missing NOT EXISTS }", "{\"n\":1}", true)]
    [InlineData("{ $.v IS NULL }", "{\"v\":null}", true)]
    [InlineData("{ $.ok IS TRUE }", "{\"ok\":true}", true)]
    [InlineData("{ $.ok IS FALSE }", "{\"ok\":true}", false)]
    [InlineData("%AUTHORIZED%", "[ERROR 401] UNAUTHORIZED REQUEST", true)]
    [InlineData("%AUTHORIZED%", "[SUCCESS 200] AUTHORIZED REQUEST", true)]
    [InlineData("%[Ee]rror|[Ff]ail%", "request failed", true)]
    [InlineData("%[Ee]rror|[Ff]ail%", "all good", false)]
    [InlineData("%^[hc]at%", "hat on", true)]
    [InlineData("%^[hc]at%", "the cat", false)]
    [InlineData("%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%", "from 10.0.12.7:80", true)]
    [InlineData("%colou?r%", "Color", false)]
    public void A_pattern_matches_as_CloudWatch_Logs_documents(string pattern, string message, bool matches)
        => Assert.Equal(matches, FilterPattern.Parse(pattern).Matches(message));

    [Theory]
    [InlineData("{ $.level = ")]
    [InlineData("{ level = \"x\" }")]
    [InlineData("\"unclosed")]
    [InlineData("a:b")]
    [InlineData("{ $.n > abc }")]
    [InlineData("[ip, user")]
    [InlineData("%(a|b)%")]
    [InlineData("%something!%")]
    [InlineData("%[a%")]
    [InlineData("%unclosed")]
    [InlineData("%%")]
    public void A_pattern_that_does_not_parse_is_an_InvalidParameterException(string pattern)
        => Assert.Throws<InvalidParameterException>(() => FilterPattern.Parse(pattern));
}
