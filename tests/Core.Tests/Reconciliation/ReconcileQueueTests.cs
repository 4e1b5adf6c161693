using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Storage;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>
/// The reconcile queue's delayed looks, on a private Azurite (the <c>reconcile</c> queue is not
/// prefixed, so only a server of its own lets a test count what is on it).
/// </summary>
public sealed class ReconcileQueueTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private async Task<int> MessagesAsync(StorageClients storage)
        => (await (await storage.QueueAsync(ReconcileQueue.QueueName, _token)).GetPropertiesAsync(_token)).Value.ApproximateMessagesCount;

    [Fact]
    public async Task A_delayed_look_that_an_earlier_pending_one_covers_is_not_enqueued_again()
    {
        var storage = new StorageClients(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("rq") });
        using var wake = new QueueWake(NullLogger<QueueWake>.Instance);
        var queue = new ReconcileQueue(storage, wake, _time);
        var web = new ServiceKey("c1", "web");
        var api = new ServiceKey("c1", "api");
        var before = await MessagesAsync(storage);

        // A rollout's reconciles each ask to look again at a starting task's deadline: the first is enqueued, the rest are covered.
        await queue.EnqueueAsync(web, TimeSpan.FromMinutes(5), _token);
        _time.Advance(TimeSpan.FromSeconds(2));
        await queue.EnqueueAsync(web, TimeSpan.FromMinutes(5), _token);
        await queue.EnqueueAsync(web, TimeSpan.FromMinutes(10), _token);
        Assert.Equal(before + 1, await MessagesAsync(storage));

        // An earlier look is enqueued (the pending one would come too late), and from then on covers the later ones.
        await queue.EnqueueAsync(web, TimeSpan.FromSeconds(20), _token);
        await queue.EnqueueAsync(web, TimeSpan.FromSeconds(30), _token);
        Assert.Equal(before + 2, await MessagesAsync(storage));

        // Another service's look, and a look wanted now, are never covered.
        await queue.EnqueueAsync(api, TimeSpan.FromMinutes(5), _token);
        await queue.EnqueueAsync(web, null, _token);
        await queue.EnqueueAsync(web, TimeSpan.Zero, _token);
        Assert.Equal(before + 5, await MessagesAsync(storage));

        // Within a second of its due time the pending look may already be running (on the server's clock): not relied on.
        _time.Advance(TimeSpan.FromSeconds(19.5));
        await queue.EnqueueAsync(web, TimeSpan.FromMinutes(5), _token);
        Assert.Equal(before + 6, await MessagesAsync(storage));

        // Another control plane knows nothing of this one's pending looks.
        var other = new ReconcileQueue(storage, wake, _time);
        await other.EnqueueAsync(web, TimeSpan.FromMinutes(6), _token);
        Assert.Equal(before + 7, await MessagesAsync(storage));
    }
}
