using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serverless.Core.Secrets;
using Serverless.Core.Tasks;
using Serverless.Worker.Docker;
using Serverless.Worker.Registration;

namespace Serverless.Worker.Secrets;

/// <summary>
/// This worker's key pair for receiving secret values: made fresh by each worker process and held in
/// memory only, so no private key is ever at rest on the host. Its public key is published for the
/// instance (<see cref="WorkerKeyPublisher"/>) before the instance registers, so the control plane
/// can seal a task's values to it (<see cref="TaskSecretsSealer"/>).
/// </summary>
public sealed class WorkerSecretKey
{
    private readonly byte[] _privateKey;

    public WorkerSecretKey()
    {
        (_privateKey, PublicKey) = SealedBox.NewKeyPair();
    }

    public byte[] PublicKey { get; }

    public byte[] Open(byte[] sealedValues, string taskArn) => SealedBox.Open(_privateKey, sealedValues, taskArn);
}

/// <summary>Publishes the instance's public key at start, before the worker registers (hosted services start in order).</summary>
public sealed class WorkerKeyPublisher(TaskSecretsStore store, WorkerSecretKey key, WorkerIdentity identity, ILogger<WorkerKeyPublisher> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        for (var delay = TimeSpan.FromMilliseconds(200); ; delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks)))
        {
            try
            {
                await PublishAsync(cancellationToken);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning("Could not publish the secrets key of {InstanceArn} yet: {Error}", identity.ContainerInstanceArn, e.Message);
                await Task.Delay(delay, cancellationToken);
            }
        }
    }

    public async Task PublishAsync(CancellationToken cancellationToken)
    {
        await store.PublishKeyAsync(identity.Cluster, identity.InstanceId, identity.Session, key.PublicKey, cancellationToken);
        logger.LogInformation("Published the secrets key of {InstanceArn}", identity.ContainerInstanceArn);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Gives a task's containers their secrets at start, as the ECS agent does: the values the control
/// plane sealed to this worker for this task are opened in memory and put into the containers' Docker
/// create parameters (environment, log driver options) and nowhere else: never logged, stored or reported.
/// </summary>
public sealed class TaskSecretsReceiver(TaskSecretsStore store, WorkerSecretKey key, ILogger<TaskSecretsReceiver> logger)
{
    /// <summary>
    /// Puts the values into <paramref name="plan"/>'s containers; null, or the reason the task
    /// cannot start (ECS's <c>ResourceInitializationError</c>), which names references, never values.
    /// </summary>
    /// <param name="delivered">The Start command's <see cref="TaskCommand.Secrets"/>: null sends it to table <c>TaskSecrets</c>.</param>
    public async Task<string?> InjectAsync(string taskArn, TaskPlan plan, TaskSecretsDelivery? delivered, CancellationToken cancellationToken)
    {
        if (plan.Secrets.Count == 0) return null;
        var (sealedValues, failure) = await SealedValuesAsync(taskArn, delivered, cancellationToken);
        if (failure is not null) return failure;

        JsonObject values;
        try
        {
            var plaintext = key.Open(sealedValues!, taskArn);
            values = JsonNode.Parse(plaintext)!.AsObject();
            CryptographicOperations.ZeroMemory(plaintext);
        }
        catch (CryptographicException)
        {
            // Sealed to another key: another instance's, or this one's before this worker process started.
            logger.LogWarning("The secret values of {TaskArn} were not sealed to the key of this worker", taskArn);
            return TaskSecretsSealer.FailurePrefix + "the secret values were not sealed to the key of this worker";
        }

        foreach (var secret in plan.Secrets)
        {
            if (plan.Container(secret.Container) is not { } container || values[secret.ValueFrom]?.GetValue<string>() is not { } value) continue;
            var parameters = container.Parameters;
            if (secret.Target == SecretTarget.Environment)
            {
                // A secret wins over an environment variable of the same name, as with the agent.
                var env = (parameters.Env ?? []).Where(e => !e.StartsWith(secret.Name + "=", StringComparison.Ordinal)).ToList();
                env.Add($"{secret.Name}={value}");
                parameters.Env = env;
            }
            else if (parameters.HostConfig.LogConfig is { } log)
            {
                log.Config ??= new Dictionary<string, string>();
                log.Config[secret.Name] = value;
            }
        }
        logger.LogInformation("Gave {TaskArn} its {Count} secret(s)", taskArn, plan.Secrets.Count);
        return null;
    }

    /// <summary>
    /// Where the sealed values are: in the Start command (<paramref name="delivered"/>, no storage
    /// call), else in table <c>TaskSecrets</c>, where the control plane puts values too large for a
    /// queue message. Either the sealed bytes or the failure.
    /// </summary>
    private async Task<(byte[]? Sealed, string? Failure)> SealedValuesAsync(string taskArn, TaskSecretsDelivery? delivered, CancellationToken cancellationToken)
    {
        if (delivered is not null)
        {
            if (delivered.Failure is { } failure) return (null, failure);
            try
            {
                if (delivered.Sealed is { } sealedText) return (Convert.FromBase64String(sealedText), null);
            }
            catch (FormatException)
            {
            }
            return (null, TaskSecretsSealer.FailurePrefix + "the task's Start carried malformed secret values");
        }
        var found = await store.FindAsync(TaskId(taskArn), cancellationToken);
        if (found is not { } row)
            return (null, TaskSecretsSealer.FailurePrefix + "no secret values were sealed for this task by the control plane");
        return row.Failure is { } stored ? (null, stored) : (row.Sealed, null);
    }

    /// <summary>
    /// Deletes the task's sealed values from table <c>TaskSecrets</c> once read (nothing to do when
    /// the Start carried them): a Start delivered again after the worker restarted mid-start then
    /// fails to start for want of them, rather than ciphertext staying behind.
    /// </summary>
    public Task ForgetAsync(string taskArn, TaskSecretsDelivery? delivered, CancellationToken cancellationToken)
        => delivered is null ? store.DeleteAsync(TaskId(taskArn), cancellationToken) : Task.CompletedTask;

    private static string TaskId(string taskArn) => taskArn[(taskArn.LastIndexOf('/') + 1)..];
}
