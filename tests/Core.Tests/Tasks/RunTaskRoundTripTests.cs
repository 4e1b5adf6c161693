using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Serverless.Core.Api;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// RunTask's storage round trips that run side by side (the clientToken's claim beside the reads,
/// a task's row beside its reservation) and the task row a control plane remembers from its own
/// writes: whatever fails, or whichever writer wins, nothing is left half-written. Real tables and
/// queues behind the fault-injecting proxy; no worker.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunTaskRoundTripTests(AzuriteFixture azurite)
{
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private readonly TaskWorld _world = new(azurite);

    // A request the SDK retries on 503 fails once its 1 + 3 attempts are all refused.
    private const int RequestsOfAFailedCall = 4;

    private ActionHandler RunTask(TaskLauncher? launcher = null)
    {
        var actions = new TaskActions(_world.Clusters, _world.Instances, _world.Definitions, _world.Tasks, launcher ?? _world.Launcher,
            new ClientTokens(_world.Storage, _world.Time), new TaskJson(_world.Arns), _world.Arns, _world.Time, _world.Services, _world.Reconcile,
            NullLogger<TaskActions>.Instance);
        Assert.True(new ActionRegistry([actions]).TryGet($"{ActionRegistry.EcsTargetPrefix}.RunTask", out var runTask));
        return runTask;
    }

    private JsonObject Request(string family, string token) => new() { ["cluster"] = _world.Cluster, ["taskDefinition"] = family, ["clientToken"] = token };

    [Fact]
    public async Task A_row_whose_insert_fails_beside_a_won_reservation_leaves_no_reservation_no_row_and_no_Start()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);

        using (azurite.Faults.Inject(StorageFault.ServerBusy, StorageService.Table, _world.Storage.TableName("Tasks"), requests: RequestsOfAFailedCall))
            await Assert.ThrowsAnyAsync<Exception>(() => _world.Launcher.LaunchAsync(_world.Launch(definition), _token));

        Assert.Empty((await _world.InstanceNowAsync(instance.Id, _token)).Reservations);
        Assert.Empty(await _world.Tasks.ListLiveAsync(_world.Cluster, _token));
        Assert.Empty(await _world.CommandsAsync(instance.Id, _token));
    }

    [Fact]
    public async Task A_reservation_that_fails_beside_an_inserted_row_leaves_no_row_and_no_Start()
    {
        var definition = await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);

        using (azurite.Faults.Inject(StorageFault.ServerBusy, StorageService.Table, _world.Storage.TableName("ContainerInstances"), requests: RequestsOfAFailedCall))
            await Assert.ThrowsAnyAsync<Exception>(() => _world.Launcher.PlaceAsync(_world.Launch(definition), [instance], _token));

        Assert.Empty((await _world.InstanceNowAsync(instance.Id, _token)).Reservations);
        Assert.Empty(await _world.Tasks.ListLiveAsync(_world.Cluster, _token));
        Assert.Empty(await _world.CommandsAsync(instance.Id, _token));
    }

    [Fact]
    public async Task A_reservation_that_loses_its_race_takes_back_the_row_inserted_beside_it_and_the_task_is_placed_on_a_fresh_read()
    {
        var definition = await _world.InitializeAsync(_token);
        var seen = await _world.InstanceAsync(_token);
        // Another writer changes the instance row after this placement's view of it was read.
        var other = await _world.Instances.TryReserveAsync(seen, new Reservation("othertask", 0, 128, [], []), _token);
        Assert.NotNull(other);

        var placed = Assert.Single((await _world.Launcher.PlaceAsync(_world.Launch(definition), [seen], _token)).Tasks);

        var live = await _world.Tasks.ListLiveAsync(_world.Cluster, _token);
        Assert.Equal([placed.Id], live.Select(t => t.Id));
        var now = await _world.InstanceNowAsync(seen.Id, _token);
        Assert.True(now.HoldsReservationFor(placed.Id));
        Assert.True(now.HoldsReservationFor("othertask"));
        Assert.Equal(2, now.Reservations.Count);
    }

    [Fact]
    public async Task A_refused_request_gives_its_clientToken_back_so_the_same_request_runs_once_it_can()
    {
        await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var runTask = RunTask();
        var token = Guid.NewGuid().ToString("N");

        // The claim is taken beside the definition's read, which finds nothing: the claim goes again.
        await Assert.ThrowsAsync<ClientException>(() => runTask(Request("later", token), new RequestContext("AKIDTEST"), _token));
        await _world.Definitions.RegisterAsync(JsonNode.Parse(
            """{"family":"later","containerDefinitions":[{"name":"app","image":"local/busybox:latest","memory":64}]}""")!.AsObject(), [], _token);

        var first = await runTask(Request("later", token), new RequestContext("AKIDTEST"), _token);
        var again = await runTask(Request("later", token), new RequestContext("AKIDTEST"), _token);

        var arn = first["tasks"]![0]!["taskArn"]!.GetValue<string>();
        Assert.Equal(arn, again["tasks"]![0]!["taskArn"]!.GetValue<string>());
        Assert.Equal([arn], (await _world.CommandsAsync(instance.Id, _token)).Select(c => c.TaskArn));
        Assert.Single(await _world.Tasks.ListLiveAsync(_world.Cluster, _token));
    }

    [Fact]
    public async Task A_Start_that_cannot_be_sent_after_the_answer_was_recorded_leaves_one_task_stopped_and_nothing_held()
    {
        await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var runTask = RunTask();
        var token = Guid.NewGuid().ToString("N");

        // The instance's command queue cannot be had: the Start is certainly not sent.
        JsonObject first;
        using (azurite.Faults.Inject(StorageFault.ServerBusy, StorageService.Queue, requests: RequestsOfAFailedCall * 2))
            first = await runTask(Request("web", token), new RequestContext("AKIDTEST"), _token);
        var again = await runTask(Request("web", token), new RequestContext("AKIDTEST"), _token);

        // The answer the token recorded (before any Start) names the same task the first call answered.
        var arn = first["tasks"]![0]!["taskArn"]!.GetValue<string>();
        Assert.Equal(arn, again["tasks"]![0]!["taskArn"]!.GetValue<string>());
        Assert.Equal("STOPPED", first["tasks"]![0]!["lastStatus"]!.GetValue<string>());
        var task = await _world.TaskNowAsync(arn.Split('/')[^1], _token);
        Assert.Equal((EcsTaskStatus.Stopped, "TaskFailedToStart"), (task.LastStatus, task.StopCode));
        Assert.Empty((await _world.InstanceNowAsync(instance.Id, _token)).Reservations);
        Assert.Single(await _world.Tasks.ListForGroupAsync(_world.Cluster, "family:web", _token));
        Assert.Empty(await _world.CommandsAsync(instance.Id, _token));
    }

    [Fact]
    public async Task A_run_whose_answer_cannot_be_recorded_still_starts_its_task_and_its_retry_resumes_it_instead_of_placing_again()
    {
        await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var token = Guid.NewGuid().ToString("N");
        // Once the task is placed (its token claimed long before), the ClientTokens table goes away: the answer's record fails.
        InjectedFault? outage = null;
        var launcher = new TaskLauncher(_world.Instances, _world.Tasks, _world.Storage, _world.Arns, new EcsOptions(),
            new QueueWake(NullLogger<QueueWake>.Instance), _world.Time,
            new Reconciliation.OnEachPlacement<TaskLauncher>(() => outage ??= azurite.Faults.Inject(
                StorageFault.ServerBusy, StorageService.Table, _world.Storage.TableName("ClientTokens"), requests: RequestsOfAFailedCall)));

        var first = await RunTask(launcher)(Request("web", token), new RequestContext("AKIDTEST"), _token);

        // The task was placed and its Start went out beside the failed record: the call answers it.
        var arn = first["tasks"]![0]!["taskArn"]!.GetValue<string>();
        Assert.Equal([arn], (await _world.CommandsAsync(instance.Id, _token)).Select(c => c.TaskArn));
        Assert.Equal(RequestsOfAFailedCall, outage!.Hits);

        // An SDK's retry waits while the claim is fresh, takes it over once stale, and finds the task by its token.
        var runTask = RunTask();
        var retrying = runTask(Request("web", token), new RequestContext("AKIDTEST"), _token);
        while (!retrying.IsCompleted)
        {
            _world.Time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(20, _token);
        }
        var again = await retrying;
        var more = await runTask(Request("web", token), new RequestContext("AKIDTEST"), _token);

        Assert.Equal(arn, again["tasks"]![0]!["taskArn"]!.GetValue<string>());
        Assert.Equal(arn, more["tasks"]![0]!["taskArn"]!.GetValue<string>());
        Assert.Single(await _world.Tasks.ListForGroupAsync(_world.Cluster, "family:web", _token));
        Assert.Single((await _world.InstanceNowAsync(instance.Id, _token)).Reservations);
        // Since the first call's Start (read above): the resumed task's Start again (a duplicate the worker ignores), nothing else.
        Assert.Equal([arn], (await _world.CommandsAsync(instance.Id, _token)).Select(c => c.TaskArn));
    }

    [Fact]
    public async Task A_retry_that_takes_over_a_claim_whose_run_placed_nothing_places_the_task()
    {
        await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var runTask = RunTask();
        var token = Guid.NewGuid().ToString("N");
        // A run claimed the token and died before placing anything: its claim is left, unanswered, and goes stale.
        var claims = new ClientTokens(_world.Storage, _world.Time);
        var request = Request("web", token);
        Assert.NotNull(await claims.ClaimAsync(_world.Cluster, "RunTask", token, request, _token));
        _world.Time.Advance(TimeSpan.FromMinutes(1));

        var answer = await runTask(Request("web", token), new RequestContext("AKIDTEST"), _token);

        var arn = answer["tasks"]![0]!["taskArn"]!.GetValue<string>();
        Assert.Equal([arn], (await _world.CommandsAsync(instance.Id, _token)).Select(c => c.TaskArn));
        Assert.Equal(token, (await _world.TaskNowAsync(arn.Split('/')[^1], _token)).ClientToken);
    }

    [Fact]
    public async Task A_row_the_dead_run_inserted_without_its_reservation_is_not_resumed()
    {
        await _world.InitializeAsync(_token);
        var instance = await _world.InstanceAsync(_token);
        var runTask = RunTask();
        var token = Guid.NewGuid().ToString("N");
        // The run claimed the token, inserted its task's row beside a reservation it lost, and died.
        Assert.NotNull(await new ClientTokens(_world.Storage, _world.Time).ClaimAsync(_world.Cluster, "RunTask", token, Request("web", token), _token));
        var orphan = await _world.Tasks.InsertAsync(
            TaskRows.New(_world.Cluster, "family:web", instance.Id, _world.Time.GetUtcNow()) with { ClientToken = token, LastStatus = EcsTaskStatus.Pending }, _token);
        _world.Time.Advance(TimeSpan.FromMinutes(1));

        var answer = await runTask(Request("web", token), new RequestContext("AKIDTEST"), _token);

        // Nobody was answered with the orphan: the retry places a task of its own (the delivery sweep stops the orphan).
        var arn = answer["tasks"]![0]!["taskArn"]!.GetValue<string>();
        Assert.NotEqual(orphan.Id, arn.Split('/')[^1]);
        Assert.Equal([arn], (await _world.CommandsAsync(instance.Id, _token)).Select(c => c.TaskArn));
        Assert.Equal([arn.Split('/')[^1]], (await _world.InstanceNowAsync(instance.Id, _token)).Reservations.Select(r => r.TaskId));
    }

    [Fact]
    public async Task An_update_of_a_row_this_process_wrote_decides_on_its_copy_and_a_row_changed_elsewhere_is_read_again()
    {
        var definition = await _world.InitializeAsync(_token);
        await _world.InstanceAsync(_token);
        var task = Assert.Single((await _world.Launcher.PlaceAsync(_world.Launch(definition), null, _token)).Tasks);
        var now = _world.Time.GetUtcNow();

        // This process inserted the row: the report is one conditional write on that copy, no read.
        var reads = 0;
        azurite.Proxy.RequestSeen = (service, method, resource) =>
        {
            if (service == StorageService.Table && method == "GET") Interlocked.Increment(ref reads);
        };
        try
        {
            var pending = await _world.Tasks.UpdateAsync(_world.Cluster, task.Id, t => t with { ObservedAt = now }, _token);
            Assert.Equal(now, pending!.ObservedAt);
            Assert.Equal(0, Volatile.Read(ref reads));

            // Another control plane stops it meanwhile: this process's copy is stale, its write is refused, the row is read again.
            var elsewhere = new TaskStore(_world.Storage, _world.Arns);
            await elsewhere.UpdateAsync(_world.Cluster, task.Id, t => t.RequestStop("UserInitiated", "stopped elsewhere", now, null), _token);
            var running = await _world.Tasks.UpdateAsync(_world.Cluster, task.Id,
                t => TaskStateApplier.Merge(t, new TaskStateChange { Cluster = _world.Cluster, TaskArn = _world.Arns.Task(_world.Cluster, task.Id), ContainerInstanceArn = _world.Arns.ContainerInstance(_world.Cluster, task.ContainerInstanceId), LastStatus = EcsTaskStatus.Running, ObservedAt = now }, now), _token);
            Assert.True(Volatile.Read(ref reads) > 0);
            Assert.Equal((EcsTaskStatus.Running, EcsTaskStatus.Stopped, "stopped elsewhere"), (running!.LastStatus, running.DesiredStatus, running.StoppedReason));
        }
        finally
        {
            azurite.Proxy.RequestSeen = null;
        }
        var stored = await _world.TaskNowAsync(task.Id, _token);
        Assert.Equal((EcsTaskStatus.Running, EcsTaskStatus.Stopped, "stopped elsewhere"), (stored.LastStatus, stored.DesiredStatus, stored.StoppedReason));

        // A row deleted elsewhere: the copy's write finds nothing, and so does the update.
        await new TaskStore(_world.Storage, _world.Arns).DeleteAsync(stored, _token);
        Assert.Null(await _world.Tasks.UpdateAsync(_world.Cluster, task.Id, t => t with { HealthStatus = "HEALTHY" }, _token));
    }
}
