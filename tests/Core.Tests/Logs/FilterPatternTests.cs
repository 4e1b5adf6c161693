using Serverless.Core.Api;
using Serverless.Core.Logs;

namespace Serverless.Core.Tests.Logs;

public sealed class FilterPatternTests
{
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
    [InlineData("[ip, user]")]
    [InlineData("%(a|b)%")]
    [InlineData("%something!%")]
    [InlineData("%[a%")]
    [InlineData("%unclosed")]
    [InlineData("%%")]
    public void A_pattern_that_does_not_parse_is_an_InvalidParameterException(string pattern)
        => Assert.Throws<InvalidParameterException>(() => FilterPattern.Parse(pattern));
}
