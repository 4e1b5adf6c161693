using System.Text;
using Azure.Data.Tables;
using Azure.Storage.Queues;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;

namespace Serverless.Core.Tests.Storage;

/// <summary>The storage proxy sees a watched value however it is written: a string, a binary property, a base64 queue message.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class PlaintextWatchTests(AzuriteFixture azurite)
{
    private readonly string _prefix = TestNames.Unique(nameof(PlaintextWatchTests));

    [Fact]
    public async Task A_watched_value_is_seen_in_a_string_a_binary_property_and_a_base64_message_and_its_ciphertext_is_not()
    {
        string[] values = [.. Enumerable.Range(0, 4).Select(_ => "s3cr3t-" + Guid.NewGuid().ToString("N"))];
        foreach (var value in values) PlaintextWatch.Watch(value);
        var table = new TableClient(azurite.ConnectionString, _prefix + "Watch");
        await table.CreateIfNotExistsAsync();
        var queue = new QueueClient(azurite.ConnectionString, (_prefix + "watch").ToLowerInvariant(), new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 });
        await queue.CreateIfNotExistsAsync();

        await table.AddEntityAsync(new TableEntity("p", "1") { ["Text"] = $"before {values[0]} after" });
        // One and two bytes ahead of the value: the other two base64 alignments.
        await table.AddEntityAsync(new TableEntity("p", "2") { ["Blob"] = Encoding.UTF8.GetBytes("x" + values[1]) });
        await queue.SendMessageAsync("xy" + values[2]);
        await table.AddEntityAsync(new TableEntity("p", "3") { ["Blob"] = Encoding.UTF8.GetBytes(new string(values[3].Reverse().ToArray())) });

        Assert.Contains(PlaintextWatch.SightingsOf(values[0]), s => s.StartsWith("Table POST", StringComparison.Ordinal));
        Assert.Contains(PlaintextWatch.SightingsOf(values[1]), s => s.StartsWith("Table POST", StringComparison.Ordinal));
        Assert.Contains(PlaintextWatch.SightingsOf(values[2]), s => s.StartsWith("Queue POST", StringComparison.Ordinal));
        Assert.Empty(PlaintextWatch.SightingsOf(values[3]));
    }
}
