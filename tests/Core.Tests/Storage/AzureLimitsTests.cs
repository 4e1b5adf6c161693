using Azure;
using Azure.Data.Tables;
using Azure.Storage.Queues;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Storage;

/// <summary>
/// Each of Azure's limits that Azurite does not enforce is enforced by the fixture's storage proxy,
/// with the answer Azure gives, and the largest request Azure accepts still passes.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzureLimitsTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly string _prefix = TestNames.Unique(nameof(AzureLimitsTests));
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(60));
    private TableClient _table = null!;

    private CancellationToken CancellationToken => _timeout.Token;

    public async Task InitializeAsync()
    {
        _table = new TableClient(azurite.ConnectionString, _prefix + "Limits", new TableClientOptions { Retry = { MaxRetries = 0 } });
        await _table.CreateIfNotExistsAsync(CancellationToken);
    }

    public Task DisposeAsync()
    {
        _timeout.Dispose();
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_filter_with_more_than_15_comparisons_is_refused()
    {
        static string Filter(int comparisons)
            => "PartitionKey eq 'p' and (" + string.Join(" or ", Enumerable.Range(1, comparisons - 1).Select(i => $"RowKey eq 'r{i}'")) + ")";

        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => QueryAsync(Filter(16)));
        await QueryAsync(Filter(15));

        Assert.Equal(501, refused.Status);
        Assert.Equal("NotImplemented", refused.ErrorCode);
    }

    [Fact]
    public async Task Comparisons_inside_string_literals_do_not_count()
    {
        var filter = "PartitionKey eq 'p' and RowKey eq '" + string.Join(" ", Enumerable.Repeat("eq ne gt ge lt le", 5)) + "'";

        await QueryAsync(filter);
    }

    [Fact]
    public async Task A_batch_of_more_than_100_operations_is_refused_at_its_101st()
    {
        var refused = await Assert.ThrowsAsync<TableTransactionFailedException>(() => _table.SubmitTransactionAsync(Inserts("p", 101), CancellationToken));
        await _table.SubmitTransactionAsync(Inserts("q", 100), CancellationToken);

        Assert.Equal(400, refused.Status);
        Assert.Equal("InvalidInput", refused.ErrorCode);
        Assert.Equal(99, refused.FailedTransactionActionIndex);
    }

    [Fact]
    public async Task A_batch_over_4_MiB_is_refused()
    {
        // 100 entities of two 30,000-character strings: each well under 1 MiB, together about 6 MB of JSON.
        var big = Enumerable.Range(0, 100).Select(i => new TableTransactionAction(TableTransactionActionType.Add,
            new TableEntity("p", $"r{i:D3}") { ["A"] = new string('a', 30_000), ["B"] = new string('b', 30_000) }));

        var refused = await Assert.ThrowsAnyAsync<RequestFailedException>(() => _table.SubmitTransactionAsync(big, CancellationToken));

        Assert.Equal(413, refused.Status);
        Assert.Equal("RequestBodyTooLarge", refused.ErrorCode);
    }

    [Fact]
    public async Task A_batch_spanning_two_partitions_is_refused()
    {
        var refused = await Assert.ThrowsAsync<TableTransactionFailedException>(() => _table.SubmitTransactionAsync(
            [Insert("p1", "r"), Insert("p2", "r")], CancellationToken));

        Assert.Equal(400, refused.Status);
        Assert.Equal("CommandsInBatchActOnDifferentPartitions", refused.ErrorCode);
        Assert.Equal(1, refused.FailedTransactionActionIndex);
    }

    [Fact]
    public async Task A_batch_touching_one_entity_twice_is_refused()
    {
        var refused = await Assert.ThrowsAsync<TableTransactionFailedException>(() => _table.SubmitTransactionAsync(
            [Insert("p", "a"), new TableTransactionAction(TableTransactionActionType.UpsertMerge, new TableEntity("p", "a") { ["X"] = 1 })],
            CancellationToken));

        Assert.Equal(400, refused.Status);
        Assert.Equal("InvalidDuplicateRow", refused.ErrorCode);
        Assert.Equal(1, refused.FailedTransactionActionIndex);
    }

    [Fact]
    public async Task An_entity_over_1_MiB_is_refused()
    {
        // 20 strings of 30,000 characters: 1.2 MB as UTF-16, which is how Azure counts them.
        var entity = new TableEntity("p", "big");
        for (var i = 0; i < 20; i++) entity[$"P{i}"] = new string('x', 30_000);

        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _table.AddEntityAsync(entity, CancellationToken));

        Assert.Equal(400, refused.Status);
        Assert.Equal("EntityTooLarge", refused.ErrorCode);
    }

    [Fact]
    public async Task An_entity_with_more_than_255_properties_is_refused()
    {
        static TableEntity WithProperties(string rowKey, int custom)
        {
            var entity = new TableEntity("p", rowKey);
            for (var i = 0; i < custom; i++) entity[$"P{i}"] = i;
            return entity;
        }

        // PartitionKey, RowKey and Timestamp count: 252 of one's own at most.
        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _table.AddEntityAsync(WithProperties("many", 253), CancellationToken));
        await _table.AddEntityAsync(WithProperties("most", 252), CancellationToken);

        Assert.Equal(400, refused.Status);
        Assert.Equal("TooManyProperties", refused.ErrorCode);
    }

    [Fact]
    public async Task A_string_property_over_64_KiB_is_refused()
    {
        // UTF-16: 32,768 characters are 64 KiB.
        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _table.AddEntityAsync(
            new TableEntity("p", "long") { ["S"] = new string('s', 32_769) }, CancellationToken));
        await _table.AddEntityAsync(new TableEntity("p", "longest") { ["S"] = new string('s', 32_768) }, CancellationToken);

        Assert.Equal(400, refused.Status);
        Assert.Equal("PropertyValueTooLarge", refused.ErrorCode);
    }

    [Fact]
    public async Task A_binary_property_over_64_KiB_is_refused()
    {
        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _table.UpsertEntityAsync(
            new TableEntity("p", "bytes") { ["B"] = new byte[65_537] }, TableUpdateMode.Replace, CancellationToken));
        await _table.UpsertEntityAsync(new TableEntity("p", "bytes") { ["B"] = new byte[65_536] }, TableUpdateMode.Replace, CancellationToken);

        Assert.Equal(400, refused.Status);
        Assert.Equal("PropertyValueTooLarge", refused.ErrorCode);
    }

    [Fact]
    public async Task A_key_over_1_KiB_is_refused()
    {
        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => _table.AddEntityAsync(new TableEntity(new string('k', 1025), "r"), CancellationToken));
        await _table.AddEntityAsync(new TableEntity(new string('k', 512), "r"), CancellationToken);

        Assert.Equal(400, refused.Status);
        Assert.Equal("PropertyValueTooLarge", refused.ErrorCode);
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("a\\b")]
    [InlineData("a#b")]
    [InlineData("a?b")]
    [InlineData("a\tb")]
    [InlineData("a\u007fb")]
    public async Task A_key_with_a_character_Azure_forbids_is_refused(string key)
    {
        var asPartition = await Assert.ThrowsAsync<RequestFailedException>(() => _table.AddEntityAsync(new TableEntity(key, "r"), CancellationToken));
        var asRow = await Assert.ThrowsAsync<RequestFailedException>(() => _table.UpsertEntityAsync(new TableEntity("p", key), TableUpdateMode.Merge, CancellationToken));

        Assert.Equal(("OutOfRangeInput", "OutOfRangeInput"), (asPartition.ErrorCode, asRow.ErrorCode));
        Assert.Equal(400, asRow.Status);
    }

    [Fact]
    public async Task An_entity_refused_inside_a_batch_is_named_by_its_index()
    {
        var refused = await Assert.ThrowsAsync<TableTransactionFailedException>(() => _table.SubmitTransactionAsync(
            [Insert("p", "ok1"), Insert("p", "ok2"), new TableTransactionAction(TableTransactionActionType.Add, new TableEntity("p", "bad") { ["S"] = new string('s', 40_000) })],
            CancellationToken));

        Assert.Equal("PropertyValueTooLarge", refused.ErrorCode);
        Assert.Equal(2, refused.FailedTransactionActionIndex);
    }

    [Fact]
    public async Task A_queue_message_over_64_KiB_is_refused()
    {
        var queue = azurite.CreateQueueServiceClient().GetQueueClient(_prefix + "-plain");
        await queue.CreateIfNotExistsAsync(cancellationToken: CancellationToken);

        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => queue.SendMessageAsync(new string('m', 65_537), CancellationToken));
        await queue.SendMessageAsync(new string('m', 65_536), CancellationToken);

        Assert.Equal(413, refused.Status);
        Assert.Equal("RequestBodyTooLarge", refused.ErrorCode);
    }

    [Fact]
    public async Task A_base64_queue_message_counts_its_encoded_size()
    {
        // The SDK's Base64 encoding makes 3 bytes 4: 49,200 bytes become 65,600, over the limit.
        var queue = new QueueClient(azurite.ConnectionString, _prefix + "-base64", new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 });
        await queue.CreateIfNotExistsAsync(cancellationToken: CancellationToken);

        var refused = await Assert.ThrowsAsync<RequestFailedException>(() => queue.SendMessageAsync(BinaryData.FromBytes(new byte[49_200]), cancellationToken: CancellationToken));
        await queue.SendMessageAsync(BinaryData.FromBytes(new byte[49_152]), cancellationToken: CancellationToken);

        Assert.Equal("RequestBodyTooLarge", refused.ErrorCode);
    }

    [Fact]
    public async Task Azurite_itself_accepts_a_filter_the_proxy_refuses()
    {
        // The reason for the proxy: without it this passes, and code relying on it would break on Azure.
        var direct = new TableClient(azurite.DirectConnectionString, _prefix + "Limits");
        await foreach (var _ in direct.QueryAsync<TableEntity>(
                           string.Join(" or ", Enumerable.Range(0, 20).Select(i => $"RowKey eq 'r{i}'")), cancellationToken: CancellationToken))
        {
        }
    }

    private async Task QueryAsync(string filter)
    {
        await foreach (var _ in _table.QueryAsync<TableEntity>(filter, cancellationToken: CancellationToken))
        {
        }
    }

    private static TableTransactionAction Insert(string partitionKey, string rowKey)
        => new(TableTransactionActionType.Add, new TableEntity(partitionKey, rowKey));

    private static IEnumerable<TableTransactionAction> Inserts(string partitionKey, int count)
        => Enumerable.Range(0, count).Select(i => Insert(partitionKey, $"r{i:D3}"));
}
