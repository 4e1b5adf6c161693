using Azure.Core;
using Azure.Identity;
using Microsoft.Extensions.Configuration;

namespace Serverless.Core.Storage;

/// <summary>
/// How the control plane and the worker reach the storage account, read the way the Functions host
/// reads a connection named <c>AzureWebJobsStorage</c>: either a connection string
/// (<c>AzureWebJobsStorage</c>; Azurite locally), or an identity-based connection, so a process in
/// Azure needs no account key:
/// <c>AzureWebJobsStorage__tableServiceUri</c> and <c>AzureWebJobsStorage__queueServiceUri</c> (or
/// <c>AzureWebJobsStorage__accountName</c> for the public cloud's endpoints), with
/// <c>AzureWebJobsStorage__credential=managedidentity</c> and, for a user-assigned identity,
/// <c>AzureWebJobsStorage__clientId</c>. Without <c>credential</c> the developer's own sign-in is
/// used (<see cref="DefaultAzureCredential"/>: environment, workload identity, managed identity, Azure CLI...).
/// </summary>
public sealed record StorageAccess(string? ConnectionString, Uri? TableServiceUri, Uri? QueueServiceUri, bool ManagedIdentity, string? ClientId)
{
    public const string Setting = "AzureWebJobsStorage";

    /// <summary>The connection in <paramref name="configuration"/>; the local Azurite when none is set.</summary>
    public static StorageAccess From(IConfiguration configuration)
    {
        if (configuration[Setting] is { Length: > 0 } connectionString) return new(connectionString, null, null, false, null);

        var section = configuration.GetSection(Setting);
        var account = section["accountName"];
        var tables = Endpoint(section["tableServiceUri"], account, "table");
        var queues = Endpoint(section["queueServiceUri"], account, "queue");
        if (tables is null && queues is null) return new("UseDevelopmentStorage=true", null, null, false, null);
        if (tables is null || queues is null)
        {
            throw new InvalidOperationException(
                $"{Setting}: an identity-based connection needs both tableServiceUri and queueServiceUri (or accountName); " +
                $"got only the {(tables is null ? "queue" : "table")} endpoint.");
        }

        var credential = section["credential"];
        if (credential is { Length: > 0 } && !credential.Equals("managedidentity", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"{Setting}__credential '{credential}' is not supported; use 'managedidentity' or leave it unset.");
        var clientId = section["clientId"] is { Length: > 0 } id ? id : null;
        return new(null, tables, queues, credential is { Length: > 0 }, clientId);
    }

    /// <summary>The clients for this connection.</summary>
    public StorageClients CreateClients(EcsOptions ecs)
        => ConnectionString is not null
            ? new StorageClients(ConnectionString, ecs)
            : new StorageClients(TableServiceUri!, QueueServiceUri!, Credential(), ecs);

    /// <summary>
    /// A managed identity (a worker host's, user-assigned when <see cref="ClientId"/> is set), or the
    /// default chain, which also finds a managed identity after the developer's own sign-ins.
    /// </summary>
    public TokenCredential Credential()
        => ManagedIdentity
            ? new ManagedIdentityCredential(ClientId is null ? ManagedIdentityId.SystemAssigned : ManagedIdentityId.FromUserAssignedClientId(ClientId))
            : new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = ClientId });

    private static Uri? Endpoint(string? uri, string? account, string service)
        => uri is { Length: > 0 }
            ? new Uri(uri)
            : account is { Length: > 0 } ? new Uri($"https://{account}.{service}.core.windows.net") : null;
}
