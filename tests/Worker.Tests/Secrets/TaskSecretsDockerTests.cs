using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Api;
using Serverless.Core.Secrets;
using Serverless.Core.Tasks;
using Serverless.Worker.Secrets;
using Serverless.Worker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Serverless.Worker.Tests.Secrets;

/// <summary>
/// Task secrets end to end inside one process, on real Azurite and real Docker: the control plane's
/// stores and sealer (composed as the app composes them, over the worker's tables) and a worker.
/// </summary>
public sealed class TaskSecretsDockerTests(WorkerFixture fixture, ITestOutputHelper output) : IClassFixture<WorkerFixture>, IAsyncLifetime
{
    private readonly CapturingOutput _log = new(output);
    private WorkerHarness _worker = null!;
    private ServiceProvider _controlPlane = null!;

    private CancellationToken Token => _worker.Stopping;

    public async Task InitializeAsync()
    {
        _worker = await WorkerHarness.StartAsync(fixture, _log);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = fixture.ConnectionString,
            ["Ecs:StoragePrefix"] = _worker.StoragePrefix,
            ["Secrets:KeyEncryptionKeys"] = KeyEncryptionKeys.Generate("test"),
        }).Build();
        _controlPlane = new ServiceCollection()
            .AddLogging(logging => logging.AddProvider(new XunitLoggerProvider(_log)).SetMinimumLevel(LogLevel.Debug))
            .AddControlPlane(configuration)
            .BuildServiceProvider();
        await _worker.Get<WorkerKeyPublisher>().PublishAsync(Token);
    }

    public async Task DisposeAsync()
    {
        await _controlPlane.DisposeAsync();
        await _worker.DisposeAsync();
    }

    private async Task<JsonObject> CallAsync(string target, JsonObject request)
    {
        Assert.True(_controlPlane.GetRequiredService<ActionRegistry>().TryGet(target, out var handler), target);
        return await handler(request, new RequestContext("test"), Token);
    }

    private TaskSecretsSealer Sealer => _controlPlane.GetRequiredService<TaskSecretsSealer>();

    /// <summary>As TaskLauncher does: the task row, then the sealing into the Start (or its table), then Start.</summary>
    private async Task<TaskCommand> StartAsync(string definitionJson)
    {
        var definition = await _worker.RegisterAsync(definitionJson);
        var row = await _worker.InsertTaskRowAsync(_worker.StartCommand(definition), definition);
        var start = await Sealer.AttachAsync(row, _worker.StartCommand(definition, taskArn: _worker.Arns.Task(row.Cluster, row.Id)), Token);
        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        return start;
    }

    /// <summary>Every table property, queue message, report and log line written so far, and the Start, as text.</summary>
    private async Task<List<string>> EverythingWrittenAsync(TaskCommand start)
    {
        var storage = new List<string>();
        var tables = new TableServiceClient(fixture.ConnectionString);
        await foreach (var table in tables.QueryAsync(t => t.Name.CompareTo(_worker.StoragePrefix) >= 0, cancellationToken: Token))
        {
            if (!table.Name.StartsWith(_worker.StoragePrefix, StringComparison.Ordinal)) continue;
            await foreach (var entity in tables.GetTableClient(table.Name).QueryAsync<TableEntity>(cancellationToken: Token))
            {
                foreach (var (_, property) in entity)
                    storage.Add(property is byte[] bytes ? Encoding.UTF8.GetString(bytes) + Encoding.Unicode.GetString(bytes) : property?.ToString() ?? "");
            }
        }
        Assert.NotEmpty(storage);
        var queues = new Azure.Storage.Queues.QueueServiceClient(fixture.ConnectionString);
        await foreach (var queue in queues.GetQueuesAsync(cancellationToken: Token))
        {
            foreach (var peeked in (await queues.GetQueueClient(queue.Name).PeekMessagesAsync(32, Token)).Value)
                storage.Add(peeked.Body.ToString());
        }
        storage.AddRange((await fixture.Events.ReportsAsync(start.TaskArn, Token)).Select(TaskMessages.Serialize));
        // The Start as it goes on the queue, sealed values included (and decoded, should they be in clear).
        var message = TaskMessages.Serialize(start);
        storage.Add(message);
        if (start.Secrets?.Sealed is { } sealedText) storage.Add(Encoding.UTF8.GetString(Convert.FromBase64String(sealedText)));
        Assert.True(TaskMessages.FitsInOneMessage(message));
        storage.AddRange(_log.Lines);
        return storage;
    }

    [Fact]
    public async Task The_values_reach_the_containers_environment_and_no_table_queue_message_or_log_line()
    {
        var user = "user-" + Guid.NewGuid().ToString("N");
        var password = "pw-" + Guid.NewGuid().ToString("N");
        var token = "tok-" + Guid.NewGuid().ToString("N");
        var arn = (await CallAsync("secretsmanager.CreateSecret", new()
        {
            ["Name"] = "prod/db",
            ["SecretString"] = new JsonObject { ["username"] = user, ["password"] = password }.ToJsonString(),
        }))["ARN"]!.GetValue<string>();
        await CallAsync("AmazonSSM.PutParameter", new() { ["Name"] = "/app/token", ["Value"] = token, ["Type"] = "SecureString" });

        var start = await StartAsync($$"""
            {"family": "with-secrets", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32,
              "command": ["sleep", "300"], "stopTimeout": 1,
              "environment": [{"name": "MODE", "value": "plain"}, {"name": "DB_USER", "value": "overridden"}],
              "secrets": [
                {"name": "DB_USER", "valueFrom": "{{arn}}:username::"},
                {"name": "DB_PASSWD", "valueFrom": "{{arn}}:password:AWSCURRENT:"},
                {"name": "WHOLE", "valueFrom": "{{arn}}"},
                {"name": "TOKEN", "valueFrom": "/app/token"}]}]}
            """);
        var running = await fixture.Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);

        var inspected = await _worker.InspectAsync(Assert.Single(running.Containers).RuntimeId!);
        Assert.Contains("MODE=plain", inspected.Config.Env);
        Assert.Contains($"DB_USER={user}", inspected.Config.Env);
        Assert.DoesNotContain("DB_USER=overridden", inspected.Config.Env);
        Assert.Contains($"DB_PASSWD={password}", inspected.Config.Env);
        Assert.Contains($"TOKEN={token}", inspected.Config.Env);
        Assert.Contains(inspected.Config.Env, e => e.StartsWith("WHOLE={", StringComparison.Ordinal) && e.Contains(password, StringComparison.Ordinal));

        // docker inspect is the only place: not in any table, queue message, the Start, a report or a log line.
        Assert.NotNull(start.Secrets?.Sealed);
        var written = await EverythingWrittenAsync(start);
        foreach (var value in new[] { user, password, token })
            Assert.DoesNotContain(written, s => s.Contains(value, StringComparison.Ordinal));
        Assert.Contains(_log.Lines, l => l.Contains("Sealed 4 secret value(s)", StringComparison.Ordinal) && l.Contains("into its Start", StringComparison.Ordinal));

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
        await _worker.WaitUntilRemovedAsync(start.TaskArn);
    }

    [Theory]
    [InlineData("arn:aws:secretsmanager:us-east-1:000000000000:secret:missing-abcdef",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: failed to fetch secret arn:aws:secretsmanager:us-east-1:000000000000:secret:missing-abcdef from secrets manager: ResourceNotFoundException: Secrets Manager can't find the specified secret.")]
    [InlineData("arn:aws:secretsmanager:us-east-1:000000000000:secret:db-abcdef:password",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: invalid ARN format for the secret: arn:aws:secretsmanager:us-east-1:000000000000:secret:db-abcdef:password")]
    [InlineData("/no/such/parameter",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: invalid parameters: /no/such/parameter")]
    public async Task A_reference_that_cannot_be_resolved_stops_the_task_as_ECS_does(string valueFrom, string reason)
    {
        var start = await StartAsync($$"""
            {"family": "broken-secrets", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32,
              "command": ["sleep", "300"], "secrets": [{"name": "S", "valueFrom": "{{valueFrom}}"}]}]}
            """);
        var stopped = await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
        Assert.Equal("TaskFailedToStart", stopped.StopCode);
        Assert.Equal(reason, stopped.StoppedReason);
        Assert.Empty(await _worker.ContainersAsync(start.TaskArn));
    }

    [Fact]
    public async Task Values_sealed_for_another_instance_do_not_open_here()
    {
        await CallAsync("AmazonSSM.PutParameter", new() { ["Name"] = "/other/token", ["Value"] = "x", ["Type"] = "SecureString" });
        var definition = await _worker.RegisterAsync("""
            {"family": "elsewhere", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32,
              "command": ["sleep", "300"], "secrets": [{"name": "S", "valueFrom": "/other/token"}]}]}
            """);
        var row = await _worker.InsertTaskRowAsync(_worker.StartCommand(definition), definition);
        // Sealed for another worker's key (as if the task had been placed there)...
        await using var other = await WorkerHarness.StartAsync(fixture, _log, storagePrefix: _worker.StoragePrefix);
        await other.Get<WorkerKeyPublisher>().PublishAsync(Token);
        var start = await Sealer.AttachAsync(row with { ContainerInstanceId = other.Identity.InstanceId },
            _worker.StartCommand(definition, taskArn: _worker.Arns.Task(row.Cluster, row.Id)), Token);

        // ...and delivered here: this worker cannot open it.
        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var stopped = await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
        Assert.Equal("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: the secret values were not sealed to the key of this worker", stopped.StoppedReason);
    }

    [Fact]
    public async Task Values_too_large_for_the_Start_message_go_through_the_TaskSecrets_table_which_the_worker_empties()
    {
        // 60,000 characters: sealed and in base64 they exceed a queue message's 64 KiB.
        var large = "big-" + Guid.NewGuid().ToString("N") + new string('x', 60_000);
        var arn = (await CallAsync("secretsmanager.CreateSecret", new() { ["Name"] = "large", ["SecretString"] = large }))["ARN"]!.GetValue<string>();
        var definition = await _worker.RegisterAsync($$"""
            {"family": "large-secret", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32,
              "command": ["sleep", "300"], "stopTimeout": 1, "secrets": [{"name": "LARGE", "valueFrom": "{{arn}}"}]}]}
            """);
        var row = await _worker.InsertTaskRowAsync(_worker.StartCommand(definition), definition);
        var start = await Sealer.AttachAsync(row, _worker.StartCommand(definition, taskArn: _worker.Arns.Task(row.Cluster, row.Id)), Token);

        Assert.Null(start.Secrets);
        var store = _controlPlane.GetRequiredService<TaskSecretsStore>();
        Assert.NotNull((await store.FindAsync(row.Id, Token))?.Sealed);
        var written = await EverythingWrittenAsync(start);
        Assert.DoesNotContain(written, s => s.Contains(large[..40], StringComparison.Ordinal));

        await _worker.Runner.StartAsync(start, redelivered: false, Token);
        var running = await fixture.Events.WaitForStatusAsync(start.TaskArn, "RUNNING", Token);
        Assert.Contains($"LARGE={large}", (await _worker.InspectAsync(Assert.Single(running.Containers).RuntimeId!)).Config.Env);
        // Read once, then deleted: no ciphertext stays behind.
        var deadline = DateTimeOffset.UtcNow.AddSeconds(10);
        while (await store.FindAsync(row.Id, Token) is not null && DateTimeOffset.UtcNow < deadline) await Task.Delay(50, Token);
        Assert.Null(await store.FindAsync(row.Id, Token));

        await _worker.Runner.StopAsync(WorkerHarness.StopCommand(start.TaskArn), Token);
        await fixture.Events.WaitForStatusAsync(start.TaskArn, "STOPPED", Token);
        await _worker.WaitUntilRemovedAsync(start.TaskArn);
    }

    [Fact]
    public async Task An_instances_key_is_read_once_per_worker_session_and_again_when_a_restarted_worker_holds_it()
    {
        await CallAsync("AmazonSSM.PutParameter", new() { ["Name"] = "/cached/token", ["Value"] = "v", ["Type"] = "SecureString" });
        var definition = await _worker.RegisterAsync("""
            {"family": "cached-key", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 32,
              "command": ["sleep", "300"], "secrets": [{"name": "S", "valueFrom": "/cached/token"}]}]}
            """);
        var row = await _worker.InsertTaskRowAsync(_worker.StartCommand(definition), definition);
        var store = _controlPlane.GetRequiredService<TaskSecretsStore>();
        var key = _worker.Get<WorkerSecretKey>();
        var taskArn = _worker.Arns.Task(row.Cluster, row.Id);
        async Task<byte[]> SealAsync()
        {
            var start = await Sealer.AttachAsync(row, _worker.StartCommand(definition, taskArn: taskArn), Token);
            return Convert.FromBase64String(start.Secrets!.Sealed!);
        }

        // Placement saw this worker's session hold the instance: its key is read once, then kept.
        Sealer.NoteHolder(await _worker.Registration.RegisterAsync(Token));
        Assert.NotNull(key.Open(await SealAsync(), taskArn));
        // (Another key under the same session in the row: not read, so the kept key is used.)
        var (otherPrivate, otherPublic) = SealedBox.NewKeyPair();
        await store.PublishKeyAsync(WorkerHarness.Cluster, _worker.Identity.InstanceId, _worker.Identity.Session, otherPublic, Token);
        Assert.NotNull(key.Open(await SealAsync(), taskArn));

        // A restarted worker (a new session, a new key) holds the instance: its key is read.
        await using var restarted = await WorkerHarness.StartAsync(fixture, _log, instanceId: _worker.Identity.InstanceId, storagePrefix: _worker.StoragePrefix);
        await restarted.Get<WorkerKeyPublisher>().PublishAsync(Token);
        Sealer.NoteHolder((await _worker.Instances.FindAsync(WorkerHarness.Cluster, _worker.Identity.InstanceId, Token))! with { Owner = restarted.Identity.Session });
        var box = await SealAsync();
        Assert.NotNull(restarted.Get<WorkerSecretKey>().Open(box, taskArn));
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => key.Open(box, taskArn));
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => SealedBox.Open(otherPrivate, box, taskArn));
    }

    /// <summary>Forwards to the test's output and keeps every line, to search for values.</summary>
    private sealed class CapturingOutput(ITestOutputHelper inner) : ITestOutputHelper
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyCollection<string> Lines => _lines;

        public void WriteLine(string message)
        {
            _lines.Enqueue(message);
            inner.WriteLine(message);
        }

        public void WriteLine(string format, params object[] args) => WriteLine(string.Format(System.Globalization.CultureInfo.InvariantCulture, format, args));
    }
}
