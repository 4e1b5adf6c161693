using System.Net.Http;
using Docker.DotNet.Models;
using Serverless.Core.Capacity;
using Serverless.Core.Tasks;
using Serverless.Core.TaskDefinitions;
using Serverless.Worker.Docker;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Capacity;

/// <summary>
/// awsvpc tasks on the real engine: one network per subnet on the worker, shared by that subnet's
/// tasks, one namespace (and address) per task shared by its containers, nothing left behind.
/// </summary>
public sealed class AwsVpcDockerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
    private const string Subnet = "subnet-0a1b2c3d";

    // The client reaches the web container on localhost, then keeps running so the task stays up.
    private const string TwoContainers = """
        {"family": "%FAMILY%", "networkMode": "awsvpc", "cpu": "256", "memory": "512", "containerDefinitions": [
          {"name": "web", "image": "local/busybox:latest", "essential": true, "stopTimeout": 1,
           "entryPoint": ["sh", "-c"], "command": ["echo hello from the task > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
           "portMappings": [{"containerPort": 8080}]},
          {"name": "client", "image": "local/busybox:latest", "essential": false,
           "entryPoint": ["sh", "-c"], "command": ["for i in $(seq 100); do wget -q -O- http://localhost:8080/ | grep -q 'hello from the task' && exit 0; sleep 0.1; done; exit 1"]}]}
        """;

    private TaskEventsProbe Events => fixture.Events;

    [Fact]
    public async Task An_awsvpc_task_joins_its_subnets_network_its_containers_share_localhost_and_the_network_outlives_it_until_the_worker_stops()
    {
        var worker = await WorkerHarness.StartAsync(fixture, output);
        var definition = await worker.RegisterAsync(TwoContainers.Replace("%FAMILY%", "vpc-pair", StringComparison.Ordinal));
        var start = worker.StartCommand(definition) with { SubnetId = Subnet };

        await worker.Runner.StartAsync(start, redelivered: false, worker.Stopping);
        var reached = await Events.WaitForAsync(start.TaskArn, r => r.Containers.Any(c => c.Name == "client" && c.LastStatus == "STOPPED"), worker.Stopping);

        // The client exited 0: it reached the web container on localhost. The pause container is never reported.
        Assert.Equal(0, reached.Containers.Single(c => c.Name == "client").ExitCode);
        Assert.Equal(["web", "client"], reached.Containers.Select(c => c.Name));
        Assert.Equal("RUNNING", reached.LastStatus);
        var eni = reached.NetworkInterface;
        Assert.NotNull(eni);
        Assert.Empty(reached.Containers.Single(c => c.Name == "web").NetworkBindings);

        // The subnet's network, labelled as the worker's (with the subnet, no task), holds the reported address; the web container shares its namespace.
        var network = Assert.Single(await SubnetNetworksAsync(worker));
        Assert.Equal(TaskNetworkPlan.NameFor(Subnet, worker.Identity.InstanceId), network.Name);
        Assert.Equal(Subnet, network.Labels[TaskNetworkPlan.SubnetLabel]);
        Assert.False(network.Labels.ContainsKey(DockerLabels.TaskArn));
        var web = await worker.InspectAsync(reached.Containers.Single(c => c.Name == "web").RuntimeId!);
        Assert.StartsWith("container:", web.HostConfig.NetworkMode);
        var pause = await worker.Docker.Containers.InspectContainerAsync(web.HostConfig.NetworkMode["container:".Length..]);
        Assert.Equal(eni!.PrivateIpv4Address, pause.NetworkSettings.Networks[network.Name].IPAddress);
        Assert.Equal(eni.MacAddress, pause.NetworkSettings.Networks[network.Name].MacAddress);

        // The address is the task's: this host reaches the web container on it (a network this test run made).
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        Assert.Contains("hello from the task", await http.GetStringAsync($"http://{eni.PrivateIpv4Address}:8080/"));

        await worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), worker.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);
        await worker.WaitUntilRemovedAsync(start.TaskArn);
        // Kept for the subnet's next task (AwsVpcNetworkIdleSeconds, 300 s by default)...
        Assert.Equal(network.ID, Assert.Single(await SubnetNetworksAsync(worker)).ID);

        // ...and removed when the worker stops with no task on it.
        var instanceId = worker.Identity.InstanceId;
        await worker.DisposeAsync();
        Assert.Empty(await SubnetNetworksAsync(fixture.Docker, instanceId));
    }

    [Fact]
    public async Task Two_tasks_of_one_subnet_get_their_own_addresses_on_its_one_network_reach_each_other_and_it_stays_while_either_runs()
    {
        // No idle time: the network goes as soon as no task is on it, so it staying proves a task still holds it.
        await using var worker = await WorkerHarness.StartAsync(fixture, output, configure: o => o.AwsVpcNetworkIdleSeconds = 0);
        var definition = await worker.RegisterAsync(TwoContainers.Replace("%FAMILY%", "vpc-subnet", StringComparison.Ordinal));
        var first = worker.StartCommand(definition) with { SubnetId = Subnet };
        var second = worker.StartCommand(definition) with { SubnetId = Subnet };

        // Started together: both find the network missing, one creates it, the other joins it.
        await Task.WhenAll(
            worker.Runner.StartAsync(first, redelivered: false, worker.Stopping),
            worker.Runner.StartAsync(second, redelivered: false, worker.Stopping));
        var one = (await Events.WaitForStatusAsync(first.TaskArn, "RUNNING", worker.Stopping)).NetworkInterface!;
        var two = (await Events.WaitForStatusAsync(second.TaskArn, "RUNNING", worker.Stopping)).NetworkInterface!;
        Assert.NotEqual(one.PrivateIpv4Address, two.PrivateIpv4Address);
        Assert.NotEqual(one.MacAddress, two.MacAddress);
        var network = Assert.Single(await SubnetNetworksAsync(worker));
        var attached = (await worker.Docker.Networks.InspectNetworkAsync(network.ID)).Containers.Values.Select(c => c.IPv4Address.Split('/')[0]).ToList();
        Assert.Contains(one.PrivateIpv4Address, attached);
        Assert.Contains(two.PrivateIpv4Address, attached);

        // Tasks in one subnet reach each other: the first task's web container answers the second's address.
        await ExecAsync(worker, first.TaskArn, "web", $"wget -q -O- http://{two.PrivateIpv4Address}:8080/ | grep -q 'hello from the task'");

        await worker.Runner.StopAsync(WorkerHarness.StopCommand(first.TaskArn), worker.Stopping);
        await Events.WaitForStatusAsync(first.TaskArn, "STOPPED", worker.Stopping);
        await worker.WaitUntilRemovedAsync(first.TaskArn);
        // The first task's clean-up let the network go; the second is still on it, so it stays, and the second still answers.
        await Task.Delay(500);
        Assert.Equal(network.ID, Assert.Single(await SubnetNetworksAsync(worker)).ID);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        Assert.Contains("hello from the task", await http.GetStringAsync($"http://{two.PrivateIpv4Address}:8080/"));

        await worker.Runner.StopAsync(WorkerHarness.StopCommand(second.TaskArn), worker.Stopping);
        await Events.WaitForStatusAsync(second.TaskArn, "STOPPED", worker.Stopping);
        await worker.WaitUntilRemovedAsync(second.TaskArn);
        await WaitUntilAsync(async () => (await SubnetNetworksAsync(worker)).Count == 0, "the subnet's network was not removed after its last task");
    }

    [Fact]
    public async Task A_restarted_worker_adopts_a_task_on_its_subnets_network_keeps_the_network_and_removes_what_no_task_is_on()
    {
        var first = await WorkerHarness.StartAsync(fixture, output);
        var definition = await first.RegisterAsync(TwoContainers.Replace("%FAMILY%", "vpc-adopt", StringComparison.Ordinal));
        var keep = first.StartCommand(definition) with { SubnetId = Subnet };
        var gone = first.StartCommand(definition) with { SubnetId = Subnet };
        await InsertRowAsync(first, keep, definition);
        await first.Runner.StartAsync(keep, false, first.Stopping);
        await first.Runner.StartAsync(gone, false, first.Stopping);
        var kept = await Events.WaitForStatusAsync(keep.TaskArn, "RUNNING", first.Stopping);
        await Events.WaitForStatusAsync(gone.TaskArn, "RUNNING", first.Stopping);
        var network = Assert.Single(await SubnetNetworksAsync(first));
        var (instanceId, prefix, strayArn) = (first.Identity.InstanceId, first.StoragePrefix, first.NewTaskArn("vpc-stray"));
        // The worker stops with its tasks running: their network stays for the next start.
        await first.DisposeAsync();
        Assert.Equal(network.ID, Assert.Single(await SubnetNetworksAsync(fixture.Docker, instanceId)).ID);

        // Left behind by a crash: another subnet's network with no task on it, and a per-task network of a worker from before subnet networks.
        var idle = TaskNetworkPlan.For("subnet-idle", instanceId);
        await fixture.Docker.Networks.CreateNetworkAsync(new NetworksCreateParameters { Name = idle.Name, Labels = idle.Labels });
        await fixture.Docker.Networks.CreateNetworkAsync(new NetworksCreateParameters
        {
            Name = $"ecs-task-{TaskRunner.TaskIdOf(strayArn)}",
            Labels = new Dictionary<string, string> { [DockerLabels.InstanceId] = instanceId, [DockerLabels.TaskArn] = strayArn },
        });

        await using var second = await WorkerHarness.StartAsync(fixture, output, instanceId, prefix, o => o.AwsVpcNetworkIdleSeconds = 0);
        await second.Adoption.RunAsync(second.Stopping);

        await Events.WaitForStatusAsync(gone.TaskArn, "STOPPED", second.Stopping);
        await second.WaitUntilRemovedAsync(gone.TaskArn);
        await WaitUntilAsync(async () => (await second.Docker.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = DockerLabels.InstanceFilter(instanceId),
        })).Select(n => n.Name).SequenceEqual([network.Name]), "the idle and stray networks were not removed");

        // The adopted task keeps its network and address (the gone task's clean-up did not take the network from it).
        await Task.Delay(500);
        Assert.Equal(network.ID, Assert.Single(await SubnetNetworksAsync(second)).ID);
        var readopted = await Events.WaitForAsync(keep.TaskArn, r => r.LastStatus == "RUNNING" && r.ObservedAt > kept.ObservedAt, second.Stopping);
        Assert.Equal(kept.NetworkInterface, readopted.NetworkInterface);

        // Its stop lets the network go: no task is left on it.
        await second.Runner.StopAsync(WorkerHarness.StopCommand(keep.TaskArn), second.Stopping);
        await Events.WaitForStatusAsync(keep.TaskArn, "STOPPED", second.Stopping);
        await second.WaitUntilRemovedAsync(keep.TaskArn);
        await WaitUntilAsync(async () => (await SubnetNetworksAsync(second)).Count == 0, "the adopted task's network was not removed after it stopped");
    }

    [Fact]
    public async Task A_subnets_next_task_takes_its_warm_spare_pause_container_keeps_it_across_a_restart_and_no_spare_outlives_the_worker()
    {
        var first = await WorkerHarness.StartAsync(fixture, output);
        var definition = await first.RegisterAsync(TwoContainers.Replace("%FAMILY%", "vpc-spare", StringComparison.Ordinal));
        var (instanceId, prefix) = (first.Identity.InstanceId, first.StoragePrefix);
        var networkName = TaskNetworkPlan.NameFor(Subnet, instanceId);
        var opening = first.StartCommand(definition) with { SubnetId = Subnet };
        await first.Runner.StartAsync(opening, false, first.Stopping);
        await Events.WaitForStatusAsync(opening.TaskArn, "RUNNING", first.Stopping);

        // Once a task of the subnet runs, a spare pause container waits on its network, labelled as the worker's, with no task or cluster.
        var spare = await SingleSpareAsync(first.Docker, instanceId, networkName);
        Assert.Equal(networkName, spare.Labels[TaskRunner.SpareLabel]);
        Assert.False(spare.Labels.ContainsKey(DockerLabels.TaskArn));
        Assert.False(spare.Labels.ContainsKey(DockerLabels.Cluster));
        var held = (await first.Docker.Containers.InspectContainerAsync(spare.ID)).NetworkSettings.Networks[networkName];

        // The next task takes it: its namespace, address and MAC are the spare's, its containers share localhost.
        var next = first.StartCommand(definition) with { SubnetId = Subnet };
        await InsertRowAsync(first, next, definition);
        await first.Runner.StartAsync(next, false, first.Stopping);
        var running = await Events.WaitForAsync(next.TaskArn, r => r.Containers.Any(c => c.Name == "client" && c.LastStatus == "STOPPED"), first.Stopping);
        Assert.Equal(0, running.Containers.Single(c => c.Name == "client").ExitCode);
        Assert.Equal((held.IPAddress, held.MacAddress), (running.NetworkInterface!.PrivateIpv4Address, running.NetworkInterface.MacAddress));
        var web = await first.InspectAsync(running.Containers.Single(c => c.Name == "web").RuntimeId!);
        var pause = await first.Docker.Containers.InspectContainerAsync(web.HostConfig.NetworkMode["container:".Length..]);
        Assert.Equal(spare.ID, pause.ID);
        Assert.EndsWith("-internalecspause-" + pause.Name.Split('-')[^1], pause.Name);
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
            Assert.Contains("hello from the task", await http.GetStringAsync($"http://{held.IPAddress}:8080/"));
        // ...and another spare is made for the task after it.
        var replacement = await SingleSpareAsync(first.Docker, instanceId, networkName, except: spare.ID);
        Assert.NotEqual(spare.ID, replacement.ID);

        // The worker stops with the task running: the unused spare goes, the taken one stays with its task.
        await first.Runner.StopAsync(WorkerHarness.StopCommand(opening.TaskArn), first.Stopping);
        await Events.WaitForStatusAsync(opening.TaskArn, "STOPPED", first.Stopping);
        await first.WaitUntilRemovedAsync(opening.TaskArn);
        await first.DisposeAsync();
        Assert.Equal([spare.ID], (await SparesAsync(fixture.Docker, instanceId)).Select(c => c.ID));

        // A spare a crash left behind, unused.
        var left = await fixture.Docker.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = "local/busybox:latest",
            Cmd = ["sleep", "600"],
            Labels = new Dictionary<string, string>
            {
                [DockerLabels.InstanceId] = instanceId,
                [DockerLabels.ContainerName] = TaskTranslation.PauseContainerName,
                [TaskRunner.SpareLabel] = networkName,
            },
            HostConfig = new HostConfig { NetworkMode = networkName },
        });
        await fixture.Docker.Containers.StartContainerAsync(left.ID, new ContainerStartParameters());

        // The restarted worker adopts the task with the pause container it took (same address), and removes the stray spare.
        await using var second = await WorkerHarness.StartAsync(fixture, output, instanceId, prefix, o => o.AwsVpcNetworkIdleSeconds = 0);
        await second.Adoption.RunAsync(second.Stopping);
        var readopted = await Events.WaitForAsync(next.TaskArn, r => r.LastStatus == "RUNNING" && r.ObservedAt > running.ObservedAt, second.Stopping);
        Assert.Equal(running.NetworkInterface, readopted.NetworkInterface);
        Assert.DoesNotContain(left.ID, (await SparesAsync(fixture.Docker, instanceId)).Select(c => c.ID));

        // Its stop removes its pause container with it; with no task left, the network and its spare go.
        await second.Runner.StopAsync(WorkerHarness.StopCommand(next.TaskArn), second.Stopping);
        await Events.WaitForStatusAsync(next.TaskArn, "STOPPED", second.Stopping);
        await second.WaitUntilRemovedAsync(next.TaskArn);
        await WaitUntilAsync(async () => (await SubnetNetworksAsync(second)).Count == 0 && (await SparesAsync(fixture.Docker, instanceId)).Count == 0,
            "the subnet's network or a spare was left after the last task");
    }

    private static async Task<IList<ContainerListResponse>> SparesAsync(global::Docker.DotNet.IDockerClient docker, string instanceId)
        => await docker.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool> { [$"{DockerLabels.InstanceId}={instanceId}"] = true, [TaskRunner.SpareLabel] = true },
            },
        });

    /// <summary>Waits for the one running spare of <paramref name="network"/> other than <paramref name="except"/>.</summary>
    private static async Task<ContainerListResponse> SingleSpareAsync(global::Docker.DotNet.IDockerClient docker, string instanceId, string network, string? except = null)
    {
        ContainerListResponse? found = null;
        await WaitUntilAsync(async () =>
        {
            var spares = (await SparesAsync(docker, instanceId)).Where(c => c.ID != except && c.State == "running" && c.Labels[TaskRunner.SpareLabel] == network).ToList();
            found = spares.Count == 1 ? spares[0] : null;
            return found is not null;
        }, $"no spare on {network}");
        return found!;
    }

    /// <summary>The row the control plane writes for an awsvpc task placed here: its attachment names the subnet.</summary>
    private static async Task InsertRowAsync(WorkerHarness worker, TaskCommand start, TaskDefinitionRecord definition)
    {
        var id = TaskRunner.TaskIdOf(start.TaskArn);
        await worker.Tasks.InsertAsync(new TaskRecord
        {
            Cluster = WorkerHarness.Cluster,
            Id = id,
            Group = "family:" + definition.Family,
            TaskDefinitionArn = definition.Arn,
            Family = definition.Family,
            ContainerInstanceId = worker.Identity.InstanceId,
            LastStatus = "PROVISIONING",
            DesiredStatus = "RUNNING",
            StartedBy = start.StartedBy,
            Containers = definition.ContainerDefinitions.Select(c => new TaskContainer
            {
                Name = c["name"]!.GetValue<string>(),
                Id = Guid.NewGuid().ToString(),
                Image = c["image"]!.GetValue<string>(),
            }).ToList(),
            Attachment = Serverless.Core.Capacity.NetworkAttachment.ForTask(id, new AwsVpcConfiguration([start.SubnetId!], [], "DISABLED")),
            CreatedAt = DateTimeOffset.UtcNow,
        }, worker.Stopping);
    }

    private static Task<IList<NetworkResponse>> SubnetNetworksAsync(WorkerHarness worker)
        => SubnetNetworksAsync(worker.Docker, worker.Identity.InstanceId);

    private static Task<IList<NetworkResponse>> SubnetNetworksAsync(global::Docker.DotNet.IDockerClient docker, string instanceId)
        => docker.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool>
                {
                    [$"{DockerLabels.InstanceId}={instanceId}"] = true,
                    [$"{TaskNetworkPlan.SubnetLabel}={Subnet}"] = true,
                },
            },
        });

    /// <summary>Runs <paramref name="command"/> in a container of the task; fails unless it exits 0.</summary>
    private static async Task ExecAsync(WorkerHarness worker, string taskArn, string container, string command)
    {
        var id = (await worker.ContainersAsync(taskArn)).Single(c => DockerLabels.Get(c.Labels, DockerLabels.ContainerName) == container).ID;
        var exec = await worker.Docker.Exec.ExecCreateContainerAsync(id, new ContainerExecCreateParameters { Cmd = ["sh", "-c", command] });
        using (var stream = await worker.Docker.Exec.StartAndAttachContainerExecAsync(exec.ID, tty: false))
            await stream.ReadOutputToEndAsync(CancellationToken.None);
        var inspected = await worker.Docker.Exec.InspectContainerExecAsync(exec.ID);
        Assert.True(inspected.ExitCode == 0, $"'{command}' in {container} exited {inspected.ExitCode}");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string failure)
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTimeOffset.UtcNow > deadline) throw new TimeoutException(failure);
            await Task.Delay(100);
        }
    }
}
