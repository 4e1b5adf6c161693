using Azure;
using Azure.Data.Tables;
using Azure.Storage.Queues;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;

namespace Serverless.Core.Tests.Storage;

/// <summary>The storage proxy's fault injection: throttling, timeouts, slowness and outages, bounded and scoped.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class StorageFaultTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly string _prefix = TestNames.Unique(nameof(StorageFaultTests));
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));
    private TableClient _table = null!;
    private QueueClient _queue = null!;

    private CancellationToken CancellationToken => _timeout.Token;

    public async Task InitializeAsync()
    {
        // No retries: each call is one request, so a test sees exactly what the proxy answered.
        _table = new TableClient(azurite.ConnectionString, _prefix + "Faults", new TableClientOptions { Retry = { MaxRetries = 0 } });
        _queue = new QueueClient(azurite.ConnectionString, _prefix + "-faults", new QueueClientOptions { Retry = { MaxRetries = 0 } });
        await _table.CreateIfNotExistsAsync(CancellationToken);
        await _queue.CreateIfNotExistsAsync(cancellationToken: CancellationToken);
    }

    public Task DisposeAsync()
    {
        azurite.Faults.Clear();
        _timeout.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Throttling_answers_503_ServerBusy_for_as_many_requests_as_asked()
    {
        using var fault = azurite.Faults.Inject(StorageFault.ServerBusy, StorageService.Table, requests: 2);

        var first = await Assert.ThrowsAsync<RequestFailedException>(() => _table.UpsertEntityAsync(new TableEntity("p", "1"), cancellationToken: CancellationToken));
        var second = await Assert.ThrowsAsync<RequestFailedException>(() => _table.UpsertEntityAsync(new TableEntity("p", "1"), cancellationToken: CancellationToken));
        await _table.UpsertEntityAsync(new TableEntity("p", "1"), cancellationToken: CancellationToken);

        Assert.Equal((503, "ServerBusy"), (first.Status, first.ErrorCode));
        Assert.Equal((503, "ServerBusy"), (second.Status, second.ErrorCode));
        Assert.Equal(2, fault.Hits);
    }

    [Fact]
    public async Task Throttling_a_queue_answers_in_the_queue_service_format()
    {
        using var fault = azurite.Faults.Inject(StorageFault.ServerBusy, StorageService.Queue, requests: 1);

        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _queue.SendMessageAsync("m", CancellationToken));

        Assert.Equal((503, "ServerBusy"), (refused.Status, refused.ErrorCode));
    }

    [Fact]
    public async Task A_timeout_answers_500_OperationTimedOut()
    {
        using var fault = azurite.Faults.Inject(StorageFault.OperationTimedOut, requests: 1);

        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _queue.SendMessageAsync("m", CancellationToken));

        Assert.Equal((500, "OperationTimedOut"), (refused.Status, refused.ErrorCode));
    }

    [Fact]
    public async Task The_SDKs_retries_ride_out_a_short_throttle()
    {
        var retrying = new TableClient(azurite.ConnectionString, _prefix + "Faults",
            new TableClientOptions { Retry = { MaxRetries = 3, Delay = TimeSpan.FromMilliseconds(10) } });
        using var fault = azurite.Faults.Inject(StorageFault.ServerBusy, requests: 2);

        await retrying.UpsertEntityAsync(new TableEntity("p", "retried"), cancellationToken: CancellationToken);

        Assert.Equal(2, fault.Hits);
    }

    [Fact]
    public async Task A_fault_for_one_table_leaves_the_others_alone()
    {
        var other = new TableClient(azurite.ConnectionString, _prefix + "Other", new TableClientOptions { Retry = { MaxRetries = 0 } });
        await other.CreateIfNotExistsAsync(CancellationToken);
        using var fault = azurite.Faults.Inject(StorageFault.ServerBusy, resource: _prefix + "Faults");

        await other.UpsertEntityAsync(new TableEntity("p", "1"), cancellationToken: CancellationToken);
        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _table.UpsertEntityAsync(new TableEntity("p", "1"), cancellationToken: CancellationToken));

        Assert.Equal("ServerBusy", refused.ErrorCode);
        Assert.Equal(1, fault.Hits);
    }

    [Fact]
    public async Task A_fault_ends_when_its_duration_is_over()
    {
        using var fault = azurite.Faults.Inject(StorageFault.ServerBusy, StorageService.Queue, duration: TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAsync<RequestFailedException>(() => _queue.SendMessageAsync("m", CancellationToken));
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                await _queue.SendMessageAsync("m", CancellationToken);
                break;
            }
            catch (RequestFailedException e) when (e.Status == 503 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, CancellationToken);
            }
        }
    }

    [Fact]
    public async Task A_slow_service_outlasts_a_client_timeout()
    {
        var impatient = new QueueClient(azurite.ConnectionString, _prefix + "-faults",
            new QueueClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromMilliseconds(200) } });
        using var fault = azurite.Faults.Inject(StorageFault.Slow(TimeSpan.FromSeconds(10)), StorageService.Queue, requests: 1);

        await Assert.ThrowsAnyAsync<Exception>(() => impatient.SendMessageAsync("slow", CancellationToken));
        await impatient.SendMessageAsync("fast", CancellationToken);

        Assert.Equal(1, fault.Hits);
    }

    [Fact]
    public async Task A_service_that_is_down_refuses_connections_until_it_is_back()
    {
        var fault = azurite.Faults.Inject(StorageFault.Down, StorageService.Table);

        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _table.UpsertEntityAsync(new TableEntity("p", "down"), cancellationToken: CancellationToken));
        await _queue.SendMessageAsync("queues are up", CancellationToken);
        fault.Dispose();
        await _table.UpsertEntityAsync(new TableEntity("p", "up"), cancellationToken: CancellationToken);

        Assert.Equal(0, refused.Status);
        Assert.True(fault.Hits >= 1);
    }
}
