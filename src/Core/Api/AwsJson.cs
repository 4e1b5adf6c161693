using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Serverless.Core.Api;

/// <summary>Conventions of the AWS JSON protocol shared by every action.</summary>
public static class AwsJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        // AWS sends non-ASCII text as UTF-8, not as \u escapes.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Timestamps travel as epoch seconds with a millisecond fraction.</summary>
    public static JsonValue Timestamp(DateTimeOffset time) => JsonValue.Create(time.ToUnixTimeMilliseconds() / 1000.0);

    public static DateTimeOffset FromTimestamp(double seconds) => DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(seconds * 1000));

    public static string? String(this JsonObject request, string name) => request[name]?.GetValue<string>();

    public static int? Int(this JsonObject request, string name) => request[name]?.GetValue<int>();

    public static bool? Bool(this JsonObject request, string name) => request[name]?.GetValue<bool>();

    public static IEnumerable<string> Strings(this JsonObject request, string name)
        => request[name] is JsonArray array ? array.Select(n => n!.GetValue<string>()) : [];

    public static JsonArray ToJsonArray(this IEnumerable<JsonNode?> nodes) => new([.. nodes]);

    public static JsonArray ToJsonArray(this IEnumerable<string> values) => new([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);
}
