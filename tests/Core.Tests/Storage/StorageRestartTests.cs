using Azure.Data.Tables;
using Serverless.Core.Storage;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;

namespace Serverless.Core.Tests.Storage;

/// <summary>
/// The control plane's table and queue clients after the storage endpoint restarts or goes away for a
/// while: they work again afterwards, with no restart of the process that holds them. Its own Azurite,
/// since a restart empties it.
/// </summary>
public sealed class StorageRestartTests : IAsyncLifetime
{
    private readonly AzuriteFixture _azurite = new();
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromMinutes(2));
    private StorageClients _storage = null!;

    private CancellationToken CancellationToken => _timeout.Token;

    public async Task InitializeAsync()
    {
        await _azurite.InitializeAsync();
        _storage = new StorageClients(_azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique(nameof(StorageRestartTests)) });
    }

    public async Task DisposeAsync()
    {
        await _azurite.DisposeAsync();
        _timeout.Dispose();
    }

    [Fact]
    public async Task Tables_and_queues_work_again_after_the_storage_endpoint_restarts_empty()
    {
        var before = await _storage.TableAsync("Things", CancellationToken);
        await before.AddEntityAsync(new TableEntity("p", "before"), CancellationToken);
        await (await _storage.QueueAsync("things", CancellationToken)).SendMessageAsync("before", CancellationToken);

        await _azurite.RestartAsync();

        var table = await _storage.TableAsync("Things", CancellationToken);
        await table.AddEntityAsync(new TableEntity("p", "after"), CancellationToken);
        await table.SubmitTransactionAsync([new TableTransactionAction(TableTransactionActionType.UpsertReplace, new TableEntity("p", "batched"))], CancellationToken);
        var rows = new List<string>();
        await foreach (var row in table.QueryAsync<TableEntity>("PartitionKey eq 'p'", cancellationToken: CancellationToken)) rows.Add(row.RowKey);
        var queue = await _storage.QueueAsync("things", CancellationToken);
        await queue.SendMessageAsync("after", CancellationToken);
        var received = await queue.ReceiveMessageAsync(cancellationToken: CancellationToken);

        Assert.Equal(["after", "batched"], rows);
        Assert.Equal("after", received.Value.Body.ToString());
    }

    [Fact]
    public async Task A_batch_is_the_first_request_to_a_table_gone_with_a_restart()
    {
        var table = await _storage.TableAsync("Batched", CancellationToken);

        await _azurite.RestartAsync();

        await table.SubmitTransactionAsync([new TableTransactionAction(TableTransactionActionType.Add, new TableEntity("p", "first"))], CancellationToken);
        Assert.NotNull((await table.GetEntityIfExistsAsync<TableEntity>("p", "first", cancellationToken: CancellationToken)).Value);
    }

    [Fact]
    public async Task A_table_first_asked_for_while_storage_is_down_opens_once_it_is_back()
    {
        var down = _azurite.Faults.Inject(StorageFault.Down);
        await Assert.ThrowsAnyAsync<Exception>(() => _storage.TableAsync("Outage", CancellationToken));
        down.Dispose();

        var table = await _storage.TableAsync("Outage", CancellationToken);
        await table.AddEntityAsync(new TableEntity("p", "r"), CancellationToken);
    }

    [Fact]
    public async Task A_caller_that_gave_up_does_not_leave_the_table_unopenable_for_the_others()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _storage.TableAsync("GaveUp", cancelled.Token));
        var table = await _storage.TableAsync("GaveUp", CancellationToken);

        await table.AddEntityAsync(new TableEntity("p", "r"), CancellationToken);
    }
}
