using System.Globalization;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.Capacity;

/// <summary>
/// A control plane whose managed scaling runs every 2 s and scales in after 4 s of low demand
/// (ECS: every minute, after 15 minutes), so a pool grows and shrinks within a test.
/// </summary>
public sealed class ManagedScalingPlaneFixture : ControlPlaneFixture
{
    protected override IReadOnlyDictionary<string, string> ControlPlaneSettings => new Dictionary<string, string>
    {
        ["Capacity__ScalingSeconds"] = "2",
        ["Capacity__ScaleInAfterSeconds"] = "4",
    };
}

[CollectionDefinition("managed scaling plane")]
public sealed class ManagedScalingPlaneCollection : ICollectionFixture<ManagedScalingPlaneFixture>;

/// <summary>
/// A cluster whose only capacity is a capacity provider with managed scaling over a pool of real
/// workers that a pool agent starts and stops: a service that does not fit waits in PROVISIONING,
/// the pool grows, the tasks run; when the service scales in, the idle workers are drained and removed.
/// </summary>
[Collection("managed scaling plane")]
public sealed class ManagedScalingTests(ManagedScalingPlaneFixture plane) : IAsyncLifetime
{
    private readonly HashSet<string> _instances = [];
    private readonly string _poolDirectory = Directory.CreateTempSubdirectory("ecs-pool-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await plane.StopWorkersAsync();
        // The pool's workers were the agent's children: their containers go too.
        foreach (var id in _instances) await Docker.RemoveByLabelAsync($"ecs-worker.instance-id={id}");
        try { Directory.Delete(_poolDirectory, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task A_service_that_does_not_fit_waits_in_PROVISIONING_while_the_pool_grows_and_the_idle_workers_go_after_it_scales_in()
    {
        var cluster = $"managed-{Guid.NewGuid():N}"[..24];
        var provider = $"cp-{Guid.NewGuid():N}"[..16];
        var pool = $"asg-{Guid.NewGuid():N}"[..16];
        _ = (await plane.EcsAsync("create-cluster", "--cluster-name", cluster)).Json;
        _ = (await plane.EcsAsync("create-capacity-provider", "--name", provider, "--auto-scaling-group-provider",
            $"autoScalingGroupArn=arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/{pool},managedScaling={{status=ENABLED,targetCapacity=100,minimumScalingStepSize=1,maximumScalingStepSize=2,instanceWarmupPeriod=30}},managedTerminationProtection=ENABLED")).Json;
        _ = (await plane.EcsAsync("put-cluster-capacity-providers", "--cluster", cluster, "--capacity-providers", provider,
            "--default-capacity-provider-strategy", $"capacityProvider={provider},weight=1")).Json;

        // The pool agent: 0 to 2 workers of 1024 CPU units and 256 MiB, each room for one task.
        var agent = plane.CreateWorker(cluster, Guid.NewGuid().ToString("N"), memoryMiB: 256, cpu: 1024, settings: new Dictionary<string, string>
        {
            ["Pool__Name"] = pool,
            ["Pool__MinSize"] = "0",
            ["Pool__MaxSize"] = "2",
            ["Pool__PollSeconds"] = "1",
            ["Pool__StateDirectory"] = _poolDirectory,
            ["Worker__CapacityProvider"] = provider,
            ["Worker__MetadataPort"] = "-1",   // not needed here, and independent of the engine's bridge gateway
        });
        await agent.StartAsync();

        var definition = (await plane.EcsAsync("register-task-definition", "--family", $"{cluster}-app", "--container-definitions",
            """[{"name":"app","image":"local/busybox:latest","memory":200,"entryPoint":["sh","-c"],"command":["trap 'exit 0' TERM; sleep 600 & wait"]}]"""))
            .Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var waitingSince = DateTime.UtcNow;
        var service = (await plane.EcsAsync("create-service", "--cluster", cluster, "--service-name", "app", "--task-definition", definition, "--desired-count", "2")).Json["service"]!;
        Assert.Equal(provider, service["capacityProviderStrategy"]![0]!["capacityProvider"]!.GetValue<string>());

        // No instance yet: the tasks wait in PROVISIONING, on no container instance, instead of failing.
        var waiting = await UntilAsync(async () =>
        {
            var arns = await plane.ListTaskArnsAsync(cluster, "app");
            return arns.Count == 2 ? await plane.DescribeTasksAsync(cluster, arns) : null;
        }, agent, "the service's tasks to appear");
        Assert.All(waiting, t => Assert.Null(t["containerInstanceArn"]));
        Assert.All(waiting, t => Assert.Equal(provider, t["capacityProviderName"]!.GetValue<string>()));
        Assert.Contains(waiting, t => t["lastStatus"]!.GetValue<string>() == "PROVISIONING");

        // The pool grows to two workers and the tasks run on them, one on each.
        var taskArns = waiting.Select(t => t["taskArn"]!.GetValue<string>()).ToList();
        Assert.Equal(0, (await plane.WaitAsync("tasks-running", cluster, taskArns, seconds: 240)).ExitCode);
        var running = await plane.DescribeTasksAsync(cluster, taskArns);
        var hosts = running.Select(t => t["containerInstanceArn"]!.GetValue<string>()).ToHashSet();
        foreach (var arn in hosts) _instances.Add(arn.Split('/')[^1]);
        Assert.Equal(2, hosts.Count);
        var waitedFor = DateTime.UtcNow - waitingSince;
        var instances = (await plane.EcsAsync("list-container-instances", "--cluster", cluster)).Json["containerInstanceArns"]!.AsArray();
        Assert.Equal(2, instances.Count);

        // ECS's metric, as CloudWatch shows it: above the target while tasks waited.
        var statistics = (await plane.AwsAsync(["cloudwatch", "get-metric-statistics", "--namespace", "AWS/ECS/ManagedScaling",
            "--metric-name", "CapacityProviderReservation", "--dimensions", $"Name=CapacityProviderName,Value={provider}", $"Name=ClusterName,Value={cluster}",
            "--start-time", waitingSince.AddMinutes(-1).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            "--end-time", DateTime.UtcNow.AddMinutes(1).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            "--period", "60", "--statistics", "Maximum"])).Json;
        Assert.Contains(statistics["Datapoints"]!.AsArray(), d => d!["Maximum"]!.GetValue<double>() >= 200);

        // The service scales in: its tasks stop, the idle workers are drained and removed from the cluster.
        _ = (await plane.EcsAsync("update-service", "--cluster", cluster, "--service", "app", "--desired-count", "0")).Json;
        Assert.Equal(0, (await plane.WaitAsync("tasks-stopped", cluster, taskArns)).ExitCode);
        await UntilAsync(async () =>
        {
            var left = (await plane.EcsAsync("list-container-instances", "--cluster", cluster)).Json["containerInstanceArns"]!.AsArray();
            return left.Count == 0 ? left : null;
        }, agent, "the idle workers to be removed");
        var gone = (await plane.EcsAsync(["describe-container-instances", "--cluster", cluster, "--container-instances", .. hosts])).Json["containerInstances"]!.AsArray();
        Assert.All(gone, i => Assert.Equal("INACTIVE", i!["status"]!.GetValue<string>()));
        Console.WriteLine($"Managed scaling: tasks waiting to RUNNING on new workers in {waitedFor.TotalSeconds:0.0} s");
    }

    private async Task<T> UntilAsync<T>(Func<Task<T?>> probe, WorkerProcess agent, string what, int seconds = 180) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (await probe() is { } result) return result;
            if (agent.HasExited || DateTime.UtcNow > deadline)
                throw new TimeoutException($"Waited in vain for {what}.\nPool agent:\n{agent.Log}\nControl plane:\n{string.Join('\n', plane.Log.Split('\n').TakeLast(80))}");
            await Task.Delay(500);
        }
    }
}
