using Serverless.Core.Api;

namespace Serverless.Core.Secrets;

/// <summary>One version of a secret and the staging labels attached to it.</summary>
public sealed record SecretVersion(string VersionId, DateTimeOffset Created, IReadOnlyList<string> Stages)
{
    public bool Has(string stage) => Stages.Contains(stage, StringComparer.Ordinal);
}

/// <summary>
/// How Secrets Manager moves staging labels: a label is on at most one version; moving
/// <c>AWSCURRENT</c> away from a version gives that version <c>AWSPREVIOUS</c>; a version without
/// labels is deprecated and, beyond <see cref="MaxVersions"/>, the oldest deprecated ones go.
/// Pure functions over the version list, in creation order.
/// </summary>
public static class SecretStages
{
    public const string Current = "AWSCURRENT";
    public const string Previous = "AWSPREVIOUS";
    public const string Pending = "AWSPENDING";

    /// <summary>Secrets Manager keeps about this many versions; older deprecated ones are removed.</summary>
    public const int MaxVersions = 100;

    /// <summary>Most labels on one version (the model's <c>SecretVersionStagesType</c>).</summary>
    public const int MaxStagesPerVersion = 20;

    /// <summary>The version that has <paramref name="stage"/>, or null.</summary>
    public static SecretVersion? WithStage(IReadOnlyList<SecretVersion> versions, string stage)
        => versions.FirstOrDefault(v => v.Has(stage));

    /// <summary>
    /// A new version <paramref name="versionId"/> with <paramref name="stages"/> (PutSecretValue):
    /// each label leaves the version that had it; AWSCURRENT's old holder becomes AWSPREVIOUS.
    /// Returns the new list and the ids of versions pruned beyond <see cref="MaxVersions"/>.
    /// </summary>
    public static (List<SecretVersion> Versions, List<string> Removed) Add(
        IReadOnlyList<SecretVersion> versions, string versionId, DateTimeOffset created, IReadOnlyList<string> stages)
    {
        var result = versions.ToList();
        foreach (var stage in stages.Distinct(StringComparer.Ordinal)) result = Attach(result, stage, versionId, null);
        result.Add(new SecretVersion(versionId, created, [.. stages.Distinct(StringComparer.Ordinal)]));
        return Prune(result);
    }

    /// <summary>
    /// UpdateSecretVersionStage: <paramref name="stage"/> moves from <paramref name="removeFrom"/> to
    /// <paramref name="moveTo"/> (either may be null), with Secrets Manager's refusals.
    /// </summary>
    public static List<SecretVersion> Move(IReadOnlyList<SecretVersion> versions, string stage, string? removeFrom, string? moveTo)
    {
        if (moveTo is not null && versions.All(v => v.VersionId != moveTo))
            throw AwsServiceException.InvalidParameter($"The version {moveTo} doesn't exist.");
        if (removeFrom is not null && versions.All(v => v.VersionId != removeFrom))
            throw AwsServiceException.InvalidParameter($"The version {removeFrom} doesn't exist.");
        var holder = WithStage(versions, stage);
        if (holder is not null && holder.VersionId != moveTo && holder.VersionId != removeFrom)
        {
            throw AwsServiceException.InvalidParameter(
                $"The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {holder.VersionId}, so you must explicitly reference that version in RemoveFromVersionId.");
        }
        if (removeFrom is not null && holder?.VersionId != removeFrom)
            throw AwsServiceException.InvalidParameter($"The staging label {stage} is not attached to version {removeFrom}.");
        if (moveTo is null && stage == Current)
            throw AwsServiceException.InvalidParameter("You can't remove the staging label AWSCURRENT from a version without moving it to another version.");

        if (moveTo is null)
            return [.. versions.Select(v => v.VersionId == removeFrom ? v with { Stages = [.. v.Stages.Where(s => s != stage)] } : v)];
        var moved = Attach([.. versions], stage, moveTo, versions.First(v => v.VersionId == moveTo));
        if (moved.First(v => v.VersionId == moveTo).Stages.Count > MaxStagesPerVersion)
            throw new AwsServiceException("LimitExceededException", $"A version can have at most {MaxStagesPerVersion} staging labels.");
        return moved;
    }

    /// <summary>Puts <paramref name="stage"/> on <paramref name="versionId"/> (added to <paramref name="target"/> when it is listed).</summary>
    private static List<SecretVersion> Attach(List<SecretVersion> versions, string stage, string versionId, SecretVersion? target)
    {
        var oldHolder = WithStage(versions, stage);
        if (oldHolder?.VersionId == versionId) return versions;
        var result = new List<SecretVersion>(versions.Count);
        foreach (var version in versions)
        {
            var stages = version.Stages.Where(s => s != stage).ToList();
            if (version.VersionId == versionId && target is not null) stages.Add(stage);
            // The version that loses AWSCURRENT is the one now previous (and the previous one loses that).
            if (stage == Current && oldHolder is not null)
            {
                stages.Remove(Previous);
                if (version.VersionId == oldHolder.VersionId) stages.Add(Previous);
            }
            result.Add(version with { Stages = stages });
        }
        return result;
    }

    private static (List<SecretVersion>, List<string>) Prune(List<SecretVersion> versions)
    {
        var removed = new List<string>();
        while (versions.Count > MaxVersions && versions.FirstOrDefault(v => v.Stages.Count == 0) is { } oldest)
        {
            versions.Remove(oldest);
            removed.Add(oldest.VersionId);
        }
        return (versions, removed);
    }
}
