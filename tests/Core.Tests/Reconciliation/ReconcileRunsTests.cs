using Serverless.Core.Reconciliation;
using Serverless.Core.Services;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>One reconcile of a service at a time per process: messages that arrive while one runs share the next run.</summary>
public sealed class ReconcileRunsTests
{
    private static readonly ServiceKey Web = new("c", "web");
    private static readonly ServiceKey Api = new("c", "api");
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(1)).Token;

    /// <summary>A reconcile that records its start and waits until the test lets it finish.</summary>
    private sealed class Reconciles
    {
        private readonly Lock _gate = new();
        public List<(ServiceKey Key, TaskCompletionSource<ReconcileResult> Finish)> Started { get; } = [];
        public int Concurrent;
        public int MostConcurrent;

        public async Task<ReconcileResult> RunAsync(ServiceKey key, CancellationToken cancellationToken)
        {
            var finish = new TaskCompletionSource<ReconcileResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                Started.Add((key, finish));
                MostConcurrent = Math.Max(MostConcurrent, ++Concurrent);
            }
            try
            {
                return await finish.Task.WaitAsync(cancellationToken);
            }
            finally
            {
                lock (_gate) Concurrent--;
            }
        }

        public int Count
        {
            get
            {
                lock (_gate) return Started.Count;
            }
        }

        public TaskCompletionSource<ReconcileResult> Last
        {
            get
            {
                lock (_gate) return Started[^1].Finish;
            }
        }
    }

    private static async Task UntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException();
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task Messages_that_arrive_during_a_run_share_one_run_after_it_and_only_its_starter_gets_the_look_again()
    {
        var reconciles = new Reconciles();
        var runs = new ReconcileRuns(reconciles.RunAsync);

        var first = runs.ReconcileAsync(Web, _token);
        await UntilAsync(() => reconciles.Count == 1);
        // Five more while the first runs: none starts yet.
        var waiting = Enumerable.Range(0, 5).Select(_ => runs.ReconcileAsync(Web, _token)).ToList();
        await Task.Delay(50, _token);
        Assert.Equal(1, reconciles.Count);

        reconciles.Last.SetResult(ReconcileResult.Done);
        Assert.Equal(ReconcileResult.Done, await first);
        // One run for all five, after the first ended.
        await UntilAsync(() => reconciles.Count == 2);
        var again = ReconcileResult.After(TimeSpan.FromSeconds(3));
        reconciles.Last.SetResult(again);
        var results = await Task.WhenAll(waiting);

        Assert.Equal(1, results.Count(r => r == again));
        Assert.Equal(4, results.Count(r => r == ReconcileResult.Done));
        Assert.Equal(2, reconciles.Count);
        Assert.Equal(1, reconciles.MostConcurrent);
    }

    [Fact]
    public async Task A_message_that_arrives_once_the_next_run_has_started_waits_for_a_run_after_that_one()
    {
        var reconciles = new Reconciles();
        var runs = new ReconcileRuns(reconciles.RunAsync);
        var first = runs.ReconcileAsync(Web, _token);
        await UntilAsync(() => reconciles.Count == 1);
        var second = runs.ReconcileAsync(Web, _token);
        reconciles.Last.SetResult(ReconcileResult.Done);
        await UntilAsync(() => reconciles.Count == 2);

        // The second run may have read the service already: a message now must not be covered by it.
        var third = runs.ReconcileAsync(Web, _token);
        reconciles.Last.SetResult(ReconcileResult.Done);
        await second;
        await UntilAsync(() => reconciles.Count == 3);
        Assert.False(third.IsCompleted);
        reconciles.Last.SetResult(ReconcileResult.Done);
        await third;
        await first;
        Assert.Equal(1, reconciles.MostConcurrent);
    }

    [Fact]
    public async Task Different_services_run_at_once_and_a_failed_run_fails_every_message_it_covered()
    {
        var reconciles = new Reconciles();
        var runs = new ReconcileRuns(reconciles.RunAsync);
        var web = runs.ReconcileAsync(Web, _token);
        var api = runs.ReconcileAsync(Api, _token);
        await UntilAsync(() => reconciles.Count == 2);
        Assert.Equal(2, reconciles.MostConcurrent);

        var covered = new[] { runs.ReconcileAsync(Web, _token), runs.ReconcileAsync(Web, _token) };
        reconciles.Started.Single(s => s.Key == Web).Finish.SetResult(ReconcileResult.Done);
        await web;
        await UntilAsync(() => reconciles.Count == 3);
        reconciles.Last.SetException(new InvalidOperationException("storage down"));
        foreach (var message in covered) await Assert.ThrowsAsync<InvalidOperationException>(() => message);

        // Nothing is left held: the next message runs at once.
        var later = runs.ReconcileAsync(Web, _token);
        await UntilAsync(() => reconciles.Count == 4);
        reconciles.Last.SetResult(ReconcileResult.Done);
        await later;
        reconciles.Started.Single(s => s.Key == Api).Finish.SetResult(ReconcileResult.Done);
        await api;
    }
}
