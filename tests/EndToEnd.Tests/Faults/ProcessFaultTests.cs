using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.Faults;

/// <summary>Faults of the processes: the control plane, the workers, their clients and their containers.</summary>
[Trait("Category", "Fault")]
public sealed class ProcessFaultTests(FaultPlaneFixture fixture) : FaultCatalogue(fixture)
{
    [Fact]
    public async Task Control_plane_killed_during_a_RunTask_burst()
    {
        var cluster = await ClusterAsync("cpkill");
        await Plane.StartWorkerAsync(cluster, memoryMiB: 4096);
        var definition = await RegisterAsync("cpkill");

        // 24 RunTask calls at once, each with its own clientToken; the control Plane dies mid-burst.
        var answers = new ConcurrentDictionary<string, JsonNode>();
        var unanswered = new ConcurrentBag<string>();
        var tokens = Enumerable.Range(0, 24).Select(_ => Guid.NewGuid().ToString("N")).ToList();
        var burst = tokens.Select(async token =>
        {
            try
            {
                var response = await Plane.Client.EcsAsync("RunTask", RunTask(cluster, definition, token));
                if (response.Status == HttpStatusCode.OK) answers[token] = response.Body;
                else unanswered.Add(token);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                unanswered.Add(token);
            }
        }).ToList();
        await Task.Delay(Random.Shared.Next(50, 400));
        await Plane.KillAndRestartControlPlaneAsync();
        await Task.WhenAll(burst);

        // What failed is retried with the same clientToken, as an SDK retries.
        foreach (var token in unanswered) answers[token] = await Plane.Client.EcsOkAsync("RunTask", RunTask(cluster, definition, token));

        var acknowledged = answers.Values.SelectMany(TaskArns).ToList();
        await ConvergedAsync(nameof(Control_plane_killed_during_a_RunTask_burst), cluster, acknowledged);
        // Every token has one answer: its task, or a failure ECS gives (AGENT, when a loaded machine's
        // worker misses the fault fixture's 6 s heartbeat bound). No task is acknowledged twice.
        var described = string.Join('\n', answers.Values.Select(a => a.ToJsonString()));
        Assert.All(tokens, token => Assert.True(
            answers.TryGetValue(token, out var answer) && TaskArns(answer).Count() + answer["failures"]!.AsArray().Count == 1, described));
        Assert.True(acknowledged.Count == acknowledged.Distinct().Count(), described);
        Assert.True(acknowledged.Count >= tokens.Count / 2, described);
    }

    [Fact]
    public async Task Client_disconnects_in_the_middle_of_RunTask()
    {
        var cluster = await ClusterAsync("hangup");
        await Plane.StartWorkerAsync(cluster, memoryMiB: 4096);
        var definition = await RegisterAsync("hangup");

        var acknowledged = new ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            using var hangUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(5 + i * 15));
            try
            {
                var response = await Plane.Client.EcsAsync("RunTask", RunTask(cluster, definition, Guid.NewGuid().ToString("N")), hangUp.Token);
                if (response.Status == HttpStatusCode.OK) foreach (var arn in TaskArns(response.Body)) acknowledged.Add(arn);
            }
            catch (OperationCanceledException)
            {
                // The client went away; whatever the server did must still converge.
            }
        }));

        await ConvergedAsync(nameof(Client_disconnects_in_the_middle_of_RunTask), cluster, [.. acknowledged]);
    }

    [Fact]
    public async Task Worker_killed_at_random_points_of_a_start()
    {
        var cluster = await ClusterAsync("wkill");
        var worker = await Plane.StartWorkerAsync(cluster, memoryMiB: 4096);
        var definition = await RegisterAsync("wkill");

        var acknowledged = new List<string>();
        for (var round = 0; round < 4; round++)
        {
            acknowledged.AddRange(TaskArns(await Plane.Client.EcsOkAsync("RunTask", RunTask(cluster, definition, Guid.NewGuid().ToString("N"), count: 3))));
            await Task.Delay(Random.Shared.Next(0, 1500));
            await worker.KillAsync();
            await worker.StartAsync();
        }

        await ConvergedAsync(nameof(Worker_killed_at_random_points_of_a_start), cluster, acknowledged);
    }

    [Fact]
    public async Task A_task_container_removed_behind_the_workers_back()
    {
        var cluster = await ClusterAsync("rmc");
        await Plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("rmc");
        _ = await Plane.Client.EcsOkAsync("CreateService", new() { ["cluster"] = cluster, ["serviceName"] = "web", ["taskDefinition"] = definition, ["desiredCount"] = 3 });
        await ConvergeBeforeFaultAsync(cluster);

        var (_, ids) = await Docker.RunAsync("ps", "-q", "--filter", $"label=com.amazonaws.ecs.cluster={cluster}");
        await Docker.RunAsync("rm", "-f", ids.Split('\n')[0]);

        await ConvergedAsync(nameof(A_task_container_removed_behind_the_workers_back), cluster, []);
    }

    [Fact]
    public async Task A_stranger_container_with_our_labels()
    {
        var cluster = await ClusterAsync("stranger");
        var worker = await Plane.StartWorkerAsync(cluster);
        var stranger = $"arn:aws:ecs:{ControlPlaneFixture.Region}:{ControlPlaneFixture.AccountId}:task/{cluster}/{Guid.NewGuid():N}";
        var (exit, id) = await Docker.RunAsync("run", "-d", "--label", $"ecs-worker.instance-id={worker.InstanceId}",
            "--label", $"com.amazonaws.ecs.cluster={cluster}", "--label", $"com.amazonaws.ecs.task-arn={stranger}",
            "--label", "com.amazonaws.ecs.container-name=main", Image, "sleep", "600");
        Assert.Equal(0, exit);
        try
        {
            await ConvergedAsync(nameof(A_stranger_container_with_our_labels), cluster, []);
        }
        finally
        {
            await Docker.RunAsync("rm", "-f", id);
        }
    }

    [Fact]
    public async Task Azurite_restarted_with_its_data()
    {
        var cluster = await ClusterAsync("azurite");
        await Plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("azurite");
        _ = await Plane.Client.EcsOkAsync("CreateService", new() { ["cluster"] = cluster, ["serviceName"] = "web", ["taskDefinition"] = definition, ["desiredCount"] = 3 });
        var standalone = TaskArns(await Plane.Client.EcsOkAsync("RunTask", RunTask(cluster, definition, Guid.NewGuid().ToString("N"), count: 2))).ToList();
        await ConvergeBeforeFaultAsync(cluster);

        await Plane.Storage.RestartAsync();

        await ConvergedAsync(nameof(Azurite_restarted_with_its_data), cluster, standalone);
    }

    [Fact]
    public async Task An_oversized_report()
    {
        // Host networking with a 4,000-port range: each task's report names 4,000 bindings, several
        // times what one queue message holds. The reports must still leave, and so must later ones.
        var cluster = await ClusterAsync("bigreport");
        await Plane.StartWorkerAsync(cluster, memoryMiB: 4096, settings: new Dictionary<string, string> { ["Worker__AllowHostNetwork"] = "true" });
        var wide = (await Plane.Client.EcsOkAsync("RegisterTaskDefinition", new()
        {
            ["family"] = "bigreport",
            ["networkMode"] = "host",
            ["memory"] = "32",
            ["containerDefinitions"] = new JsonArray(new JsonObject
            {
                ["name"] = "main",
                ["image"] = Image,
                ["entryPoint"] = new JsonArray("sh", "-c"),
                ["command"] = new JsonArray("trap 'exit 0' TERM; sleep 600 & wait"),
                ["portMappings"] = new JsonArray(new JsonObject { ["containerPortRange"] = "30000-33999" }),
            }),
        }))["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var acknowledged = TaskArns(await Plane.Client.EcsOkAsync("RunTask", RunTask(cluster, wide, Guid.NewGuid().ToString("N"), count: 2))).ToList();
        var plain = await RegisterAsync("after-bigreport");
        acknowledged.AddRange(TaskArns(await Plane.Client.EcsOkAsync("RunTask", RunTask(cluster, plain, Guid.NewGuid().ToString("N")))));

        await ConvergedAsync(nameof(An_oversized_report), cluster, acknowledged, async () =>
        {
            var tasks = await Plane.DescribeTasksAsync(cluster, acknowledged);
            Assert.All(tasks, t => Assert.Equal("RUNNING", t["lastStatus"]!.GetValue<string>()));
        });
    }

    [Fact]
    public async Task A_worker_whose_clock_is_four_minutes_behind()
    {
        var cluster = await ClusterAsync("skew");
        var worker = await Plane.StartWorkerAsync(cluster, clockOffset: TimeSpan.FromMinutes(-4));
        var definition = await RegisterAsync("skew");
        _ = await Plane.Client.EcsOkAsync("CreateService", new() { ["cluster"] = cluster, ["serviceName"] = "web", ["taskDefinition"] = definition, ["desiredCount"] = 2 });

        await ConvergedAsync(nameof(A_worker_whose_clock_is_four_minutes_behind), cluster, [], async () =>
        {
            // Several heartbeat periods later the instance is still judged connected.
            await Task.Delay(TimeSpan.FromSeconds(15));
            var instance = (await Plane.Client.EcsOkAsync("DescribeContainerInstances", new()
            {
                ["cluster"] = cluster,
                ["containerInstances"] = new JsonArray(worker.InstanceId),
            }))["containerInstances"]![0]!;
            Assert.True(instance["agentConnected"]!.GetValue<bool>(), instance.ToJsonString());
        });
    }

    [Fact]
    public async Task Two_workers_with_one_instance_id()
    {
        var cluster = await ClusterAsync("twin");
        var first = await Plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("twin");
        _ = await Plane.Client.EcsOkAsync("CreateService", new() { ["cluster"] = cluster, ["serviceName"] = "web", ["taskDefinition"] = definition, ["desiredCount"] = 2 });
        await ConvergeBeforeFaultAsync(cluster);

        // A second host configured with the same identity: it must be refused, and the first keeps its tasks.
        var twin = Plane.CreateWorker(cluster, first.InstanceId);
        await twin.StartAsync();
        _ = await Plane.Client.EcsOkAsync("UpdateService", new() { ["cluster"] = cluster, ["service"] = "web", ["desiredCount"] = 4 });

        await ConvergedAsync(nameof(Two_workers_with_one_instance_id), cluster, [], async () =>
        {
            // It watches the first one's heartbeat for two periods before it gives up.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!twin.HasExited && DateTime.UtcNow < deadline) await Task.Delay(500);
            Assert.True(twin.HasExited, $"the second worker with one instance id kept running:\n{twin.Log}");
        });
    }
}
