using Docker.DotNet.Models;
using Serverless.Worker.Docker;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Docker;

/// <summary>
/// A task's <c>ephemeralStorage</c> on an engine that sizes writable layers: a second dockerd of this
/// test's own (<see cref="SizedEngine"/>, on xfs with pquota or btrfs), reached through the worker's
/// <see cref="WorkerOptions.DockerEndpoint"/>.
/// </summary>
public sealed class EphemeralStorageDockerTests(WorkerFixture fixture, SizedEngine engine, ITestOutputHelper output)
    : IClassFixture<WorkerFixture>, IClassFixture<SizedEngine>
{
    /// <summary>
    /// 20 GiB, then 2 GiB more (22 GiB in all, more than the task's 21): exit 0 when both fit, 42 when
    /// the second is refused for the quota (btrfs: EDQUOT; xfs project quota: ENOSPC). fallocate reserves
    /// the space without writing it, so this takes a moment and almost no real disk (the filesystem is a
    /// sparse 64 GiB file).
    /// </summary>
    private const string Fill = "fallocate -l 20G /first || exit 10; if fallocate -l 2G /second 2>/err; then exit 0; fi; " +
                                "grep -qiE 'quota|no space' /err && exit 42; cat /err; exit 11";

    [SizedEngineFact]
    public async Task A_task_with_ephemeral_storage_gets_containers_whose_writable_layer_holds_that_much_and_no_more()
    {
        output.WriteLine($"sized engine: {engine.Driver} at {engine.Endpoint}");
        await using var worker = await WorkerHarness.StartAsync(fixture, output, configure: o => o.DockerEndpoint = engine.Endpoint, watchEvents: false);
        var token = worker.Stopping;

        // The worker decides from its engine's docker info as it registers, and advertises it.
        var host = await worker.Registration.DescribeHostAsync(token);
        Assert.Contains(host.Attributes, a => a.Name == EngineStorage.Attribute);
        var storage = worker.Get<EngineStorage>();
        Assert.True(storage.SizesWritableLayers);

        var definition = await worker.RegisterAsync($$"""
            {"family": "scratch", "networkMode": "none", "ephemeralStorage": {"sizeInGiB": 21},
             "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 64, "command": ["sh", "-c", "{{Fill}}"]}]}
            """);
        var described = (await worker.Get<TaskDefinitionCache>().FindAsync(definition.Arn, token))!.TaskDefinition;
        var context = new TaskContext(WorkerHarness.Cluster, worker.NewTaskArn("scratch"), worker.Identity.InstanceId);

        // As the worker plans the task on this engine: the container's layer holds 21 GiB, and 22 do not fit.
        var sized = TaskTranslation.Plan(described, context, null, "51ced0", PlanDefaults.Agent with { SizeWritableLayers = storage.SizesWritableLayers }).Containers.Single();
        var (sizedExit, sizedInspect) = await RunAsync(worker, sized);
        Assert.Equal("21G", sizedInspect.HostConfig.StorageOpt["size"]);
        Assert.Equal(42, sizedExit);

        // The control: the same writes in a container without a size fit (the filesystem has room; it was the limit).
        var unsized = TaskTranslation.Plan(described, context, null, "0151ce", PlanDefaults.Agent).Containers.Single();
        var (unsizedExit, unsizedInspect) = await RunAsync(worker, unsized);
        Assert.True(unsizedInspect.HostConfig.StorageOpt is null or { Count: 0 });
        Assert.Equal(0, unsizedExit);
    }

    /// <summary>Creates and starts the planned container on the worker's engine, waits for it to exit, then removes it.</summary>
    private static async Task<(long Exit, ContainerInspectResponse Inspected)> RunAsync(WorkerHarness worker, ContainerPlan plan)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(worker.Stopping);
        deadline.CancelAfter(TimeSpan.FromMinutes(2));
        var created = await worker.Docker.Containers.CreateContainerAsync(plan.Parameters, deadline.Token);
        try
        {
            await worker.Docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), deadline.Token);
            var exited = await worker.Docker.Containers.WaitContainerAsync(created.ID, deadline.Token);
            return (exited.StatusCode, await worker.Docker.Containers.InspectContainerAsync(created.ID, deadline.Token));
        }
        finally
        {
            await worker.Docker.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters { Force = true }, CancellationToken.None);
        }
    }
}
