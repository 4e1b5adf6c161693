using Microsoft.Extensions.Configuration;

namespace Serverless.Functions.Standalone;

/// <summary>Resolves a binding's <c>connection</c> to a storage connection string, as the host does.</summary>
public static class StorageConnection
{
    public const string DefaultSetting = "AzureWebJobsStorage";

    /// <summary>
    /// <paramref name="connection"/> names an app setting (empty: <c>AzureWebJobsStorage</c>); its value, the
    /// setting <c>AzureWebJobs&lt;name&gt;</c>, or the connection string <c>&lt;name&gt;</c> is used, in that order.
    /// </summary>
    /// <exception cref="InvalidOperationException">No connection string is configured under that name.</exception>
    public static string Resolve(string? connection, IConfiguration configuration)
    {
        var name = string.IsNullOrWhiteSpace(connection) ? DefaultSetting : connection;
        var value = AppSettingResolver.Lookup(configuration, name)
                    ?? AppSettingResolver.Lookup(configuration, "AzureWebJobs" + name)
                    ?? configuration.GetConnectionString(name);
        if (!string.IsNullOrWhiteSpace(value)) return value;

        var identityBased = configuration.GetSection(name.Replace("__", ":", StringComparison.Ordinal))["queueServiceUri"] is not null;
        throw new InvalidOperationException(identityBased
            ? $"connection '{name}' is identity-based (queueServiceUri), which the standalone host does not support; set a connection string"
            : $"the storage connection setting '{name}' is not set (local.settings.json Values, environment or command line)");
    }

    /// <summary>Parses the connection string without any I/O, so a malformed one fails at startup rather than at the first poll.</summary>
    /// <exception cref="InvalidOperationException">The connection string cannot be parsed; the message does not repeat its secret.</exception>
    public static void Validate(string connectionString, string? connection)
    {
        try
        {
            _ = new Azure.Storage.Queues.QueueClient(connectionString, "validation");
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            var name = string.IsNullOrWhiteSpace(connection) ? DefaultSetting : connection;
            throw new InvalidOperationException($"the storage connection string in '{name}' is not valid: {e.Message}", e);
        }
    }
}
