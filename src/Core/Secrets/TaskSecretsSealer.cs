using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;

namespace Serverless.Core.Secrets;

/// <summary>
/// Resolves a task's <c>secrets</c> and <c>logConfiguration.secretOptions</c> when its Start is sent
/// (once per task, each distinct <c>valueFrom</c> once, all in parallel) and seals the values to the
/// public key of the instance the task was placed on (<see cref="SealedBox"/>). So only the control
/// plane holds the key-encryption key, and a worker can open the values of its own tasks and of no
/// other. A reference that cannot be resolved is recorded as the reason, in ECS's words, for the
/// worker to stop the task with (TaskFailedToStart), as the ECS agent does.
/// </summary>
public sealed class TaskSecretsSealer(
    TaskDefinitionStore definitions, TaskSecretsStore store, SecretsManagerActions secretsManager, ParameterActions parameters, Arns arns,
    ILogger<TaskSecretsSealer> logger)
{
    public const string FailurePrefix = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: ";

    // Revisions never change: their secret references are read once per control plane (bounded).
    private readonly ConcurrentDictionary<string, List<ContainerSecret>> _references = new(StringComparer.Ordinal);
    private const int MaxCachedRevisions = 512;

    /// <summary>Seals the task's values for its instance, or records why it cannot; nothing for a task without secrets.</summary>
    public async Task SealForAsync(TaskRecord task, CancellationToken cancellationToken)
    {
        var references = await ReferencesAsync(task.TaskDefinitionArn, cancellationToken);
        if (references.Count == 0) return;
        var taskArn = arns.Task(task.Cluster, task.Id);
        var instanceArn = arns.ContainerInstance(task.Cluster, task.ContainerInstanceId);

        var key = store.FindKeyAsync(task.Cluster, task.ContainerInstanceId, cancellationToken);
        var resolved = await Task.WhenAll(references.Select(r => r.ValueFrom).Distinct(StringComparer.Ordinal)
            .Select(async valueFrom => (ValueFrom: valueFrom, Result: await ResolveAsync(SecretReference.Parse(valueFrom), cancellationToken))));
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
            if (await store.PutAsync(task.Id, sealedValues, null, cancellationToken))
            {
                logger.LogInformation("Sealed {Count} secret value(s) of {TaskArn} for {InstanceArn}", resolved.Length, taskArn, instanceArn);
                return;
            }
            failure = FailurePrefix + "the task's secret values together exceed what one task can receive";
        }
        logger.LogWarning("The secrets of {TaskArn} could not be resolved: {Reason}", taskArn, failure);
        await store.PutAsync(task.Id, null, failure, cancellationToken);
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
    private async Task<(string? Value, string? Failure)> ResolveAsync(SecretReference reference, CancellationToken cancellationToken)
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
            secret = await secretsManager.GetValueAsync(reference.SecretId, reference.VersionId, reference.VersionStage, cancellationToken);
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
