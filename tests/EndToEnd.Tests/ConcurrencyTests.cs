using System.Text.Json.Nodes;
using Azure.Storage.Queues;

namespace Serverless.EndToEnd.Tests;

/// <summary>
/// Two control planes on one storage account reconcile the same services while every reconcile
/// message is delivered many times over: maximumPercent holds, no instance is overcommitted, and
/// no slot runs two tasks.
/// </summary>
[Collection("control plane 6")]
public sealed class ConcurrencyTests(ControlPlaneFixture plane) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>This test's workers (and their containers) end with it.</summary>
    public Task DisposeAsync() => plane.StopWorkersAsync();

    private const string Image = "local/busybox:latest";

    // One round: three identical rounds cost three minutes of every CI run and found nothing one
    // did not; scripts/faults.sh is where the system is run over and over.
    [Fact]
    public async Task Two_control_planes_and_duplicated_messages_never_exceed_the_bounds()
    {
        var second = await plane.StartAnotherControlPlaneAsync();
        var cluster = $"twice-{Guid.NewGuid():N}"[..30];
        _ = (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json;
        // Room for exactly 8 tasks of 128 MiB across the two instances.
        await plane.StartWorkerAsync(cluster, memoryMiB: 512);
        await plane.StartWorkerAsync(cluster, memoryMiB: 512);
        // The shell ends on SIGTERM, so a stop does not wait out the stop timeout (a bare sleep as PID 1 ignores it).
        string Register(string command) => $$"""[{"name":"main","image":"{{Image}}","memory":128,"entryPoint":["sh","-c"],"command":["trap 'exit 0' TERM; {{command}} & wait"]}]""";
        var v1 = (await plane.EcsAsync("register-task-definition", "--family", "twice", "--container-definitions", Register("sleep 600"))).Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var v2 = (await plane.EcsAsync("register-task-definition", "--family", "twice", "--container-definitions", Register("sleep 601"))).Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();

        // The service is created through one control plane and updated through the other.
        _ = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "dup", "--task-definition", v1,
            "--desired-count", "6", "--deployment-configuration", "minimumHealthyPercent=50,maximumPercent=125")).Json;
        // Duplicates flood in from the first placement until the rollout is over.
        using var rolledOut = new CancellationTokenSource();
        var flood = FloodAsync(cluster, "dup", TimeSpan.FromSeconds(120), rolledOut.Token);
        await WaitAsync(cluster, "dup");
        _ = (await plane.AwsAsync(["ecs", "update-service", "--cluster", cluster, "--service", "dup", "--task-definition", v2], endpoint: second)).Json;

        var deadline = DateTime.UtcNow.AddSeconds(150);
        var maxAlive = 0;
        while (DateTime.UtcNow < deadline)
        {
            var alive = await AliveTasksAsync(cluster);
            maxAlive = Math.Max(maxAlive, alive.Count);
            Assert.True(alive.Count <= 7, $"{alive.Count} tasks alive: above maximumPercent 125% of 6:\n"
                + string.Join("\n", alive.Select(t => $"{t["taskArn"]} {t["startedBy"]} {t["lastStatus"]}/{t["desiredStatus"]} {t["createdAt"]} {t["containerInstanceArn"]!.GetValue<string>()[^6..]} {t["stoppedReason"]}")));
            foreach (var instance in (await plane.Client.EcsOkAsync("ListContainerInstances", new() { ["cluster"] = cluster }))["containerInstanceArns"]!.AsArray())
            {
                var described = (await plane.Client.EcsOkAsync("DescribeContainerInstances", new() { ["cluster"] = cluster, ["containerInstances"] = new JsonArray(instance!.GetValue<string>()) }))["containerInstances"]![0]!;
                var memory = described["remainingResources"]!.AsArray().First(r => r!["name"]!.GetValue<string>() == "MEMORY")!["integerValue"]!.GetValue<int>();
                Assert.True(memory >= 0, $"instance overcommitted: {memory} MiB remaining");
            }
            var service = await plane.DescribeServiceAsync(cluster, "dup");
            if (service["deployments"]!.AsArray().Count == 1 && service["taskDefinition"]!.GetValue<string>() == v2 && service["runningCount"]!.GetValue<int>() == 6
                && alive.Count == 6) break;
            await Task.Delay(500);
        }
        await rolledOut.CancelAsync();
        await flood;

        await WaitAsync(cluster, "dup");
        var final = await AliveTasksAsync(cluster);
        Assert.Equal(6, final.Count);
        Assert.All(final, t => Assert.Equal(v2, t["taskDefinitionArn"]!.GetValue<string>()));
        // Exactly one container per running task: nothing started twice for one slot.
        var (_, labels) = await Docker.RunAsync("ps", "--format", "{{.Label \"com.amazonaws.ecs.task-arn\"}}", "--filter", $"label=com.amazonaws.ecs.cluster={cluster}");
        Assert.Equal(final.Select(t => t["taskArn"]!.GetValue<string>()).Order(), labels.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());

        _ = (await plane.EcsAsync("delete-service", "--cluster", cluster, "--service", "dup", "--force")).Json;
        var inactive = await plane.WaitAsync("services-inactive", cluster, ["dup"]);
        Assert.True(inactive.ExitCode == 0, inactive.Stderr);
    }

    /// <summary>Floods the reconcile queue with copies of the service's message, as a misbehaving queue would.</summary>
    private async Task FloodAsync(string cluster, string service, TimeSpan duration, CancellationToken stop)
    {
        var queue = new QueueClient(plane.StorageConnectionString, "reconcile", new QueueClientOptions { MessageEncoding = QueueMessageEncoding.None });
        await queue.CreateIfNotExistsAsync();
        var message = new JsonObject { ["v"] = 1, ["cluster"] = cluster, ["service"] = service }.ToJsonString();
        var until = DateTime.UtcNow + duration;
        while (DateTime.UtcNow < until && !stop.IsCancellationRequested)
        {
            await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => queue.SendMessageAsync(message)));
            await Task.Delay(200);
        }
    }

    private async Task<List<JsonNode>> AliveTasksAsync(string cluster)
    {
        var arns = await plane.ListTaskArnsAsync(cluster, "dup");
        if (arns.Count == 0) return [];
        // Every task that is not STOPPED holds a slot (and a reservation), whatever its desired status.
        var all = await plane.DescribeTasksAsync(cluster, arns);
        var stopping = await plane.ListTaskArnsAsync(cluster, "dup", "STOPPED");
        if (stopping.Count > 0)
            all.AddRange((await plane.DescribeTasksAsync(cluster, stopping.Take(100))).Where(t => t["lastStatus"]!.GetValue<string>() != "STOPPED"));
        // A task listed as desired RUNNING may have been told to stop before the second listing: count it once.
        return all.Where(t => t["lastStatus"]!.GetValue<string>() != "STOPPED")
            .GroupBy(t => t["taskArn"]!.GetValue<string>()).Select(g => g.Last()).ToList();
    }

    private async Task WaitAsync(string cluster, string service)
    {
        var result = await plane.WaitAsync("services-stable", cluster, [service]);
        Assert.True(result.ExitCode == 0, result.Stderr);
    }
}
