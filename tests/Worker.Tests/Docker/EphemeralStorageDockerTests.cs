using Serverless.Core.Tasks;
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
        await using var worker = await WorkerHarness.StartAsync(fixture, output, configure: o => o.DockerEndpoint = engine.Endpoint);
        var token = worker.Stopping;

        // The worker decides from its engine's docker info as it registers, and advertises it.
        var host = await worker.Registration.DescribeHostAsync(token);
        Assert.Contains(host.Attributes, a => a.Name == EngineStorage.Attribute);
        Assert.True(worker.Get<EngineStorage>().SizesWritableLayers);

        // Through the worker's own start: the container's layer holds 21 GiB, and 22 do not fit.
        var sized = await RunAsync(worker, """"{"sizeInGiB": 21}"""", token);
        Assert.Equal(42, sized.ExitCode);

        // The control: the same writes in a task without ephemeralStorage fit (the filesystem has room; it was the limit).
        var unsized = await RunAsync(worker, null, token);
        Assert.Equal(0, unsized.ExitCode);
    }

    /// <summary>Runs a one-container task of <see cref="Fill"/> with the worker's runner and returns its container as it stopped.</summary>
    private async Task<ContainerStateChange> RunAsync(WorkerHarness worker, string? ephemeralStorage, CancellationToken token)
    {
        var storage = ephemeralStorage is null ? "" : $"\"ephemeralStorage\": {ephemeralStorage},";
        var definition = await worker.RegisterAsync($$"""
            {"family": "scratch", "networkMode": "none", {{storage}}
             "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 64, "command": ["sh", "-c", "{{Fill}}"]}]}
            """);
        var start = worker.StartCommand(definition);
        await worker.Runner.StartAsync(start, redelivered: false, token);
        var stopped = await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", token, TimeSpan.FromMinutes(2));
        return Assert.Single(stopped.Containers);
    }
}
