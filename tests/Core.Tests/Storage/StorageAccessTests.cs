using Azure.Identity;
using Microsoft.Extensions.Configuration;
using Serverless.Core.Storage;

namespace Serverless.Core.Tests.Storage;

/// <summary>The storage connection: a key locally, a managed identity in Azure.</summary>
public sealed class StorageAccessTests
{
    private static StorageAccess Read(params (string Key, string Value)[] settings)
        => StorageAccess.From(new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)))
            .Build());

    [Fact]
    public void A_connection_string_is_used_as_it_is()
    {
        var storage = Read(("AzureWebJobsStorage", "UseDevelopmentStorage=true;"));
        Assert.Equal(new StorageAccess("UseDevelopmentStorage=true;", null, null, false, null), storage);
    }

    [Fact]
    public void Without_any_setting_the_local_Azurite_is_used()
        => Assert.Equal("UseDevelopmentStorage=true", Read().ConnectionString);

    [Fact]
    public void Service_uris_with_a_user_assigned_managed_identity_make_an_identity_based_connection()
    {
        var storage = Read(
            ("AzureWebJobsStorage:tableServiceUri", "https://acct.table.core.windows.net"),
            ("AzureWebJobsStorage:queueServiceUri", "https://acct.queue.core.windows.net"),
            ("AzureWebJobsStorage:credential", "managedidentity"),
            ("AzureWebJobsStorage:clientId", "00000000-0000-0000-0000-000000000001"));

        Assert.Null(storage.ConnectionString);
        Assert.Equal(new Uri("https://acct.table.core.windows.net"), storage.TableServiceUri);
        Assert.Equal(new Uri("https://acct.queue.core.windows.net"), storage.QueueServiceUri);
        Assert.IsType<ManagedIdentityCredential>(storage.Credential());
        Assert.Equal("00000000-0000-0000-0000-000000000001", storage.ClientId);
    }

    [Fact]
    public void An_account_name_alone_means_the_public_cloud_endpoints_and_the_default_credential_chain()
    {
        var storage = Read(("AzureWebJobsStorage:accountName", "acct"));

        Assert.Equal(new Uri("https://acct.table.core.windows.net"), storage.TableServiceUri);
        Assert.Equal(new Uri("https://acct.queue.core.windows.net"), storage.QueueServiceUri);
        Assert.IsType<DefaultAzureCredential>(storage.Credential());
    }

    [Fact]
    public void A_connection_string_wins_over_identity_settings()
    {
        var storage = Read(("AzureWebJobsStorage", "UseDevelopmentStorage=true"), ("AzureWebJobsStorage:accountName", "acct"));
        Assert.Null(storage.TableServiceUri);
    }

    [Fact]
    public void The_identity_based_clients_address_the_configured_account_without_a_key()
    {
        var storage = Read(
            ("AzureWebJobsStorage:tableServiceUri", "https://acct.table.core.windows.net"),
            ("AzureWebJobsStorage:queueServiceUri", "https://acct.queue.core.windows.net"),
            ("AzureWebJobsStorage:credential", "managedidentity"));

        var queue = storage.CreateClients(new EcsOptions()).Queue("task-events");

        Assert.Equal(new Uri("https://acct.queue.core.windows.net/task-events"), queue.Uri);
        Assert.False(queue.CanGenerateSasUri); // no account key anywhere in it
    }

    [Theory]
    [InlineData("AzureWebJobsStorage:tableServiceUri", "https://acct.table.core.windows.net", null, null)]
    [InlineData("AzureWebJobsStorage:accountName", "acct", "AzureWebJobsStorage:credential", "clientsecret")]
    public void An_incomplete_or_unsupported_identity_connection_is_refused_at_start(string key, string value, string? key2, string? value2)
    {
        var settings = key2 is null ? new[] { (key, value) } : [(key, value), (key2, value2!)];
        Assert.Throws<InvalidOperationException>(() => Read(settings));
    }
}
