using System.Net.Http;
using Docker.DotNet.Models;
using Serverless.Worker.Docker;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Capacity;

/// <summary>awsvpc tasks on the real engine: one network per task, one namespace shared by its containers, nothing left behind.</summary>
public sealed class AwsVpcDockerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>
{
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
    public async Task An_awsvpc_task_has_its_own_network_its_containers_share_localhost_and_both_go_with_it()
    {
        await using var worker = await WorkerHarness.StartAsync(fixture, output);
        var definition = await worker.RegisterAsync(TwoContainers.Replace("%FAMILY%", "vpc-pair", StringComparison.Ordinal));
        var start = worker.StartCommand(definition);

        await worker.Runner.StartAsync(start, redelivered: false, worker.Stopping);
        var reached = await Events.WaitForAsync(start.TaskArn, r => r.Containers.Any(c => c.Name == "client" && c.LastStatus == "STOPPED"), worker.Stopping);

        // The client exited 0: it reached the web container on localhost. The pause container is never reported.
        Assert.Equal(0, reached.Containers.Single(c => c.Name == "client").ExitCode);
        Assert.Equal(["web", "client"], reached.Containers.Select(c => c.Name));
        Assert.Equal("RUNNING", reached.LastStatus);
        var eni = reached.NetworkInterface;
        Assert.NotNull(eni);
        Assert.Empty(reached.Containers.Single(c => c.Name == "web").NetworkBindings);

        // The task's own network, labelled as the worker's, holds the reported address; the web container shares its namespace.
        var network = Assert.Single(await NetworksAsync(worker, start.TaskArn));
        Assert.Equal(TaskNetworkPlan.NameFor(TaskRunner.TaskIdOf(start.TaskArn)), network.Name);
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
        await WaitUntilAsync(async () => (await NetworksAsync(worker, start.TaskArn)).Count == 0, "the task's network was not removed");
    }

    [Fact]
    public async Task A_restarted_worker_removes_the_network_of_a_task_that_is_gone_and_keeps_the_one_it_adopts()
    {
        var first = await WorkerHarness.StartAsync(fixture, output);
        var definition = await first.RegisterAsync(TwoContainers.Replace("%FAMILY%", "vpc-adopt", StringComparison.Ordinal));
        var keep = first.StartCommand(definition);
        var gone = first.StartCommand(definition);
        await first.InsertTaskRowAsync(keep, definition);
        await first.Runner.StartAsync(keep, false, first.Stopping);
        await first.Runner.StartAsync(gone, false, first.Stopping);
        var kept = await Events.WaitForStatusAsync(keep.TaskArn, "RUNNING", first.Stopping);
        await Events.WaitForStatusAsync(gone.TaskArn, "RUNNING", first.Stopping);
        // A crash right after a network was made for a task whose containers never came: its network alone is left.
        var stray = $"{first.Identity.InstanceId[..8]}-stray";
        var strayArn = first.NewTaskArn("vpc-stray");
        await first.Docker.Networks.CreateNetworkAsync(new NetworksCreateParameters
        {
            Name = TaskNetworkPlan.NameFor(TaskRunner.TaskIdOf(strayArn)),
            Labels = new Dictionary<string, string> { [DockerLabels.InstanceId] = first.Identity.InstanceId, [DockerLabels.TaskArn] = strayArn },
        });
        var (instanceId, prefix) = (first.Identity.InstanceId, first.StoragePrefix);
        await first.DisposeAsync();

        await using var second = await WorkerHarness.StartAsync(fixture, output, instanceId, prefix);
        await second.Adoption.RunAsync(second.Stopping);

        await Events.WaitForStatusAsync(gone.TaskArn, "STOPPED", second.Stopping);
        await second.WaitUntilRemovedAsync(gone.TaskArn);
        await WaitUntilAsync(async () => (await NetworksAsync(second, gone.TaskArn)).Count == 0, "the gone task's network was not removed");
        await WaitUntilAsync(async () => (await NetworksAsync(second, strayArn)).Count == 0, $"the stray network {stray} was not removed");

        // The adopted task keeps its network and address, and still gives them back when it stops.
        Assert.Single(await NetworksAsync(second, keep.TaskArn));
        var readopted = await Events.WaitForAsync(keep.TaskArn, r => r.LastStatus == "RUNNING" && r.ObservedAt > kept.ObservedAt, second.Stopping);
        Assert.Equal(kept.NetworkInterface, readopted.NetworkInterface);
        await second.Runner.StopAsync(WorkerHarness.StopCommand(keep.TaskArn), second.Stopping);
        await Events.WaitForStatusAsync(keep.TaskArn, "STOPPED", second.Stopping);
        await second.WaitUntilRemovedAsync(keep.TaskArn);
        await WaitUntilAsync(async () => (await NetworksAsync(second, keep.TaskArn)).Count == 0, "the adopted task's network was not removed");
    }

    private static async Task<IList<NetworkResponse>> NetworksAsync(WorkerHarness worker, string taskArn)
        => await worker.Docker.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["label"] = new Dictionary<string, bool>
                {
                    [$"{DockerLabels.InstanceId}={worker.Identity.InstanceId}"] = true,
                    [$"{DockerLabels.TaskArn}={taskArn}"] = true,
                },
            },
        });

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string failure)
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            if (DateTimeOffset.UtcNow > deadline) throw new TimeoutException(failure);
            await Task.Delay(100);
        }
    }
}
