using Azure.Data.Tables;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Storage;

[Collection(AzuriteCollection.Name)]
public sealed class AzuriteFixtureTests(AzuriteFixture azurite)
{
    private readonly string _prefix = TestNames.Unique(nameof(AzuriteFixtureTests));

    [Fact]
    public async Task An_entity_written_to_a_new_table_reads_back_with_its_etag()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var cancellationToken = timeout.Token;
        var table = azurite.CreateTableServiceClient().GetTableClient(_prefix + "Clusters");
        await table.CreateIfNotExistsAsync(cancellationToken);

        var written = await table.AddEntityAsync(
            new TableEntity("default", "cluster1") { ["Status"] = "ACTIVE" }, cancellationToken);
        var read = await table.GetEntityAsync<TableEntity>("default", "cluster1", cancellationToken: cancellationToken);

        Assert.Equal("ACTIVE", read.Value.GetString("Status"));
        Assert.Equal(written.Headers.ETag, read.Value.ETag);
    }

    [Fact]
    public async Task A_message_sent_to_a_new_queue_is_received_once()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var cancellationToken = timeout.Token;
        var queue = azurite.CreateQueueServiceClient().GetQueueClient(_prefix + "-reconcile");
        await queue.CreateIfNotExistsAsync(cancellationToken: cancellationToken);

        await queue.SendMessageAsync("""{"v":1,"cluster":"default"}""", cancellationToken);
        var received = await queue.ReceiveMessageAsync(cancellationToken: cancellationToken);
        await queue.DeleteMessageAsync(received.Value.MessageId, received.Value.PopReceipt, cancellationToken);

        Assert.Equal("""{"v":1,"cluster":"default"}""", received.Value.Body.ToString());
        Assert.Null((await queue.ReceiveMessageAsync(cancellationToken: cancellationToken)).Value);
    }

    [Fact]
    public void The_connection_string_names_this_server_not_the_default_ports()
    {
        Assert.Contains($"TableEndpoint={azurite.TableEndpoint}", azurite.ConnectionString);
        Assert.Contains($"QueueEndpoint={azurite.QueueEndpoint}", azurite.ConnectionString);
        Assert.DoesNotContain(":10002/", azurite.ConnectionString);
        Assert.True(File.Exists(azurite.LogPath));
    }

    [Theory]
    [InlineData("AzuriteFixtureTests")]
    [InlineData("9 lives & counting")]
    [InlineData("")]
    [InlineData("AVeryLongTestClassNameThatGoesOnAndOnAndOnForeverAndEverAndEverMore")]
    public void Unique_names_are_valid_tables_and_queues(string prefix)
    {
        var name = TestNames.Unique(prefix);

        Assert.Matches("^[a-z][a-z0-9]{2,21}$", name);
        Assert.NotEqual(name, TestNames.Unique(prefix));
    }
}
