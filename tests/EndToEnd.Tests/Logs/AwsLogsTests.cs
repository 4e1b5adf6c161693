using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.Logs;

/// <summary>A task's output in CloudWatch Logs, read with the unchanged AWS CLI after the task and its container are gone.</summary>
[Collection("control plane 6")]
public sealed class AwsLogsTests(ControlPlaneFixture plane) : IAsyncLifetime
{
    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => plane.StopWorkersAsync();

    private Task<CliResult> LogsAsync(params string[] args) => plane.AwsAsync(["logs", .. args]);

    private static List<string> Messages(CliResult result)
    {
        Assert.True(result.ExitCode == 0, result.Stderr);
        return [.. result.Json["events"]!.AsArray().Select(e => e!["message"]!.GetValue<string>())];
    }

    [Fact]
    public async Task A_stopped_tasks_stdout_and_stderr_are_read_and_filtered_with_the_aws_cli()
    {
        var cluster = $"logs-{Guid.NewGuid():N}"[..30];
        var group = $"/ecs/e2e-{Guid.NewGuid():N}";
        await plane.EcsAsync("create-cluster", "--cluster-name", cluster);
        await plane.StartWorkerAsync(cluster);
        var register = await plane.EcsAsync("register-task-definition", "--family", "logged", "--container-definitions", """
            [{"name":"app","image":"local/busybox:latest","memory":32,"essential":true,
              "command":["sh","-c","echo starting up; echo '{\"level\":\"error\",\"msg\":\"disk full\"}' >&2; echo '{\"level\":\"info\",\"msg\":\"ok\"}'; echo connection refused by db >&2"],
              "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"GROUP","awslogs-region":"us-east-1",
                "awslogs-stream-prefix":"web","awslogs-create-group":"true"}}}]
            """.Replace("GROUP", group));
        var definition = register.Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();

        var run = await plane.EcsAsync("run-task", "--cluster", cluster, "--task-definition", definition);
        Assert.Empty(run.Json["failures"]!.AsArray());
        var taskArn = run.Json["tasks"]![0]!["taskArn"]!.GetValue<string>();
        var stopped = await plane.WaitAsync("tasks-stopped", cluster, [taskArn]);
        Assert.True(stopped.ExitCode == 0, stopped.Stderr);
        // The container is removed once its output is stored.
        var deadline = DateTimeOffset.UtcNow.AddSeconds(60);
        while ((await Docker.RunAsync("ps", "-aq", "--filter", $"label=com.amazonaws.ecs.task-arn={taskArn}")).Stdout.Trim().Length > 0)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, "the task's container was not removed");
            await Task.Delay(250);
        }

        var stream = $"web/app/{taskArn[(taskArn.LastIndexOf('/') + 1)..]}";
        var all = Messages(await LogsAsync("get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--start-from-head"));
        // Docker reads stdout and stderr apart and stamps each line as it reads it, so the two streams
        // interleave by those stamps, not by the order the shell wrote them; each stream keeps its own.
        Assert.Equal(["connection refused by db", "starting up", """{"level":"error","msg":"disk full"}""", """{"level":"info","msg":"ok"}"""], all.Order(StringComparer.Ordinal));
        Assert.True(all.IndexOf("starting up") < all.IndexOf("""{"level":"info","msg":"ok"}"""), string.Join('\n', all));
        Assert.True(all.IndexOf("""{"level":"error","msg":"disk full"}""") < all.IndexOf("connection refused by db"), string.Join('\n', all));

        Assert.Equal(["starting up"], Messages(await LogsAsync("filter-log-events", "--log-group-name", group, "--filter-pattern", "starting")));
        Assert.Equal(["connection refused by db"], Messages(await LogsAsync("filter-log-events", "--log-group-name", group, "--filter-pattern", "\"refused by\"")));
        Assert.Equal(["""{"level":"error","msg":"disk full"}"""], Messages(await LogsAsync("filter-log-events", "--log-group-name", group, "--filter-pattern", "{ $.level = \"error\" }")));

        var streams = await LogsAsync("describe-log-streams", "--log-group-name", group);
        Assert.Equal(stream, streams.Json["logStreams"]![0]!["logStreamName"]!.GetValue<string>());
        var bad = await LogsAsync("filter-log-events", "--log-group-name", group, "--filter-pattern", "{ $.level = ");
        Assert.Equal("InvalidParameterException", bad.ErrorCode);
    }

    [Fact]
    public async Task Boto3_follows_a_running_tasks_lines_live_with_GetLogEvents_tokens_and_as_aws_logs_tail_does()
    {
        var cluster = $"follow-{Guid.NewGuid():N}"[..30];
        var group = $"/ecs/e2e-{Guid.NewGuid():N}";
        await plane.EcsAsync("create-cluster", "--cluster-name", cluster);
        await plane.StartWorkerAsync(cluster);
        var register = await plane.EcsAsync("register-task-definition", "--family", "ticking", "--container-definitions", """
            [{"name":"app","image":"local/busybox:latest","memory":32,"essential":true,"stopTimeout":1,
              "command":["sh","-c","i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done"],
              "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"GROUP","awslogs-region":"us-east-1",
                "awslogs-stream-prefix":"web","awslogs-create-group":"true"}}}]
            """.Replace("GROUP", group));
        var definition = register.Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var run = await plane.EcsAsync("run-task", "--cluster", cluster, "--task-definition", definition);
        Assert.Empty(run.Json["failures"]!.AsArray());
        var taskArn = run.Json["tasks"]![0]!["taskArn"]!.GetValue<string>();
        var stream = $"web/app/{taskArn[(taskArn.LastIndexOf('/') + 1)..]}";

        // The task never ends by itself: every line the followers see arrived while it ran.
        var follow = await plane.PythonAsync("logs_follow.py", group, stream, "15", "45");
        await plane.EcsAsync("stop-task", "--cluster", cluster, "--task", taskArn);

        Assert.True(follow.ExitCode == 0, follow.Stdout + follow.Stderr);
        var seen = System.Text.Json.Nodes.JsonNode.Parse(follow.Stdout)!;
        List<string> Seen(string name) => [.. seen[name]!.AsArray().Select(m => m!.GetValue<string>())];
        // In order from the first line, none missing, none twice.
        Assert.Equal(Enumerable.Range(1, Seen("get").Count).Select(i => $"tick {i}"), Seen("get"));
        Assert.Equal(Enumerable.Range(1, Seen("tail").Count).Select(i => $"tick {i}"), Seen("tail"));
        Assert.Empty(Seen("getRepeats"));
        Assert.Empty(Seen("tailRepeats"));
    }
}
