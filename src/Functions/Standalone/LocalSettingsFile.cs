using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Serverless.Functions.Standalone;

/// <summary>
/// Reads <c>local.settings.json</c> the way Core Tools does: every <c>Values</c> entry becomes an app setting,
/// which the host hands to the worker as an environment variable, so <c>Ecs__Region</c> and <c>Ecs:Region</c>
/// both end up as the configuration key <c>Ecs:Region</c>. <c>ConnectionStrings</c> become
/// <c>ConnectionStrings:&lt;name&gt;</c>, and <c>Host.LocalHttpPort</c> is kept as <c>Host:LocalHttpPort</c>.
/// </summary>
public static class LocalSettingsFile
{
    public const string FileName = "local.settings.json";

    /// <summary>The settings as configuration key/value pairs; empty when the file does not exist.</summary>
    /// <exception cref="InvalidOperationException">The file is encrypted (<c>IsEncrypted: true</c>), which only Core Tools can read.</exception>
    public static IReadOnlyDictionary<string, string?> Read(string path)
    {
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (!File.Exists(path)) return settings;

        using var document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions
        {
            AllowTrailingCommas = true,
            CommentHandling = JsonCommentHandling.Skip,
        });
        var root = document.RootElement;

        if (root.TryGetProperty("IsEncrypted", out var encrypted) && encrypted.ValueKind == JsonValueKind.True)
        {
            throw new InvalidOperationException(
                $"'{path}' is encrypted; decrypt it with 'func settings decrypt' or write the values in plain text.");
        }

        if (root.TryGetProperty("Values", out var values) && values.ValueKind == JsonValueKind.Object)
        {
            foreach (var value in values.EnumerateObject())
            {
                settings[ToConfigurationKey(value.Name)] = AsString(value.Value);
            }
        }
        if (root.TryGetProperty("ConnectionStrings", out var connectionStrings) && connectionStrings.ValueKind == JsonValueKind.Object)
        {
            foreach (var connection in connectionStrings.EnumerateObject())
            {
                settings[$"ConnectionStrings:{connection.Name}"] = AsString(connection.Value);
            }
        }
        if (root.TryGetProperty("Host", out var host) && host.ValueKind == JsonValueKind.Object)
        {
            foreach (var setting in host.EnumerateObject())
            {
                settings[$"Host:{setting.Name}"] = AsString(setting.Value);
            }
        }
        return settings;
    }

    /// <summary>Adds the file beneath every source already in <paramref name="configuration"/>, so environment and command line win.</summary>
    public static void AddBeneath(IConfigurationBuilder configuration, string path)
        => configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
        {
            InitialData = Read(path),
        });

    // The environment-variable provider maps '__' to ':'; the host passes Values through the environment.
    private static string ToConfigurationKey(string name) => name.Replace("__", ConfigurationPath.KeyDelimiter, StringComparison.Ordinal);

    private static string? AsString(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => value.GetRawText(),
    };
}
