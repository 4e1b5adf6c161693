using Serverless.Core.Reconciliation;
using Serverless.Core.Tasks;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>
/// The service lease with two control planes on real Azurite and one fake clock: the first
/// reconcile is interrupted right after it placed a task (its launcher's log line), and the clock
/// or the second reconciler acts there.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class ServiceLeaseTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly ReconcilerTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public async Task InitializeAsync()
    {
        await _tables.InitializeAsync(_token);
        await _tables.RegisterInstanceAsync(_token);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task CreateServiceAsync(int desiredCount)
    {
        await _tables.Api.CallAsync("CreateService",
            $$"""{"cluster":"{{_tables.Cluster}}","serviceName":"web","taskDefinition":"web","desiredCount":{{desiredCount}}}""", _token);
        await _tables.Api.ReconcilesAsync(_token);
    }

    /// <summary>Runs <paramref name="reconciler"/> from inside another reconcile's log call, off its thread.</summary>
    private ReconcileResult Interleave(ServiceReconciler reconciler)
        => Task.Run(() => reconciler.ReconcileAsync(new(_tables.Cluster, "web"), _token)).GetAwaiter().GetResult();

    [Fact]
    public async Task A_reconcile_whose_lease_expired_and_was_taken_mid_work_places_nothing_more_and_leaves_the_new_holders_record()
    {
        // 25 tasks: three launches of at most ten, each placed in one round and preceded by a lease check.
        await CreateServiceAsync(desiredCount: 25);
        var second = _tables.NewReconciler();
        ReconcileResult? secondResult = null;
        var fired = 0;
        var first = _tables.NewReconciler(new OnEachPlacement<TaskLauncher>(() =>
        {
            if (Interlocked.Exchange(ref fired, 1) == 1) return;
            // After its first ten, the first reconcile stalls past its lease; a second control plane takes the service and converges it.
            _tables.Api.Time.Advance(ServiceLease.DefaultDuration + TimeSpan.FromSeconds(1));
            secondResult = Interleave(second);
        }));

        var result = await first.ReconcileAsync(new(_tables.Cluster, "web"), _token);

        Assert.Equal(25, (await _tables.ServiceTasksAsync("web", _token)).Count);
        Assert.NotNull(secondResult);
        Assert.Equal(TimeSpan.FromMilliseconds(200), result.RequeueAfter);
        var service = await _tables.Api.Services.FindAsync(_tables.Cluster, "web", _token);
        Assert.Null(service!.LeaseOwner);
        // Both reconciles' starts are recorded: the first's ten tasks, the second's fifteen.
        Assert.Contains(service.Events, e => e.Message.StartsWith("(service web) has started 10 tasks", StringComparison.Ordinal));
        Assert.Contains(service.Events, e => e.Message.StartsWith("(service web) has started 15 tasks", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_reconcile_that_works_longer_than_its_lease_renews_it_so_no_other_control_plane_acts_meanwhile()
    {
        await CreateServiceAsync(desiredCount: 25);
        var second = _tables.NewReconciler();
        var secondResults = new List<ReconcileResult>();
        var placed = 0;
        var first = _tables.NewReconciler(new OnEachPlacement<TaskLauncher>(() =>
        {
            // Each launch of ten (one round of placement) takes two thirds of a lease: three of them outlast one lease by far.
            if (placed++ % 10 != 0) return;
            _tables.Api.Time.Advance(ServiceLease.DefaultDuration * 2 / 3);
            secondResults.Add(Interleave(second));
        }));

        var result = await first.ReconcileAsync(new(_tables.Cluster, "web"), _token);

        Assert.NotEqual(TimeSpan.FromMilliseconds(200), result.RequeueAfter);
        Assert.Equal(3, secondResults.Count);
        // Each time the second control plane looked, the service was held: it backed off for at most a second.
        Assert.All(secondResults, r => Assert.True(r.RequeueAfter <= TimeSpan.FromSeconds(1), $"{r}"));
        Assert.Equal(25, (await _tables.ServiceTasksAsync("web", _token)).Count);
        Assert.Null((await _tables.Api.Services.FindAsync(_tables.Cluster, "web", _token))!.LeaseOwner);
    }

    [Fact]
    public async Task A_reconcile_that_fails_mid_work_gives_its_lease_back_so_the_next_one_acts_at_once()
    {
        await CreateServiceAsync(desiredCount: 3);
        var failing = _tables.NewReconciler(new OnEachPlacement<TaskLauncher>(() => throw new InvalidOperationException("storage went away")));

        await Assert.ThrowsAsync<InvalidOperationException>(() => failing.ReconcileAsync(new(_tables.Cluster, "web"), _token));

        Assert.Null((await _tables.Api.Services.FindAsync(_tables.Cluster, "web", _token))!.LeaseOwner);
        await _tables.NewReconciler().ReconcileAsync(new(_tables.Cluster, "web"), _token);
        Assert.Equal(3, (await _tables.ServiceTasksAsync("web", _token)).Count);
    }
}
