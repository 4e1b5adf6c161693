using System.Text;
using Microsoft.Extensions.Configuration;

namespace Serverless.Functions.Standalone;

/// <summary>
/// Resolves <c>%Setting%</c> placeholders in binding properties (queue names, schedules) from configuration,
/// as the host's name resolver does.
/// </summary>
public static class AppSettingResolver
{
    /// <exception cref="InvalidOperationException">A placeholder names a setting that is not set.</exception>
    public static string Resolve(string value, IConfiguration configuration)
    {
        if (!value.Contains('%')) return value;

        var resolved = new StringBuilder(value.Length);
        var index = 0;
        while (index < value.Length)
        {
            var start = value.IndexOf('%', index);
            var end = start < 0 ? -1 : value.IndexOf('%', start + 1);
            if (end < 0)
            {
                resolved.Append(value, index, value.Length - index);
                break;
            }
            resolved.Append(value, index, start - index);
            var name = value[(start + 1)..end];
            resolved.Append(Lookup(configuration, name)
                            ?? throw new InvalidOperationException($"'%{name}%' does not resolve: the app setting '{name}' is not set."));
            index = end + 1;
        }
        return resolved.ToString();
    }

    /// <summary>Looks a setting up by its app-setting name, where <c>__</c> and <c>:</c> both separate sections.</summary>
    public static string? Lookup(IConfiguration configuration, string name)
        => configuration[name.Replace("__", ConfigurationPath.KeyDelimiter, StringComparison.Ordinal)];
}
