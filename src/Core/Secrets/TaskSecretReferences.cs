using System.Text.Json.Nodes;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Secrets;

/// <summary>Where a resolved value goes: a container's environment, or its log driver's options.</summary>
public enum SecretTarget
{
    Environment,
    LogOption,
}

/// <summary>One <c>secrets</c> (or <c>logConfiguration.secretOptions</c>) entry of a container definition.</summary>
public sealed record ContainerSecret(string Container, string Name, string ValueFrom, SecretTarget Target);

/// <summary>
/// A <c>valueFrom</c> parsed as the ECS agent parses it: a Secrets Manager ARN
/// (<c>arn:aws:secretsmanager:region:account:secret:name-abcdef</c>, optionally followed by
/// <c>:json-key:version-stage:version-id</c>, so exactly 7 or 10 colon-separated parts), or an SSM
/// parameter by name or ARN.
/// </summary>
public sealed record SecretReference(string ValueFrom, bool IsSecretsManager, string SecretId, string? JsonKey, string? VersionStage, string? VersionId, string? Invalid)
{
    public static SecretReference Parse(string valueFrom)
    {
        var parts = valueFrom.Split(':');
        if (parts.Length < 3 || parts[0] != "arn" || parts[2] != "secretsmanager")
            return new(valueFrom, false, valueFrom, null, null, null, null);
        if (parts.Length is not (7 or 10) || parts[5] != "secret")
            return new(valueFrom, true, valueFrom, null, null, null, $"invalid ARN format for the secret: {valueFrom}");
        var secretId = string.Join(':', parts[..7]);
        return parts.Length == 7
            ? new(valueFrom, true, secretId, null, null, null, null)
            : new(valueFrom, true, secretId, Empty(parts[7]), Empty(parts[8]), Empty(parts[9]), null);
    }

    private static string? Empty(string part) => part.Length == 0 ? null : part;

    /// <summary>Every secret of every container of a task definition, in definition order.</summary>
    public static List<ContainerSecret> Of(JsonObject taskDefinition)
    {
        var found = new List<ContainerSecret>();
        foreach (var container in new TaskDefinitionView(taskDefinition).ContainerDefinitions)
        {
            foreach (var secret in container.Secrets)
                found.Add(new(container.Name, secret.Name, secret.ValueFrom, SecretTarget.Environment));
            foreach (var secret in container.LogConfiguration?.SecretOptions ?? [])
                found.Add(new(container.Name, secret.Name, secret.ValueFrom, SecretTarget.LogOption));
        }
        return found;
    }
}
