using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core;
using Serverless.Core.LoadBalancing;
using Serverless.Core.Storage;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.LoadBalancing;

/// <summary>
/// A committed ELBv2 change or target change wakes every registered data plane (the same UDP wake the
/// workers take), skips registrations gone silent, and is not held up by an endpoint nobody listens on.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class DataPlaneWakeTests(AzuriteFixture azurite) : IDisposable
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(1);

    private readonly StorageClients _storage = new(azurite.ConnectionString, new EcsOptions { StoragePrefix = TestNames.Unique("lbwake") });
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly QueueWake _control = new(NullLogger<QueueWake>.Instance);
    private readonly QueueWake _planeA = new(NullLogger<QueueWake>.Instance);
    private readonly QueueWake _planeB = new(NullLogger<QueueWake>.Instance);

    public void Dispose()
    {
        _control.Dispose();
        _planeA.Dispose();
        _planeB.Dispose();
    }

    [Fact]
    public async Task A_commit_and_a_target_change_wake_both_data_planes_and_a_dead_endpoint_costs_nothing()
    {
        var store = new LoadBalancingStore(_storage, _control, _time);
        var a = Listen(_planeA);
        var b = Listen(_planeB);
        await store.RegisterDataPlaneAsync(a, CancellationToken.None);
        await store.RegisterDataPlaneAsync(b, CancellationToken.None);
        // A data plane that died without unregistering: its port is closed.
        await store.RegisterDataPlaneAsync($"127.0.0.1:{ClosedUdpPort()}", CancellationToken.None);

        await store.CommitAsync([new(Azure.Data.Tables.TableTransactionActionType.UpsertReplace, LoadBalancingStore.Reservation("port|1", "x"))], CancellationToken.None);
        Assert.True(await WokenAsync(_planeA));
        Assert.True(await WokenAsync(_planeB));

        await store.SaveTargetsAsync("tg1", [new TargetRow("tg1", "10.0.0.1", 80, null, _time.GetUtcNow(), null, null, null, null)], CancellationToken.None);
        Assert.True(await WokenAsync(_planeA));
        Assert.True(await WokenAsync(_planeB));
    }

    [Fact]
    public async Task A_registration_not_renewed_is_no_longer_woken_and_is_removed_by_the_next_registration()
    {
        var store = new LoadBalancingStore(_storage, _control, _time);
        var a = Listen(_planeA);
        var b = Listen(_planeB);
        await store.RegisterDataPlaneAsync(a, CancellationToken.None);
        _time.Advance(3 * LoadBalancingStore.RegistrationRenewal);
        await store.RegisterDataPlaneAsync(b, CancellationToken.None);

        await store.TouchAsync(CancellationToken.None);
        Assert.True(await WokenAsync(_planeB));
        Assert.False(await _planeA.Signal(LoadBalancingStore.WakeName).WaitAsync(TimeSpan.FromMilliseconds(300), TimeProvider.System, CancellationToken.None));

        var table = await _storage.TableAsync(LoadBalancingStore.TableName, CancellationToken.None);
        var rows = table.QueryAsync<Azure.Data.Tables.TableEntity>(e => e.PartitionKey == LoadBalancingStore.DataPlanePartition).Select(e => e.RowKey);
        Assert.Equal([b], await rows.ToListAsync());
    }

    [Fact]
    public async Task The_wake_registration_rows_are_not_part_of_the_configuration_a_data_plane_serves()
    {
        var store = new LoadBalancingStore(_storage, _control, _time);
        await store.RegisterDataPlaneAsync(Listen(_planeA), CancellationToken.None);
        Assert.Empty(await store.ListConfigAsync(CancellationToken.None));
    }

    // As the data plane does: the signal first (a wake for a name nobody waits on is dropped), then the socket.
    private static string Listen(QueueWake plane)
    {
        plane.Signal(LoadBalancingStore.WakeName);
        return plane.Listen(0, null)!;
    }

    // Woken within a minute; a missing wake fails the test rather than hanging it.
    private static Task<bool> WokenAsync(QueueWake plane)
        => plane.Signal(LoadBalancingStore.WakeName).WaitAsync(Long, TimeProvider.System, CancellationToken.None);

    private static int ClosedUdpPort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
