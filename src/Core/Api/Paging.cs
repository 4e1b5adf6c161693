using System.Buffers.Text;
using System.Text;
using System.Text.Json.Nodes;

namespace Serverless.Core.Api;

/// <summary>
/// <c>maxResults</c>/<c>nextToken</c> as ECS list actions use them. A token is opaque to clients:
/// here, base64url of the last key returned, so a page resumes with a range query after it.
/// </summary>
public static class Paging
{
    public static int MaxResults(JsonObject request, int @default = 100, int max = 100)
    {
        var value = request.Int("maxResults");
        if (value is null) return @default;
        if (value < 1 || value > max)
            throw new InvalidParameterException($"maxResults must be between 1 and {max}.");
        return value.Value;
    }

    public static string? AfterKey(JsonObject request)
    {
        var token = request.String("nextToken");
        if (string.IsNullOrEmpty(token)) return null;
        // A token holds one row key (at most 1 KiB in Table Storage): anything longer is no token of ours.
        if (token.Length > MaxTokenLength) throw new InvalidParameterException("Invalid nextToken.");
        try
        {
            return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
        }
        catch (FormatException)
        {
            throw new InvalidParameterException("Invalid nextToken.");
        }
    }

    private const int MaxTokenLength = 4096;

    public static string Token(string lastKey) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(lastKey));

    /// <summary>Adds <c>nextToken</c> when the page was full and more may follow.</summary>
    public static void AddNextToken(JsonObject response, bool more, string? lastKey)
    {
        if (more && lastKey is not null) response["nextToken"] = Token(lastKey);
    }
}
