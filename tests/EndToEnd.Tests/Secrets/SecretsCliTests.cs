using System.Text.Json.Nodes;
using Serverless.TestSupport.Storage;

namespace Serverless.EndToEnd.Tests.Secrets;

/// <summary>Secrets Manager, the Parameter Store and task secrets with the AWS CLI, on real Docker.</summary>
[Collection("control plane 3")]
public sealed class SecretsCliTests(ControlPlaneFixture plane) : IAsyncLifetime
{
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => plane.StopWorkersAsync();

    private Task<CliResult> AwsAsync(params string[] args) => plane.AwsAsync(args);

    /// <summary>Polls (with the fixture's signed client, not the CLI's 6 s waiters) until the first task is RUNNING and the second STOPPED.</summary>
    private async Task<(JsonNode Running, JsonNode Stopped)> SettledAsync(string cluster, string runningArn, string stoppedArn)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            var tasks = await plane.DescribeTasksAsync(cluster, [runningArn, stoppedArn]);
            var running = tasks.First(t => t["taskArn"]!.GetValue<string>() == runningArn);
            var stopped = tasks.First(t => t["taskArn"]!.GetValue<string>() == stoppedArn);
            if (running["lastStatus"]!.GetValue<string>() is "RUNNING" or "STOPPED" && stopped["lastStatus"]!.GetValue<string>() == "STOPPED")
                return (running, stopped);
            Assert.True(DateTime.UtcNow < deadline, $"Not settled: {running.ToJsonString()} {stopped.ToJsonString()}");
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task The_cli_drives_secrets_and_parameters_and_a_task_gets_them_in_its_environment()
    {
        var password = "pw-" + Guid.NewGuid().ToString("N");
        var token = "tok-" + Guid.NewGuid().ToString("N");
        // Every storage request of the suite from here on is looked through for both values.
        PlaintextWatch.Watch(password);
        PlaintextWatch.Watch(token);
        var name = $"tour/db-{_suffix}";
        var cluster = $"secrets-{_suffix}";
        await plane.EcsAsync("create-cluster", "--cluster-name", cluster);
        var worker = plane.StartWorkerAsync(cluster); // meanwhile, the CLI drives the stores

        // Secrets Manager: versions and stages, deletion and restore, errors.
        var arn = (await AwsAsync("secretsmanager", "create-secret", "--name", name, "--secret-string", """{"username":"admin","password":"first"}""")).Json["ARN"]!.GetValue<string>();
        await AwsAsync("secretsmanager", "put-secret-value", "--secret-id", name, "--secret-string", $$"""{"username":"admin","password":"{{password}}"}""");
        var previous = (await AwsAsync("secretsmanager", "get-secret-value", "--secret-id", arn, "--version-stage", "AWSPREVIOUS")).Json;
        Assert.Contains("first", previous["SecretString"]!.GetValue<string>());
        var listed = (await AwsAsync("secretsmanager", "list-secrets", "--filters", $"Key=name,Values={name}")).Json["SecretList"]!.AsArray();
        Assert.Equal(arn, Assert.Single(listed)!["ARN"]!.GetValue<string>());
        Assert.Equal("ValidationException", (await AwsAsync("secretsmanager", "create-secret", "--name", "no spaces", "--secret-string", "x")).ErrorCode);

        var doomed = $"tour/doomed-{_suffix}";
        await AwsAsync("secretsmanager", "create-secret", "--name", doomed, "--secret-binary", "fileb:///etc/hostname");
        Assert.NotNull((await AwsAsync("secretsmanager", "delete-secret", "--secret-id", doomed, "--recovery-window-in-days", "7")).Json["DeletionDate"]);
        Assert.Equal("InvalidRequestException", (await AwsAsync("secretsmanager", "get-secret-value", "--secret-id", doomed)).ErrorCode);
        await AwsAsync("secretsmanager", "restore-secret", "--secret-id", doomed);
        Assert.NotNull((await AwsAsync("secretsmanager", "get-secret-value", "--secret-id", doomed)).Json["SecretBinary"]);

        // SSM: a SecureString comes back encrypted unless decryption is asked for.
        var parameter = $"/tour-{_suffix}/token";
        await AwsAsync("ssm", "put-parameter", "--name", parameter, "--value", token, "--type", "SecureString");
        Assert.NotEqual(token, (await AwsAsync("ssm", "get-parameter", "--name", parameter)).Json["Parameter"]!["Value"]!.GetValue<string>());
        Assert.Equal(token, (await AwsAsync("ssm", "get-parameter", "--name", parameter, "--with-decryption")).Json["Parameter"]!["Value"]!.GetValue<string>());
        var byPath = (await AwsAsync("ssm", "get-parameters-by-path", "--path", $"/tour-{_suffix}", "--recursive", "--with-decryption")).Json["Parameters"]!.AsArray();
        Assert.Equal(token, Assert.Single(byPath)!["Value"]!.GetValue<string>());

        // A task reads a JSON key of the secret, the whole secret and the SecureString.
        var host = await worker;
        var definition = (await plane.EcsAsync("register-task-definition", "--family", $"secrets-{_suffix}", "--container-definitions", $$"""
            [{"name":"app","image":"local/busybox:latest","memory":32,"command":["sleep","300"],"stopTimeout":1,
              "secrets":[{"name":"DB_USER","valueFrom":"{{arn}}:username::"},{"name":"DB_PASSWD","valueFrom":"{{arn}}:password::"},
                         {"name":"DB_SECRET","valueFrom":"{{arn}}"},{"name":"TOKEN","valueFrom":"{{parameter}}"}]}]
            """)).Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var broken = (await plane.EcsAsync("register-task-definition", "--family", $"broken-{_suffix}", "--container-definitions", $$"""
            [{"name":"app","image":"local/busybox:latest","memory":32,"command":["sleep","300"],
              "secrets":[{"name":"S","valueFrom":"{{arn[..^7]}}-nope-abcdef"}]}]
            """)).Json["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var taskArn = (await plane.EcsAsync("run-task", "--cluster", cluster, "--task-definition", definition)).Json["tasks"]![0]!["taskArn"]!.GetValue<string>();
        var brokenArn = (await plane.EcsAsync("run-task", "--cluster", cluster, "--task-definition", broken)).Json["tasks"]![0]!["taskArn"]!.GetValue<string>();
        var (task, stopped) = await SettledAsync(cluster, taskArn, brokenArn);

        Assert.Equal("RUNNING", task["lastStatus"]!.GetValue<string>());
        var (exit, inspected) = await Docker.RunAsync("inspect", "--format", "{{json .Config.Env}}", task["containers"]![0]!["runtimeId"]!.GetValue<string>());
        Assert.Equal(0, exit);
        var env = JsonNode.Parse(inspected)!.AsArray().Select(e => e!.GetValue<string>()).ToList();
        Assert.Contains("DB_USER=admin", env);
        Assert.Contains($"DB_PASSWD={password}", env);
        Assert.Contains($"TOKEN={token}", env);
        Assert.Contains(env, e => e.StartsWith("DB_SECRET={", StringComparison.Ordinal));

        // A missing secret stops its task with ECS's reason.
        Assert.Equal("TaskFailedToStart", stopped["stopCode"]!.GetValue<string>());
        Assert.StartsWith("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: failed to fetch secret",
            stopped["stoppedReason"]!.GetValue<string>());

        // No value in any table, queue message or storage request, nor in the control plane's or the
        // worker's log (the CLI's own answers aside).
        Assert.Empty(PlaintextWatch.SightingsOf(password));
        Assert.Empty(PlaintextWatch.SightingsOf(token));
        Assert.DoesNotContain(password, plane.Log);
        Assert.DoesNotContain(token, plane.Log);
        Assert.DoesNotContain(password, host.Log);
        Assert.DoesNotContain(token, host.Log);
    }
}
