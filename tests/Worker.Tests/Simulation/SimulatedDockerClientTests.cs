using System.Net;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Serverless.Worker.Simulation;

namespace Serverless.Worker.Tests.Simulation;

public sealed class SimulatedDockerClientTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));
    private readonly SimulatedDockerClient _docker;

    public SimulatedDockerClientTests() => _docker = new SimulatedDockerClient(new SimulatedEngine(_time, TimeSpan.FromSeconds(2)));

    private static CreateContainerParameters Container(string name, string instance = "i-1", string task = "t-1", HealthConfig? health = null) => new()
    {
        Name = name,
        Image = "local/busybox:latest",
        Labels = new Dictionary<string, string> { ["ecs-worker.instance-id"] = instance, ["ecs-worker.task-arn"] = task },
        Healthcheck = health,
        HostConfig = new HostConfig
        {
            PortBindings = new Dictionary<string, IList<PortBinding>> { ["80/tcp"] = [new PortBinding { HostPort = "" }] },
        },
    };

    private (List<Message> Events, CancellationTokenSource Stop) Follow(string? label = null)
    {
        var events = new List<Message>();
        var stop = new CancellationTokenSource();
        var filters = new Dictionary<string, IDictionary<string, bool>> { ["type"] = new Dictionary<string, bool> { ["container"] = true } };
        if (label is not null) filters["label"] = new Dictionary<string, bool> { [label] = true };
        _ = _docker.System.MonitorEventsAsync(new ContainerEventsParameters { Filters = filters }, new Inline(m => { lock (events) events.Add(m); }), stop.Token);
        return (events, stop);
    }

    [Fact]
    public async Task A_container_runs_only_after_the_start_delay_and_its_start_is_an_event()
    {
        var (events, stop) = Follow();
        var id = (await _docker.Containers.CreateContainerAsync(Container("a"))).ID;

        var starting = _docker.Containers.StartContainerAsync(id, new ContainerStartParameters());
        Assert.False(starting.IsCompleted);
        Assert.Equal("created", (await _docker.Containers.InspectContainerAsync(id)).State.Status);

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(await starting);
        var inspected = await _docker.Containers.InspectContainerAsync(id);
        Assert.True(inspected.State.Running);
        Assert.Equal("2026-12-02T12:00:02.0000000Z", inspected.State.StartedAt);
        // A dynamic host port is bound, as Docker binds one.
        Assert.Matches("^[0-9]+$", inspected.NetworkSettings.Ports["80/tcp"].Single().HostPort);
        Assert.Equal(["start"], events.Select(e => e.Action));
        Assert.Equal(id, events[0].Actor.ID);
        Assert.Equal("t-1", events[0].Actor.Attributes["ecs-worker.task-arn"]);
        stop.Cancel();
    }

    [Fact]
    public async Task A_stop_ends_the_process_with_SIGTERMs_exit_code_and_a_second_stop_does_nothing()
    {
        var (events, stop) = Follow();
        var id = await RunningAsync("a");

        Assert.True(await _docker.Containers.StopContainerAsync(id, new ContainerStopParameters()));
        Assert.False(await _docker.Containers.StopContainerAsync(id, new ContainerStopParameters()));

        var state = (await _docker.Containers.InspectContainerAsync(id)).State;
        Assert.Equal(("exited", false, 143L), (state.Status, state.Running, state.ExitCode));
        var died = Assert.Single(events, e => e.Action == "die");
        Assert.Equal("143", died.Actor.Attributes["exitCode"]);
        stop.Cancel();
    }

    [Fact]
    public async Task Exit_ends_a_running_container_with_the_given_code_and_a_kill_refuses_a_stopped_one()
    {
        var (events, stop) = Follow();
        var id = await RunningAsync("a");

        Assert.True(_docker.Engine.Exit(id, 3));
        Assert.False(_docker.Engine.Exit(id, 4));

        Assert.Equal(3, (await _docker.Containers.InspectContainerAsync(id)).State.ExitCode);
        Assert.Equal("3", Assert.Single(events, e => e.Action == "die").Actor.Attributes["exitCode"]);
        var refused = await Assert.ThrowsAsync<DockerApiException>(() => _docker.Containers.KillContainerAsync(id, new ContainerKillParameters()));
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        stop.Cancel();
    }

    [Fact]
    public async Task A_running_container_is_removed_only_by_force_which_kills_it_then_destroys_it()
    {
        var (events, stop) = Follow();
        var id = await RunningAsync("a");

        var refused = await Assert.ThrowsAsync<DockerApiException>(() => _docker.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters()));
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);

        await _docker.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true });
        Assert.Equal(["start", "die", "destroy"], events.Select(e => e.Action));
        Assert.Equal("137", events[1].Actor.Attributes["exitCode"]);
        await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => _docker.Containers.InspectContainerAsync(id));
        await Assert.ThrowsAsync<DockerContainerNotFoundException>(() => _docker.Containers.StopContainerAsync(id, new ContainerStopParameters()));
        stop.Cancel();
    }

    [Fact]
    public async Task A_container_with_a_health_check_turns_healthy_when_it_starts()
    {
        var (events, stop) = Follow();
        var id = (await _docker.Containers.CreateContainerAsync(Container("a", health: new HealthConfig { Test = ["CMD-SHELL", "true"] }))).ID;
        var starting = _docker.Containers.StartContainerAsync(id, new ContainerStartParameters());
        _time.Advance(TimeSpan.FromSeconds(2));
        await starting;

        Assert.Equal("healthy", (await _docker.Containers.InspectContainerAsync(id)).State.Health.Status);
        Assert.Equal(["start", "health_status: healthy"], events.Select(e => e.Action));
        stop.Cancel();
    }

    [Fact]
    public async Task Lists_and_event_streams_keep_to_their_label_filters()
    {
        var (mine, stop) = Follow("ecs-worker.instance-id=i-1");
        var a = await RunningAsync("a", instance: "i-1");
        var b = await RunningAsync("b", instance: "i-2");
        var c = (await _docker.Containers.CreateContainerAsync(Container("c", instance: "i-1"))).ID;

        var filter = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { ["ecs-worker.instance-id=i-1"] = true } };
        Assert.Equal([a], (await _docker.Containers.ListContainersAsync(new ContainersListParameters { Filters = filter })).Select(x => x.ID));
        Assert.Equal([c, a], (await _docker.Containers.ListContainersAsync(new ContainersListParameters { All = true, Filters = filter })).Select(x => x.ID).OrderBy(x => x == a));
        // Two label filters must both hold.
        filter["label"]["ecs-worker.task-arn=other"] = true;
        Assert.Empty(await _docker.Containers.ListContainersAsync(new ContainersListParameters { All = true, Filters = filter }));
        Assert.Equal([a], mine.Select(e => e.Actor.ID));
        Assert.NotEqual(a, b);
        stop.Cancel();
    }

    [Fact]
    public async Task A_stream_that_asks_for_events_since_a_moment_gets_the_ones_it_missed()
    {
        var since = _time.GetUtcNow();
        var id = await RunningAsync("a");
        _docker.Engine.Exit(id, 0);

        var events = new List<Message>();
        using var stop = new CancellationTokenSource();
        var stream = _docker.System.MonitorEventsAsync(
            new ContainerEventsParameters { Since = Serverless.Worker.Docker.DockerEventWatcher.UnixTime(since) }, new Inline(events.Add), stop.Token);

        Assert.Equal(["start", "die"], events.Select(e => e.Action));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stream);
    }

    [Fact]
    public async Task The_stream_form_carries_the_same_events_as_lines_until_cancelled()
    {
        using var stop = new CancellationTokenSource();
#pragma warning disable CS0618 // the form the worker's watcher reads
        var stream = await _docker.System.MonitorEventsAsync(new ContainerEventsParameters(), stop.Token);
#pragma warning restore CS0618
        var events = new List<Message>();
        var reading = Serverless.Worker.Docker.DockerEventLines.ReadAsync(stream, m => { lock (events) events.Add(m); }, _ => { }, stop.Token);

        var id = await RunningAsync("a");
        _docker.Engine.Exit(id, 3);
        for (var waited = 0; waited < 300 && events.Count < 2; waited++) await Task.Delay(100);

        lock (events)
        {
            Assert.Equal(["start", "die"], events.Select(e => e.Action));
            Assert.Equal(id, events[1].Actor.ID);
            Assert.Equal("3", events[1].Actor.Attributes["exitCode"]);
        }
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
    }

    [Fact]
    public async Task Stats_read_a_running_containers_cpu_and_memory()
    {
        var id = await RunningAsync("a");
        _time.Advance(TimeSpan.FromSeconds(10));
        ContainerStatsResponse? stats = null;
        await _docker.Containers.GetContainerStatsAsync(id, new ContainerStatsParameters { Stream = false, OneShot = true }, new InlineStats(s => stats = s));

        Assert.NotNull(stats);
        Assert.Equal(32UL << 20, stats.MemoryStats.Usage);
        // A tenth of a core for ten seconds: one second of CPU, in nanoseconds.
        Assert.Equal(1_000_000_000UL, stats.CPUStats.CPUUsage.TotalUsage);
    }

    [Fact]
    public async Task An_operation_the_worker_does_not_use_says_so()
    {
        var refused = await Assert.ThrowsAsync<NotSupportedException>(() => _docker.Containers.PauseContainerAsync("x"));
        Assert.Contains("simulated", refused.Message);
        Assert.Contains("PauseContainerAsync", refused.Message);
        Assert.Throws<NotSupportedException>(() => _docker.Swarm);
    }

    [Theory]
    [InlineData(null, typeof(DockerClient))]
    [InlineData("docker", typeof(DockerClient))]
    [InlineData("simulated", typeof(SimulatedDockerClient))]
    public void The_engine_is_Docker_unless_a_setting_asks_for_the_simulated_one(string? engine, Type expected)
    {
        var settings = new Dictionary<string, string?> { ["Worker:InstanceId"] = new string('a', 32) };
        if (engine is not null) settings["Worker:Engine"] = engine;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new WorkerOptions();
        configuration.GetSection("Worker").Bind(options);
        var services = new ServiceCollection().AddSingleton(TimeProvider.System).AddContainerEngine(options);
        using var provider = services.BuildServiceProvider();
        Assert.IsType(expected, provider.GetRequiredService<IDockerClient>());
    }

    [Fact]
    public void An_unknown_engine_is_refused()
        => Assert.Throws<InvalidOperationException>(() => new ServiceCollection().AddContainerEngine(new WorkerOptions { Engine = "simulate" }));

    private async Task<string> RunningAsync(string name, string instance = "i-1")
    {
        var id = (await _docker.Containers.CreateContainerAsync(Container(name, instance))).ID;
        var starting = _docker.Containers.StartContainerAsync(id, new ContainerStartParameters());
        _time.Advance(TimeSpan.FromSeconds(2));
        await starting;
        return id;
    }

    private sealed class Inline(Action<Message> report) : IProgress<Message>
    {
        public void Report(Message value) => report(value);
    }

    private sealed class InlineStats(Action<ContainerStatsResponse> report) : IProgress<ContainerStatsResponse>
    {
        public void Report(ContainerStatsResponse value) => report(value);
    }
}
