namespace Serverless.Core.Secrets;

/// <summary>
/// A task's secret values as its Start command carries them: sealed to the worker's key
/// (<see cref="SealedBox"/>, base64), or the reason they could not be resolved (which names
/// references, never values). A Start without one, for a task with secrets, means the values did
/// not fit in the message and are in table <c>TaskSecrets</c> (<see cref="TaskSecretsStore"/>).
/// </summary>
public sealed record TaskSecretsDelivery
{
    /// <summary>The sealed values, base64: only the worker the task was placed on can open them.</summary>
    public string? Sealed { get; init; }

    /// <summary>ECS's <c>ResourceInitializationError</c> reason for a task whose values could not be resolved.</summary>
    public string? Failure { get; init; }
}
