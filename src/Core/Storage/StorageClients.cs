using System.Collections.Concurrent;
using Azure;
using Azure.Core;
using Azure.Data.Tables;
using Azure.Storage.Queues;

namespace Serverless.Core.Storage;

/// <summary>
/// The storage account (Azurite locally): every table and queue the control plane uses, created
/// the first time it is asked for. Tables are named with <see cref="EcsOptions.StoragePrefix"/>.
/// </summary>
public sealed class StorageClients
{
    private readonly TableServiceClient _tables;
    private readonly QueueServiceClient _queues;
    private readonly string _prefix;
    private readonly ConcurrentDictionary<string, Task<TableClient>> _tableCache = new();
    private readonly ConcurrentDictionary<string, Task<QueueClient>> _queueCache = new();

    public StorageClients(string connectionString, EcsOptions options)
    {
        _prefix = options.StoragePrefix;
        _tables = new TableServiceClient(connectionString);
        _queues = new QueueServiceClient(connectionString, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None });
    }

    /// <summary>
    /// The same account through Entra ID instead of a key (a worker host's managed identity): the
    /// service endpoints, e.g. <c>https://&lt;account&gt;.table.core.windows.net</c>, and the credential.
    /// </summary>
    public StorageClients(Uri tableServiceUri, Uri queueServiceUri, TokenCredential credential, EcsOptions options)
    {
        _prefix = options.StoragePrefix;
        _tables = new TableServiceClient(tableServiceUri, credential);
        _queues = new QueueServiceClient(queueServiceUri, credential, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None });
    }

    /// <summary>Table names are alphanumeric; the prefix keeps one test's tables apart from another's.</summary>
    public string TableName(string name) => _prefix + name;

    /// <summary>
    /// Queue names are used as they are: the Functions host binds queue triggers to fixed names
    /// (<c>task-events</c>, <c>reconcile</c>), so a prefix would separate senders from their triggers.
    /// </summary>
    public static string QueueName(string name) => name;

    public Task<TableClient> TableAsync(string name, CancellationToken cancellationToken)
        => _tableCache.GetOrAdd(name, n => CreateTableAsync(n, cancellationToken));

    public Task<QueueClient> QueueAsync(string name, CancellationToken cancellationToken)
        => _queueCache.GetOrAdd(name, n => CreateQueueAsync(n, cancellationToken));

    /// <summary>A queue client without the existence check, for queues someone else creates.</summary>
    public QueueClient Queue(string name) => _queues.GetQueueClient(QueueName(name));

    private async Task<TableClient> CreateTableAsync(string name, CancellationToken cancellationToken)
    {
        var client = _tables.GetTableClient(TableName(name));
        try
        {
            await client.CreateIfNotExistsAsync(cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            // Another control plane created it between our check and our create: it exists.
        }
        catch
        {
            _tableCache.TryRemove(name, out _);
            throw;
        }
        return client;
    }

    private async Task<QueueClient> CreateQueueAsync(string name, CancellationToken cancellationToken)
    {
        var client = Queue(name);
        try
        {
            await client.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        }
        catch
        {
            _queueCache.TryRemove(name, out _);
            throw;
        }
        return client;
    }
}
