using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.ContainerInstances;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;

namespace Serverless.Core.Secrets;

/// <summary>
/// Resolves a task's <c>secrets</c> and <c>logConfiguration.secretOptions</c> when its Start is sent
/// (once per task, each distinct <c>valueFrom</c> once and each secret read once, all in parallel)
/// and seals the values to the public key of the instance the task was placed on
/// (<see cref="SealedBox"/>). So only the control plane holds the key-encryption key, and a worker can
/// open the values of its own tasks and of no other. The sealed values travel in the Start message
/// itself when they fit, else in table <c>TaskSecrets</c>. A reference that cannot be resolved is
/// sent as the reason, in ECS's words, for the worker to stop the task with (TaskFailedToStart), as
/// the ECS agent does.
/// </summary>
public sealed class TaskSecretsSealer(
    TaskDefinitionStore definitions, TaskSecretsStore store, SecretsManagerActions secretsManager, ParameterActions parameters, Arns arns,
    ILogger<TaskSecretsSealer> logger)
{
    public const string FailurePrefix = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: ";

    // Revisions never change: their secret references are read once per control plane (bounded).
    private readonly ConcurrentDictionary<string, List<ContainerSecret>> _references = new(StringComparer.Ordinal);
    private const int MaxCachedRevisions = 512;

    // Workers' public keys, each with the worker session that published it, and the session each
    // instance was last seen held by (its row's Owner, read by placement). A key is used again only
    // while that session still holds the instance: a restarted worker has a new session and a new key.
    private readonly ConcurrentDictionary<(string Cluster, string Instance), (string Session, byte[] Key)> _keys = new();
    private readonly ConcurrentDictionary<(string Cluster, string Instance), string> _holders = new();
    private const int MaxCachedInstances = 4096;

    /// <summary>
    /// Notes which worker session holds <paramref name="instance"/> as placement just read it, so the
    /// key that session published is not read again for each task placed there.
    /// </summary>
    public void NoteHolder(ContainerInstanceRecord instance)
    {
        if (_holders.Count >= MaxCachedInstances) _holders.Clear();
        if (instance.Owner is { } owner) _holders[(instance.Cluster, instance.Id)] = owner;
        else _holders.TryRemove((instance.Cluster, instance.Id), out _);
    }

    /// <summary>
    /// <paramref name="start"/> with the task's sealed values (or the reason there are none) in
    /// <see cref="TaskCommand.Secrets"/>; <paramref name="start"/> itself for a task without secrets,
    /// and when the sealed values would not fit in one queue message, after storing them in table
    /// <c>TaskSecrets</c>, where the worker looks for a Start that carries none.
    /// </summary>
    public async Task<TaskCommand> AttachAsync(TaskRecord task, TaskCommand start, CancellationToken cancellationToken)
    {
        var references = await ReferencesAsync(task.TaskDefinitionArn, cancellationToken);
        if (references.Count == 0) return start;
        var taskArn = arns.Task(task.Cluster, task.Id);
        var instanceArn = arns.ContainerInstance(task.Cluster, task.ContainerInstanceId);

        var key = KeyAsync(task.Cluster, task.ContainerInstanceId, cancellationToken);
        var fetched = new ConcurrentDictionary<(string, string?, string?), Lazy<Task<SecretsManagerActions.ResolvedSecret>>>();
        var resolved = await Task.WhenAll(references.Select(r => r.ValueFrom).Distinct(StringComparer.Ordinal)
            .Select(async valueFrom => (ValueFrom: valueFrom, Result: await ResolveAsync(SecretReference.Parse(valueFrom), fetched, cancellationToken))));
        var failure = resolved.Select(r => r.Result.Failure).FirstOrDefault(f => f is not null);
        var publicKey = await key;
        if (failure is null && publicKey is null)
            failure = FailurePrefix + $"the container instance {instanceArn} has published no key to receive secrets with";

        if (failure is null)
        {
            var values = new JsonObject();
            foreach (var (valueFrom, result) in resolved) values[valueFrom] = result.Value;
            var plaintext = JsonSerializer.SerializeToUtf8Bytes(values);
            var sealedValues = SealedBox.Seal(publicKey!, plaintext, taskArn);
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
            var inline = start with { Secrets = new TaskSecretsDelivery { Sealed = Convert.ToBase64String(sealedValues) } };
            if (TaskMessages.FitsInOneMessage(TaskMessages.Serialize(inline)))
            {
                logger.LogInformation("Sealed {Count} secret value(s) of {TaskArn} for {InstanceArn} into its Start", resolved.Length, taskArn, instanceArn);
                return inline;
            }
            if (await store.PutAsync(task.Id, sealedValues, null, cancellationToken))
            {
                logger.LogInformation("Sealed {Count} secret value(s) of {TaskArn} for {InstanceArn} into table TaskSecrets (too large for its Start)",
                    resolved.Length, taskArn, instanceArn);
                return start;
            }
            failure = FailurePrefix + "the task's secret values together exceed what one task can receive";
        }
        logger.LogWarning("The secrets of {TaskArn} could not be resolved: {Reason}", taskArn, failure);
        return start with { Secrets = new TaskSecretsDelivery { Failure = failure } };
    }

    /// <summary>The instance's public key: kept while the worker session that published it holds the instance.</summary>
    private async Task<byte[]?> KeyAsync(string cluster, string instanceId, CancellationToken cancellationToken)
    {
        var id = (cluster, instanceId);
        if (_holders.TryGetValue(id, out var holder) && _keys.TryGetValue(id, out var cached) && cached.Session == holder) return cached.Key;
        if (await store.FindKeyAsync(cluster, instanceId, cancellationToken) is not { } found) return null;
        if (found.Session is { } session)
        {
            if (_keys.Count >= MaxCachedInstances) _keys.Clear();
            _keys[id] = (session, found.PublicKey);
        }
        return found.PublicKey;
    }

    private async Task<List<ContainerSecret>> ReferencesAsync(string taskDefinitionArn, CancellationToken cancellationToken)
    {
        if (_references.TryGetValue(taskDefinitionArn, out var cached)) return cached;
        var slash = taskDefinitionArn.LastIndexOf('/');
        var definition = TaskDefinitionKey.TryParse(taskDefinitionArn[(slash + 1)..]) is { } key
            ? await definitions.FindAsync(key.Family, key.Revision, cancellationToken)
            : null;
        var references = definition is null ? [] : SecretReference.Of(definition.TaskDefinition);
        if (definition is not null)
        {
            if (_references.Count >= MaxCachedRevisions) _references.Clear();
            _references[taskDefinitionArn] = references;
        }
        return references;
    }

    /// <summary>One reference's value, or the agent's reason it has none (naming the reference, never a value).</summary>
    /// <param name="fetched">This sealing's reads of Secrets Manager, by secret and version: several JSON keys of one secret read it once.</param>
    private async Task<(string? Value, string? Failure)> ResolveAsync(SecretReference reference,
        ConcurrentDictionary<(string, string?, string?), Lazy<Task<SecretsManagerActions.ResolvedSecret>>> fetched, CancellationToken cancellationToken)
    {
        if (!reference.IsSecretsManager)
        {
            try
            {
                var value = await parameters.GetDecryptedValueAsync(reference.SecretId, cancellationToken);
                return value is null ? (null, FailurePrefix + $"unable to retrieve secrets from ssm: invalid parameters: {reference.ValueFrom}") : (value, null);
            }
            catch (AwsServiceException e)
            {
                return (null, FailurePrefix + $"unable to retrieve secrets from ssm: {e.ErrorType}: {reference.ValueFrom}");
            }
        }

        var asm = FailurePrefix + "unable to retrieve secret from asm: ";
        if (reference.Invalid is { } invalid) return (null, asm + invalid);
        SecretsManagerActions.ResolvedSecret secret;
        try
        {
            // AWSCURRENT named or implied is one version.
            var stage = reference.VersionStage ?? (reference.VersionId is null ? SecretStages.Current : null);
            secret = await fetched.GetOrAdd((reference.SecretId, reference.VersionId, stage),
                id => new Lazy<Task<SecretsManagerActions.ResolvedSecret>>(() => secretsManager.GetValueAsync(id.Item1, id.Item2, id.Item3, cancellationToken))).Value;
        }
        catch (AwsServiceException e)
        {
            return (null, asm + $"failed to fetch secret {reference.ValueFrom} from secrets manager: {e.ErrorType}: {e.Message}");
        }
        if (secret.Value.Text is not { } text) return (null, asm + $"secret {reference.ValueFrom} is binary; only a SecretString can be injected");
        if (reference.JsonKey is not { } jsonKey) return (text, null);
        JsonNode? field = null;
        try
        {
            field = (JsonNode.Parse(text) as JsonObject)?[jsonKey];
        }
        catch (JsonException)
        {
            // Not JSON: the key is missing, as below (the parser's message could quote the value).
        }
        return field is null
            ? (null, asm + $"retrieved secret from Secrets Manager did not contain json key {jsonKey}: {reference.ValueFrom}")
            : (field.GetValueKind() == JsonValueKind.String ? field.GetValue<string>() : field.ToJsonString(), null);
    }
}
