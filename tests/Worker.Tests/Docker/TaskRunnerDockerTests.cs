using System.Globalization;
using Docker.DotNet;
using Docker.DotNet.Models;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Docker;

/// <summary>The task runner against the real Docker engine, with local/busybox:latest.</summary>
public sealed class TaskRunnerDockerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>, IAsyncLifetime
{
    private const long MiB = 1024 * 1024;
    private WorkerHarness _worker = null!;

    private TaskEventsProbe Events => fixture.Events;
    private CancellationToken Token => _worker.Stopping;

    public async Task InitializeAsync() => _worker = await WorkerHarness.StartAsync(fixture, output);

    public async Task DisposeAsync() => await _worker.DisposeAsync();

    [Fact]
    public async Task A_task_runs_with_its_limits_environment_labels_and_the_port_docker_picked()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "limits", "containerDefinitions": [{
              "name": "app", "image": "local/busybox:latest", "cpu": 256, "memory": 64, "memoryReservation": 32,
              "command": ["sleep", "300"], "stopTimeout": 1, "workingDirectory": "/tmp", "user": "65534",
              "environment": [{"name": "MODE", "value": "test"}, {"name": "KEEP", "value": "yes"}],
              "dockerLabels": {"team": "blue"},
              "portMappings": [{"containerPort": 8080}]}]}
            """);
        var start = _worker.StartCommand(definition, """{"containerOverrides": [{"name": "app", "environment": [{"name": "MODE", "value": "override"}]}]}""");

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var running = await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);

        var app = Assert.Single(running.Containers);
        Assert.Equal("RUNNING", app.LastStatus);
        Assert.NotNull(running.StartedAt);
        Assert.Equal(_worker.Identity.ContainerInstanceArn, running.ContainerInstanceArn);
        var inspected = await _worker.InspectAsync(app.RuntimeId!);
        Assert.StartsWith("/ecs-limits-1-app-", inspected.Name);
        Assert.Equal(256, inspected.HostConfig.CPUShares);
        Assert.Equal(64 * MiB, inspected.HostConfig.Memory);
        Assert.Equal(32 * MiB, inspected.HostConfig.MemoryReservation);
        Assert.Equal("/tmp", inspected.Config.WorkingDir);
        Assert.Equal("65534", inspected.Config.User);
        Assert.Contains("MODE=override", inspected.Config.Env);
        Assert.Contains("KEEP=yes", inspected.Config.Env);
        Assert.Equal("blue", inspected.Config.Labels["team"]);
        Assert.Equal(start.TaskArn, inspected.Config.Labels["com.amazonaws.ecs.task-arn"]);
        Assert.Equal("app", inspected.Config.Labels["com.amazonaws.ecs.container-name"]);
        Assert.Equal("limits", inspected.Config.Labels["com.amazonaws.ecs.task-definition-family"]);
        Assert.Equal("1", inspected.Config.Labels["com.amazonaws.ecs.task-definition-version"]);
        Assert.Equal(_worker.Identity.InstanceId, inspected.Config.Labels["ecs-worker.instance-id"]);

        // Host port 0: Docker picked one, and the report says which.
        var binding = Assert.Single(app.NetworkBindings);
        var published = inspected.NetworkSettings.Ports["8080/tcp"].First(p => p.HostIP == "0.0.0.0");
        Assert.Equal(8080, binding.ContainerPort);
        Assert.NotEqual(0, binding.HostPort);
        Assert.Equal(int.Parse(published.HostPort, CultureInfo.InvariantCulture), binding.HostPort);
        Assert.Equal(("0.0.0.0", "tcp"), (binding.BindIP, binding.Protocol));

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
        Assert.Null(stopped.StopCode);
        Assert.Equal("Task stopped by the test", stopped.StoppedReason);
        Assert.Equal(137, Assert.Single(stopped.Containers).ExitCode); // busybox sleep ignores SIGTERM as PID 1: killed after stopTimeout
        await _worker.WaitUntilRemovedAsync(start.TaskArn);
    }

    [Fact]
    public async Task A_fast_start_reports_RUNNING_without_a_PENDING_first()
    {
        // The worker's own default delay: the harness's 1 s is shorter than a start on a busy engine here.
        await using var worker = await WorkerHarness.StartAsync(fixture, output,
            configure: o => o.TransitionReportDelayMilliseconds = new WorkerOptions().TransitionReportDelayMilliseconds);
        var definition = await worker.RegisterAsync("""
            {"family": "fast", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        var start = worker.StartCommand(definition);

        await worker.Runner.StartAsync(start, redelivered: false, Token);
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);
        await Task.Delay(1500);

        var reports = await Events.ReportsAsync(start.TaskArn, Token);
        Assert.Equal(["RUNNING"], reports.Select(r => r.LastStatus));
        await worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task An_essential_container_exit_stops_the_task_with_its_exit_code()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "exits", "containerDefinitions": [
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sh", "-c", "sleep 1; exit 3"]},
              {"name": "sidecar", "image": "local/busybox:latest", "memory": 32, "essential": false, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);

        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        Assert.Equal("Essential container in task exited", stopped.StoppedReason);
        Assert.NotNull(stopped.ExecutionStoppedAt);
        Assert.Equal(3, stopped.Containers.Single(c => c.Name == "app").ExitCode);
        Assert.Equal(137, stopped.Containers.Single(c => c.Name == "sidecar").ExitCode);
        Assert.All(stopped.Containers, c => Assert.Equal("STOPPED", c.LastStatus));
        Assert.Contains(await Events.ReportsAsync(start.TaskArn, Token), r => r.LastStatus == "RUNNING");
        await _worker.WaitUntilRemovedAsync(start.TaskArn);
    }

    [Fact]
    public async Task A_non_essential_exit_is_reported_while_the_task_keeps_running()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "sidecar-exits", "containerDefinitions": [
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1},
              {"name": "job", "image": "local/busybox:latest", "memory": 32, "essential": false, "command": ["sh", "-c", "sleep 1.5; exit 4"]}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var report = await Events.WaitForAsync(start.TaskArn, r => r.Containers.Any(c => c.Name == "job" && c.LastStatus == "STOPPED"), Token);

        Assert.Equal("RUNNING", report.LastStatus);
        Assert.Equal(4, report.Containers.Single(c => c.Name == "job").ExitCode);
        Assert.Equal("RUNNING", report.Containers.Single(c => c.Name == "app").LastStatus);
        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task A_pull_failure_stops_the_task_with_CannotPullContainerError()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "unpullable", "containerDefinitions": [{"name": "app", "image": "nonexistent.invalid/none:1", "memory": 32}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);

        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.StartsWith("CannotPullContainerError: ", stopped.StoppedReason);
        Assert.Contains("nonexistent.invalid", stopped.StoppedReason);
        Assert.StartsWith("CannotPullContainerError: ", Assert.Single(stopped.Containers).Reason);
        Assert.NotNull(stopped.PullStartedAt);
        Assert.NotNull(stopped.PullStoppedAt);
        Assert.Empty(await _worker.ContainersAsync(start.TaskArn));
    }

    [Fact]
    public async Task An_image_removed_after_a_task_used_it_is_looked_for_again_by_the_next_start()
    {
        // The worker skips looking for an image it has seen; a create that misses it must pull (here: fail to).
        var tag = Guid.NewGuid().ToString("N");
        await fixture.Docker.Images.TagImageAsync("local/busybox:latest", new ImageTagParameters { RepositoryName = "nonexistent.invalid/busybox", Tag = tag });
        var definition = await _worker.RegisterAsync($$"""
            {"family": "vanishing", "containerDefinitions": [{"name": "app", "image": "nonexistent.invalid/busybox:{{tag}}", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        var first = _worker.StartCommand(definition);
        await _worker.Runner.StartAsync(first, redelivered: false, Token);
        await Events.WaitForStatusAsync(first.TaskArn, "RUNNING", Token);
        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(first.TaskArn), Token);
        await Events.WaitForStatusAsync(first.TaskArn, "STOPPED", Token);
        await _worker.WaitUntilRemovedAsync(first.TaskArn);
        await fixture.Docker.Images.DeleteImageAsync($"nonexistent.invalid/busybox:{tag}", new ImageDeleteParameters());

        var second = _worker.StartCommand(definition);
        await _worker.Runner.StartAsync(second, redelivered: false, Token);
        var stopped = await Events.WaitForStatusAsync(second.TaskArn, "STOPPED", Token);

        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.StartsWith("CannotPullContainerError: ", stopped.StoppedReason);
        Assert.Empty(await _worker.ContainersAsync(second.TaskArn));
    }

    private const string PrivilegedDefinition = """
        {"family": "privileged", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32,
          "command": ["sleep", "300"], "stopTimeout": 1, "privileged": true}]}
        """;

    [Fact]
    public async Task A_privileged_task_on_a_default_worker_stops_with_a_reason_naming_the_setting()
    {
        var definition = await _worker.RegisterAsync(PrivilegedDefinition);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);

        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.Equal("CannotCreateContainerError: privileged containers are disabled on this worker (Worker__AllowPrivileged=false)", stopped.StoppedReason);
        Assert.Equal(stopped.StoppedReason, Assert.Single(stopped.Containers).Reason);
        Assert.Empty(await _worker.ContainersAsync(start.TaskArn));
    }

    [Fact]
    public async Task A_privileged_task_runs_privileged_on_a_worker_that_allows_it()
    {
        await using var allowing = await WorkerHarness.StartAsync(fixture, output, configure: o =>
        {
            o.AllowPrivileged = true;
            o.TaskCleanupWaitSeconds = 300; // keep the container to look at, should the engine refuse it
        });
        var definition = await allowing.RegisterAsync(PrivilegedDefinition);
        var start = allowing.StartCommand(definition);

        await allowing.Runner.StartAsync(start, redelivered: false, allowing.Stopping);
        var reported = await Events.WaitForAsync(start.TaskArn, r => r.LastStatus is "RUNNING" or "STOPPED", allowing.Stopping);

        // The worker created it privileged: it was not refused.
        var app = Assert.Single(reported.Containers);
        Assert.True((await allowing.InspectAsync(app.RuntimeId!)).HostConfig.Privileged);
        if (reported.LastStatus == "STOPPED")
        {
            // An engine that itself runs in a container without every capability (as on these
            // test machines) cannot start any privileged container: then the task fails exactly
            // as a raw `docker run --privileged` does, with the engine's words, not the worker's.
            Assert.False(await EngineRunsPrivilegedAsync(), $"The engine runs privileged containers, yet the task stopped: {reported.StoppedReason}");
            Assert.Equal("TaskFailedToStart", reported.StopCode);
            Assert.StartsWith("CannotStartContainerError: Error response from daemon: ", reported.StoppedReason);
            Assert.DoesNotContain("Worker__", reported.StoppedReason);
            return;
        }
        await allowing.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), allowing.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", allowing.Stopping);
    }

    /// <summary>Whether this engine can start a privileged container at all (a raw create and start, no worker).</summary>
    private async Task<bool> EngineRunsPrivilegedAsync()
    {
        var created = await _worker.Docker.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Image = "local/busybox:latest", Cmd = ["true"], HostConfig = new HostConfig { Privileged = true },
        }, Token);
        try
        {
            await _worker.Docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), Token);
            return true;
        }
        catch (global::Docker.DotNet.DockerApiException)
        {
            return false;
        }
        finally
        {
            await _worker.Docker.Containers.RemoveContainerAsync(created.ID, new ContainerRemoveParameters { Force = true }, Token);
        }
    }

    [Fact]
    public async Task An_init_container_that_succeeds_runs_to_completion_before_the_app_starts()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "init-ok", "containerDefinitions": [
              {"name": "init", "image": "local/busybox:latest", "memory": 32, "essential": false, "command": ["sh", "-c", "sleep 1"]},
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1,
               "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var running = await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);

        var init = running.Containers.Single(c => c.Name == "init");
        var app = running.Containers.Single(c => c.Name == "app");
        Assert.Equal(("STOPPED", 0), (init.LastStatus, init.ExitCode));
        Assert.Equal("RUNNING", app.LastStatus);
        var initFinished = DateTimeOffset.Parse((await _worker.InspectAsync(init.RuntimeId!)).State.FinishedAt, CultureInfo.InvariantCulture);
        var appStarted = DateTimeOffset.Parse((await _worker.InspectAsync(app.RuntimeId!)).State.StartedAt, CultureInfo.InvariantCulture);
        Assert.True(appStarted >= initFinished, $"app started at {appStarted:O}, before init finished at {initFinished:O}");

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task An_init_container_that_fails_fails_the_task_and_the_app_never_starts()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "init-fails", "containerDefinitions": [
              {"name": "init", "image": "local/busybox:latest", "memory": 32, "essential": false, "command": ["sh", "-c", "exit 2"]},
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"],
               "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);

        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.Equal(
            "CannotStartContainerError: dependency graph: failed to resolve container ordering dependency [init] for target [app] as dependency did not exit successfully.",
            stopped.StoppedReason);
        Assert.Equal(2, stopped.Containers.Single(c => c.Name == "init").ExitCode);
        var app = stopped.Containers.Single(c => c.Name == "app");
        Assert.Equal("STOPPED", app.LastStatus);
        Assert.Null(app.ExitCode);
        Assert.DoesNotContain(await Events.ReportsAsync(start.TaskArn, Token), r => r.LastStatus == "RUNNING");
    }

    [Fact]
    public async Task A_health_check_makes_the_container_and_the_task_HEALTHY()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "healthy", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32,
              "command": ["sleep", "300"], "stopTimeout": 1,
              "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 1, "timeout": 10, "retries": 5}}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var healthy = await Events.WaitForAsync(start.TaskArn, r => r.HealthStatus == "HEALTHY", Token);

        Assert.Equal("RUNNING", healthy.LastStatus);
        Assert.Equal("HEALTHY", Assert.Single(healthy.Containers).HealthStatus);
        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task A_container_waits_for_its_dependency_to_be_HEALTHY()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "waits-healthy", "containerDefinitions": [
              {"name": "db", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1,
               "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 1, "timeout": 10, "retries": 5}},
              {"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1,
               "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var running = await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);

        Assert.Equal("HEALTHY", running.Containers.Single(c => c.Name == "db").HealthStatus);
        var db = await _worker.InspectAsync(running.Containers.Single(c => c.Name == "db").RuntimeId!);
        var app = await _worker.InspectAsync(running.Containers.Single(c => c.Name == "app").RuntimeId!);
        var healthyAt = db.State.Health.Log.Where(l => l.ExitCode == 0).Min(l => l.End);
        Assert.True(DateTime.Parse(app.State.StartedAt, CultureInfo.InvariantCulture).ToUniversalTime() >= healthyAt.ToUniversalTime());

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task Stop_lets_a_container_that_handles_SIGTERM_exit_cleanly()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "graceful", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "stopTimeout": 10,
              "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]}
            """);
        var start = _worker.StartCommand(definition);
        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn, "Scaling down"), Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);

        Assert.Equal(0, Assert.Single(stopped.Containers).ExitCode);
        Assert.Equal("Scaling down", stopped.StoppedReason);
        Assert.DoesNotContain(await Events.ReportsAsync(start.TaskArn, Token), r => r.LastStatus == "STOPPING"); // stopped within a second
    }

    [Fact]
    public async Task A_slow_stop_reports_STOPPING_first()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "slow-stop", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 3}]}
            """);
        var start = _worker.StartCommand(definition);
        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);

        // A start slower than the harness's 1 s PENDING delay (a busy engine) reports PENDING first; the stop is what counts here.
        Assert.Equal(["RUNNING", "STOPPING", "STOPPED"],
            (await Events.ReportsAsync(start.TaskArn, Token)).Select(r => r.LastStatus).SkipWhile(s => s == "PENDING"));
        Assert.Equal(137, Assert.Single(stopped.Containers).ExitCode);
    }

    [Fact]
    public async Task A_Stop_sent_again_while_stopping_and_after_stopped_changes_nothing()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "stop-twice", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 2}]}
            """);
        var start = _worker.StartCommand(definition);
        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);

        // The control plane re-sends a Stop it could not confirm (TaskDeadlines.StopResendAfter).
        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn, "first"), Token);
        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn, "second"), Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn, "third"), Token);

        Assert.Equal("first", stopped.StoppedReason);
        Assert.Single(await Events.ReportsAsync(start.TaskArn, Token), r => r.LastStatus == "STOPPED");
        Assert.Equal(137, Assert.Single(stopped.Containers).ExitCode);
    }

    [Fact]
    public async Task Stop_for_a_task_this_worker_never_ran_still_reports_STOPPED()
    {
        var taskArn = _worker.NewTaskArn("never");

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(taskArn, "Stopped before it started"), Token);
        var stopped = await Events.WaitForStatusAsync(taskArn, "STOPPED", Token);

        Assert.Equal("Stopped before it started", stopped.StoppedReason);
        Assert.Empty(stopped.Containers);
    }

    [Fact]
    public async Task A_start_after_the_stop_of_the_same_task_does_not_run_it()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "late-start", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"]}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await _worker.Runner.StartAsync(start, redelivered: false, Token);

        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
        Assert.Empty(await _worker.ContainersAsync(start.TaskArn));
    }

    [Theory]
    [InlineData("PENDING", "STOPPED")]   // told to stop before this worker took the Start
    [InlineData("STOPPED", "STOPPED")]   // given up by the start deadline: its Start's send had no clear answer
    public async Task A_first_start_of_a_task_whose_row_is_desired_STOPPED_does_not_run_it(string lastStatus, string desiredStatus)
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "given-up", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"]}]}
            """);
        var start = _worker.StartCommand(definition);
        await _worker.InsertTaskRowAsync(start, definition, lastStatus, desiredStatus);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);

        Assert.Empty(await _worker.ContainersAsync(start.TaskArn));
        Assert.DoesNotContain(start.TaskArn, _worker.Runner.TaskArns);
        if (lastStatus != "STOPPED") await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task A_duplicate_start_runs_the_task_once()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "twice", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        var start = _worker.StartCommand(definition);

        await Task.WhenAll(_worker.Runner.StartAsync(start, false, Token), _worker.Runner.StartAsync(start, false, Token));
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);

        Assert.Single(await _worker.ContainersAsync(start.TaskArn));
        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
    }

    [Fact]
    public async Task Task_volumes_are_shared_between_containers_and_removed_with_the_task()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "volumes", "volumes": [{"name": "scratch"}],
             "containerDefinitions": [
              {"name": "writer", "image": "local/busybox:latest", "memory": 32, "essential": false,
               "command": ["sh", "-c", "echo hello > /data/greeting"], "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/data"}]},
              {"name": "reader", "image": "local/busybox:latest", "memory": 32,
               "command": ["sh", "-c", "test \"$(cat /data/greeting)\" = hello"], "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/data", "readOnly": true}],
               "dependsOn": [{"containerName": "writer", "condition": "SUCCESS"}]}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);

        Assert.Equal(0, stopped.Containers.Single(c => c.Name == "reader").ExitCode);
        await _worker.WaitUntilRemovedAsync(start.TaskArn);
        var filter = new VolumesListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"com.amazonaws.ecs.task-arn={start.TaskArn}"] = true } },
        };
        for (var i = 0; i < 50 && (await _worker.Docker.Volumes.ListAsync(filter)).Volumes is { Count: > 0 }; i++) await Task.Delay(100);
        Assert.Empty((await _worker.Docker.Volumes.ListAsync(filter)).Volumes ?? []);
    }

    [Fact]
    public async Task In_host_mode_the_container_ports_are_the_hosts()
    {
        // Host networking is refused by default; this worker's settings allow it.
        await using var worker = await WorkerHarness.StartAsync(fixture, output, configure: o => o.AllowHostNetwork = true);
        var definition = await worker.RegisterAsync("""
            {"family": "host-mode", "networkMode": "host", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32,
              "command": ["sleep", "300"], "stopTimeout": 1, "portMappings": [{"containerPort": 18080}]}]}
            """);
        var start = worker.StartCommand(definition);

        await worker.Runner.StartAsync(start, redelivered: false, worker.Stopping);
        var running = await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", worker.Stopping);

        var app = Assert.Single(running.Containers);
        Assert.Equal(new NetworkBinding("0.0.0.0", 18080, 18080, "tcp"), Assert.Single(app.NetworkBindings));
        Assert.Equal("host", (await worker.InspectAsync(app.RuntimeId!)).HostConfig.NetworkMode);
        await worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), worker.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", worker.Stopping);
    }

    [Fact]
    public async Task An_exit_missed_while_the_event_stream_was_down_is_found_by_reconciling()
    {
        await using var deaf = await WorkerHarness.StartAsync(fixture, output, watchEvents: false);
        var definition = await deaf.RegisterAsync("""
            {"family": "missed", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"]}]}
            """);
        var start = deaf.StartCommand(definition);
        await deaf.Runner.StartAsync(start, redelivered: false, deaf.Stopping);
        var running = await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", deaf.Stopping);

        await deaf.Docker.Containers.KillContainerAsync(running.Containers.Single().RuntimeId!, new ContainerKillParameters { Signal = "KILL" });
        await Task.Delay(300);
        Assert.DoesNotContain(await Events.ReportsAsync(start.TaskArn, deaf.Stopping), r => r.LastStatus == "STOPPED");
        await deaf.Runner.ReconcileAsync(deaf.Stopping);

        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", deaf.Stopping);
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        Assert.Equal(137, stopped.Containers.Single().ExitCode);
    }

    [Fact]
    public async Task A_container_created_while_the_reconcile_lists_is_not_taken_for_vanished()
    {
        // The reconcile's list is answered before the task's container exists and compared after.
        var gate = new ListGate();
        await using var deaf = await WorkerHarness.StartAsync(fixture, output, watchEvents: false, wrapDocker: gate.Wrap);
        var definition = await deaf.RegisterAsync("""
            {"family": "reconcile-race", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"], "stopTimeout": 1}]}
            """);
        var start = deaf.StartCommand(definition);

        var reconciling = gate.HoldNextAsync(() => deaf.Runner.ReconcileAsync(deaf.Stopping));
        await gate.Listed.WaitAsync(TimeSpan.FromSeconds(60), deaf.Stopping);
        await deaf.Runner.StartAsync(start, redelivered: false, deaf.Stopping);
        await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", deaf.Stopping);
        gate.Release();
        await reconciling.WaitAsync(TimeSpan.FromSeconds(60), deaf.Stopping);

        // Still running: the stop the test asks for is the one that stops it.
        await deaf.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), deaf.Stopping);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", deaf.Stopping);
        Assert.Null(stopped.StopCode);
        Assert.Equal("Task stopped by the test", stopped.StoppedReason);
        Assert.Null(Assert.Single(stopped.Containers).Reason);
        await deaf.WaitUntilRemovedAsync(start.TaskArn);
    }

    /// <summary>Holds the answer of one list of containers until released (the engine's client otherwise as it is).</summary>
    private sealed class ListGate
    {
        private readonly TaskCompletionSource _listed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _armed;

        /// <summary>Completes once the held list was answered by the engine.</summary>
        public Task Listed => _listed.Task;

        public void Release() => _released.TrySetResult();

        public async Task HoldNextAsync(Func<Task> work)
        {
            Interlocked.Exchange(ref _armed, 1);
            await work();
        }

        public IDockerClient Wrap(IDockerClient inner)
        {
            var containers = Forwarding.Create(inner.Containers, (method, args) =>
                method.Name == nameof(IContainerOperations.ListContainersAsync) && Interlocked.Exchange(ref _armed, 0) == 1
                    ? HeldAsync((Task<IList<ContainerListResponse>>)method.Invoke(inner.Containers, args)!)
                    : Forwarding.Pass);
            return Forwarding.Create(inner, (method, _) => method.Name == "get_" + nameof(IDockerClient.Containers) ? containers : Forwarding.Pass);
        }

        private async Task<IList<ContainerListResponse>> HeldAsync(Task<IList<ContainerListResponse>> listing)
        {
            var listed = await listing;
            _listed.TrySetResult();
            await _released.Task;
            return listed;
        }
    }

    [Fact]
    public async Task An_exit_the_event_stream_never_carries_is_found_by_the_periodic_resync()
    {
        await using var deaf = await WorkerHarness.StartAsync(fixture, output, watchEvents: false);
        var definition = await deaf.RegisterAsync("""
            {"family": "resync", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "command": ["sleep", "300"]}]}
            """);
        var start = deaf.StartCommand(definition);
        await deaf.Runner.StartAsync(start, redelivered: false, deaf.Stopping);
        var running = await Events.WaitForStatusAsync(start.TaskArn, "RUNNING", deaf.Stopping);
        await deaf.Docker.Containers.KillContainerAsync(running.Containers.Single().RuntimeId!, new ContainerKillParameters { Signal = "KILL" });

        // A watcher whose clock is a minute ahead subscribes after the kill, as a watcher does to an
        // engine that restarted: the die is in no buffer it can ask for. Only the resync can see it.
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow.AddMinutes(1));
        var watcher = new DockerEventWatcher(deaf.Docker, deaf.Runner, deaf.Identity, deaf.Options, clock,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<DockerEventWatcher>.Instance);
        _ = watcher.RunAsync(deaf.Stopping);
        await watcher.Started;
        await Task.Delay(500);
        Assert.DoesNotContain(await Events.ReportsAsync(start.TaskArn, deaf.Stopping), r => r.LastStatus == "STOPPED");

        clock.Advance(TimeSpan.FromSeconds(deaf.Options.ContainerResyncSeconds));
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", deaf.Stopping);
        Assert.Equal("EssentialContainerExited", stopped.StopCode);
        Assert.Equal(137, stopped.Containers.Single().ExitCode);
    }

    [Fact]
    public async Task A_container_docker_cannot_start_fails_the_task_with_CannotStartContainerError()
    {
        var definition = await _worker.RegisterAsync("""
            {"family": "unstartable", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32, "entryPoint": ["/no/such/program"]}]}
            """);
        var start = _worker.StartCommand(definition);

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var stopped = await Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);

        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.StartsWith("CannotStartContainerError: Error response from daemon: ", stopped.StoppedReason);
        Assert.StartsWith("CannotStartContainerError: ", Assert.Single(stopped.Containers).Reason);
        await _worker.WaitUntilRemovedAsync(start.TaskArn);
    }
}
