using System.Collections.Concurrent;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Azure.Storage.Queues;
using Serverless.Core.Telemetry;

namespace Serverless.Core.Storage;

/// <summary>
/// The storage account (Azurite locally): every table and queue the control plane uses, created
/// the first time it is asked for. Tables are named with <see cref="EcsOptions.StoragePrefix"/>.
/// </summary>
/// <remarks>
/// The clients survive the storage endpoint restarting. Broken connections are the SDK's retry
/// policy's to ride out; a table or queue that is gone afterwards (an in-memory Azurite restarted
/// empty) is created again by <see cref="RecreateMissingPolicy"/> and the request sent once more,
/// so a cached "already created" never turns into "not found" for the life of the process. A failed
/// or cancelled creation is never cached.
/// </remarks>
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
        _tables = new TableServiceClient(connectionString, TableOptions());
        _queues = new QueueServiceClient(connectionString, QueueOptions());
    }

    /// <summary>
    /// The same account through Entra ID instead of a key (a worker host's managed identity): the
    /// service endpoints, e.g. <c>https://&lt;account&gt;.table.core.windows.net</c>, and the credential.
    /// </summary>
    public StorageClients(Uri tableServiceUri, Uri queueServiceUri, TokenCredential credential, EcsOptions options)
    {
        _prefix = options.StoragePrefix;
        _tables = new TableServiceClient(tableServiceUri, credential, TableOptions());
        _queues = new QueueServiceClient(queueServiceUri, credential, QueueOptions());
    }

    // Both ways in recreate a table or queue that a restarted, empty storage answers "not found" for.
    private TableClientOptions TableOptions()
    {
        var tableOptions = new TableClientOptions();
        tableOptions.AddPolicy(new RecreateMissingPolicy("TableNotFound", () => _tables!.AccountName, (name, ct) => _tables!.CreateTableIfNotExistsAsync(name, ct)), HttpPipelinePosition.PerCall);
        tableOptions.AddPolicy(StorageTelemetry.CallCounter("table"), HttpPipelinePosition.PerRetry);
        return tableOptions;
    }

    private QueueClientOptions QueueOptions()
    {
        var queueOptions = new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None };
        queueOptions.AddPolicy(new RecreateMissingPolicy("QueueNotFound", () => _queues!.AccountName, (name, ct) => _queues!.GetQueueClient(name).CreateIfNotExistsAsync(cancellationToken: ct)), HttpPipelinePosition.PerCall);
        queueOptions.AddPolicy(StorageTelemetry.CallCounter("queue"), HttpPipelinePosition.PerRetry);
        return queueOptions;
    }

    /// <summary>Table names are alphanumeric; the prefix keeps one test's tables apart from another's.</summary>
    public string TableName(string name) => _prefix + name;

    /// <summary>
    /// Queue names are used as they are: the Functions host binds queue triggers to fixed names
    /// (<c>task-events</c>, <c>reconcile</c>), so a prefix would separate senders from their triggers.
    /// </summary>
    public static string QueueName(string name) => name;

    public Task<TableClient> TableAsync(string name, CancellationToken cancellationToken)
        => OpenAsync(_tableCache, name, CreateTableAsync, cancellationToken);

    public Task<QueueClient> QueueAsync(string name, CancellationToken cancellationToken)
        => OpenAsync(_queueCache, name, CreateQueueAsync, cancellationToken);

    /// <summary>A queue client without the existence check, for queues someone else creates.</summary>
    public QueueClient Queue(string name) => _queues.GetQueueClient(QueueName(name));

    /// <summary>
    /// The client for <paramref name="name"/>, created once for all callers. The creation does not run
    /// on one caller's token (its cancellation must not fail the others); each caller waits on its own.
    /// A creation that failed is dropped, so the next caller tries again.
    /// </summary>
    private static async Task<T> OpenAsync<T>(
        ConcurrentDictionary<string, Task<T>> cache, string name, Func<string, Task<T>> create, CancellationToken cancellationToken)
    {
        var creating = cache.GetOrAdd(name, create);
        try
        {
            return await creating.WaitAsync(cancellationToken);
        }
        catch when (creating.IsFaulted || creating.IsCanceled)
        {
            cache.TryRemove(new KeyValuePair<string, Task<T>>(name, creating));
            throw;
        }
    }

    private async Task<TableClient> CreateTableAsync(string name)
    {
        await Task.Yield();
        var client = _tables.GetTableClient(TableName(name));
        try
        {
            await client.CreateIfNotExistsAsync(CancellationToken.None);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            // Another control plane created it between our check and our create: it exists.
        }
        return client;
    }

    private async Task<QueueClient> CreateQueueAsync(string name)
    {
        await Task.Yield();
        var client = Queue(name);
        await client.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None);
        return client;
    }

    /// <summary>
    /// Answers "table/queue not found" by creating it and sending the request once more. Such an answer
    /// comes after the storage endpoint restarted without its data; in Azure, where nothing deletes the
    /// control plane's tables and queues, it never fires. An entity-group transaction reports it inside
    /// its 202 answer, so that body is looked at too.
    /// </summary>
    private sealed class RecreateMissingPolicy(string notFoundCode, Func<string> accountName, Func<string, CancellationToken, Task> create) : HttpPipelinePolicy
    {
        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
            => ProcessAsync(message, pipeline, async: false).AsTask().GetAwaiter().GetResult();

        public override ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
            => ProcessAsync(message, pipeline, async: true);

        private async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline, bool async)
        {
            if (async) await ProcessNextAsync(message, pipeline); else ProcessNext(message, pipeline);
            if (!IsMissing(message) || ResourceName(message) is not { } name) return;
            await create(name, message.CancellationToken);
            if (async) await ProcessNextAsync(message, pipeline); else ProcessNext(message, pipeline);
        }

        private bool IsMissing(HttpMessage message)
        {
            var response = message.Response;
            if (response.Status == 404)
                return response.Headers.TryGetValue("x-ms-error-code", out var code) && code == notFoundCode;
            return response.Status == 202
                   && message.Request.Uri.Path.EndsWith("/$batch", StringComparison.Ordinal)
                   && response.Content?.ToString().Contains($"\"{notFoundCode}\"", StringComparison.Ordinal) == true;
        }

        /// <summary>
        /// The table or queue a request addressed: the first path segment, or the second when the first
        /// names the account (path-style, as Azurite's <c>/devstoreaccount1/...</c>), without an entity's
        /// key part; for a batch, the table its operations' URLs name.
        /// </summary>
        private string? ResourceName(HttpMessage message)
        {
            var path = Uri.UnescapeDataString(message.Request.Uri.Path);
            if (path.EndsWith("/$batch", StringComparison.Ordinal))
            {
                // Each operation starts "<METHOD> <absolute URL> HTTP/1.1".
                var body = message.Request.Content is { } content ? ContentText(content) : "";
                var marker = body.IndexOf(" HTTP/1.1", StringComparison.Ordinal);
                if (marker < 0) return null;
                var line = body[..marker];
                path = Uri.UnescapeDataString(new Uri(line[(line.LastIndexOf(' ') + 1)..]).AbsolutePath);
            }
            var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
            var segment = segments.Length > 1 && segments[0] == accountName() ? segments[1] : segments.FirstOrDefault();
            if (segment is null) return null;
            var paren = segment.IndexOf('(');
            return paren >= 0 ? segment[..paren] : segment;
        }

        private static string ContentText(RequestContent content)
        {
            using var buffer = new MemoryStream();
            content.WriteTo(buffer, CancellationToken.None);
            return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
        }
    }
}
