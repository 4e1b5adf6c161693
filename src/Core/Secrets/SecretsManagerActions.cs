using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serverless.Core.Api;

namespace Serverless.Core.Secrets;

/// <summary>
/// Secrets Manager (target prefix <c>secretsmanager</c>, AWS JSON 1.1) as botocore's model defines
/// it: secrets with versions and staging labels, string and binary values encrypted envelope-style
/// (<see cref="EncryptedValue"/>) before they reach Table Storage, deletion with a recovery window.
/// Rotation, replication and resource policies are not served.
/// </summary>
public sealed partial class SecretsManagerActions(SecretStore store, KeyEncryptionKeys keys, EcsOptions options, TimeProvider time) : IActionSource
{
    public const string TargetPrefix = "secretsmanager";

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("CreateSecret", CreateAsync, TargetPrefix);
        registry.Map("GetSecretValue", GetValueAsync, TargetPrefix);
        registry.Map("BatchGetSecretValue", BatchGetValueAsync, TargetPrefix);
        registry.Map("PutSecretValue", PutValueAsync, TargetPrefix);
        registry.Map("UpdateSecret", UpdateAsync, TargetPrefix);
        registry.Map("UpdateSecretVersionStage", UpdateVersionStageAsync, TargetPrefix);
        registry.Map("DescribeSecret", DescribeAsync, TargetPrefix);
        registry.Map("ListSecrets", ListAsync, TargetPrefix);
        registry.Map("ListSecretVersionIds", ListVersionIdsAsync, TargetPrefix);
        registry.Map("DeleteSecret", DeleteAsync, TargetPrefix);
        registry.Map("RestoreSecret", RestoreAsync, TargetPrefix);
        registry.Map("TagResource", TagAsync, TargetPrefix);
        registry.Map("UntagResource", UntagAsync, TargetPrefix);
    }

    /// <summary>A secret value: text (SecretString) or bytes (SecretBinary).</summary>
    public sealed record SecretValue(string? Text, byte[]? Binary)
    {
        // The kind travels inside the ciphertext: one byte before the value.
        public byte[] ToPlaintext() => Text is not null ? [0, .. Encoding.UTF8.GetBytes(Text)] : [1, .. Binary!];

        public static SecretValue FromPlaintext(byte[] plaintext)
            => plaintext[0] == 0 ? new(Encoding.UTF8.GetString(plaintext, 1, plaintext.Length - 1), null) : new(null, plaintext[1..]);
    }

    /// <summary>A resolved value of one version, as GetSecretValue answers it.</summary>
    public sealed record ResolvedSecret(SecretRecord Secret, SecretVersion Version, SecretValue Value);

    private async Task<JsonObject> CreateAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request.String("Name")!;
        CheckName(name);
        var value = ValueOf(request, required: false);
        var now = time.GetUtcNow();
        var arn = $"arn:aws:secretsmanager:{options.Region}:{options.AccountId}:secret:{name}-{RandomSuffix()}";
        var versionId = value is null ? null : request.String("ClientRequestToken") ?? Guid.NewGuid().ToString();
        var secret = new SecretRecord(name, arn, request.String("Description"), request.String("KmsKeyId"), Tags(request, []),
            now, now, null, null, versionId is null ? [] : [new SecretVersion(versionId, now, [SecretStages.Current])], null);
        EncryptedValue? sealedValue = null;
        if (value is not null)
        {
            sealedValue = EncryptedValue.Seal(keys, value.ToPlaintext(), secret.Context(versionId!));
            secret = secret with { Current = sealedValue };
        }

        if (!await store.CreateAsync(secret, sealedValue is null ? null : (versionId!, sealedValue), cancellationToken))
        {
            var existing = await store.FindAsync(name, cancellationToken);
            // The CLI's automatic token makes a retried create idempotent, as on AWS.
            if (existing is not null && versionId is not null && existing.Versions.Any(v => v.VersionId == versionId)
                && (await ReadAsync(existing, existing.Versions.First(v => v.VersionId == versionId), cancellationToken)).Value == value)
                return Identity(existing).With("VersionId", versionId);
            throw existing?.IsDeleted == true
                ? AwsServiceException.InvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
                : new AwsServiceException("ResourceExistsException", $"The operation failed because the secret {name} already exists.");
        }
        var response = Identity(secret);
        if (versionId is not null) response["VersionId"] = versionId;
        return response;
    }

    private async Task<JsonObject> GetValueAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var secret = await LiveAsync(request.String("SecretId")!, cancellationToken);
        var resolved = await ResolveAsync(secret, request.String("VersionId"), request.String("VersionStage"), cancellationToken);
        return ValueJson(resolved);
    }

    private async Task<JsonObject> BatchGetValueAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var ids = request.Strings("SecretIdList").ToList();
        var hasFilters = request["Filters"] is JsonArray;
        if (ids.Count > 0 == hasFilters)
            throw AwsServiceException.InvalidParameter("Either 'SecretIdList' or 'Filters' must be provided, but not both.");
        var values = new JsonArray();
        var errors = new JsonArray();
        var response = new JsonObject();
        if (ids.Count > 0)
        {
            if (request["MaxResults"] is not null || request["NextToken"] is not null)
                throw AwsServiceException.InvalidParameter("'MaxResults' and 'NextToken' can only be used with 'Filters'.");
            var results = await Task.WhenAll(ids.Distinct(StringComparer.Ordinal).Select(async id =>
            {
                try
                {
                    return (id, Value: (JsonNode?)ValueJson(await ResolveAsync(await LiveAsync(id, cancellationToken), null, null, cancellationToken)), Error: (AwsServiceException?)null);
                }
                catch (AwsServiceException e)
                {
                    return (id, Value: null, Error: e);
                }
            }));
            foreach (var (id, value, error) in results)
            {
                if (value is not null) values.Add(value);
                else errors.Add(new JsonObject { ["SecretId"] = id, ["ErrorCode"] = error!.ErrorType, ["Message"] = error.Message });
            }
        }
        else
        {
            var matching = Filter(await store.ListAsync(cancellationToken), request["Filters"]!.AsArray(), includeDeleted: false)
                .OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
            var (page, next) = Page(matching, request.String("NextToken"), request.Int("MaxResults") ?? 20);
            foreach (var secret in page)
            {
                if (SecretStages.WithStage(secret.Versions, SecretStages.Current) is not { } current) continue;
                values.Add(ValueJson(await ReadAsync(secret, current, cancellationToken)));
            }
            if (next is not null) response["NextToken"] = next;
        }
        response["SecretValues"] = values;
        response["Errors"] = errors;
        return response;
    }

    private async Task<JsonObject> PutValueAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var value = ValueOf(request, required: true)!;
        var stages = request["VersionStages"] is JsonArray ? request.Strings("VersionStages").ToList() : [SecretStages.Current];
        var (secret, versionId) = await AddVersionAsync(request.String("SecretId")!, request.String("ClientRequestToken"), value, stages, null, cancellationToken);
        var response = Identity(secret);
        response["VersionId"] = versionId;
        response["VersionStages"] = secret.Versions.First(v => v.VersionId == versionId).Stages.ToJsonArray();
        return response;
    }

    private async Task<JsonObject> UpdateAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var value = ValueOf(request, required: false);
        Func<SecretRecord, SecretRecord> metadata = s => s with
        {
            Description = request.ContainsKey("Description") ? request.String("Description") : s.Description,
            KmsKeyId = request.ContainsKey("KmsKeyId") ? request.String("KmsKeyId") : s.KmsKeyId,
        };
        if (value is not null)
        {
            var (secret, versionId) = await AddVersionAsync(request.String("SecretId")!, request.String("ClientRequestToken"), value, [SecretStages.Current], metadata, cancellationToken);
            return Identity(secret).With("VersionId", versionId);
        }
        var updated = await ChangeAsync(request.String("SecretId")!, s => metadata(s) with { LastChanged = time.GetUtcNow() }, cancellationToken);
        return Identity(updated);
    }

    private async Task<JsonObject> UpdateVersionStageAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var stage = request.String("VersionStage")!;
        var updated = await ChangeAsync(request.String("SecretId")!, s => s with
        {
            Versions = SecretStages.Move(s.Versions, stage, request.String("RemoveFromVersionId"), request.String("MoveToVersionId")),
            LastChanged = time.GetUtcNow(),
        }, cancellationToken, moveCurrentValue: true);
        return Identity(updated);
    }

    private async Task<JsonObject> DescribeAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var secret = await FindAsync(request.String("SecretId")!, cancellationToken);
        return Describe(secret, "VersionIdsToStages");
    }

    private async Task<JsonObject> ListAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var secrets = Filter(await store.ListAsync(cancellationToken), request["Filters"] as JsonArray ?? [], request.Bool("IncludePlannedDeletion") == true);
        var descending = request.String("SortOrder") != "asc";
        Func<SecretRecord, IComparable> key = request.String("SortBy") switch
        {
            "name" => s => s.Name,
            "last-changed-date" => s => s.LastChanged,
            "last-accessed-date" => s => s.LastChanged,
            _ => s => s.Created,
        };
        var ordered = (descending ? secrets.OrderByDescending(key) : secrets.OrderBy(key)).ThenBy(s => s.Name, StringComparer.Ordinal).ToList();
        var (page, next) = Page(ordered, request.String("NextToken"), request.Int("MaxResults") ?? 100);
        var response = new JsonObject { ["SecretList"] = page.Select(s => (JsonNode?)Describe(s, "SecretVersionsToStages")).ToJsonArray() };
        if (next is not null) response["NextToken"] = next;
        return response;
    }

    private async Task<JsonObject> ListVersionIdsAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var secret = await FindAsync(request.String("SecretId")!, cancellationToken);
        var versions = secret.Versions.Where(v => v.Stages.Count > 0 || request.Bool("IncludeDeprecated") == true).Reverse().ToList();
        var (page, next) = Page(versions, request.String("NextToken"), request.Int("MaxResults") ?? 100);
        var response = Identity(secret);
        response["Versions"] = page.Select(v => (JsonNode?)new JsonObject
        {
            ["VersionId"] = v.VersionId,
            ["VersionStages"] = v.Stages.ToJsonArray(),
            ["CreatedDate"] = AwsJson.Timestamp(v.Created),
        }).ToJsonArray();
        if (next is not null) response["NextToken"] = next;
        return response;
    }

    private async Task<JsonObject> DeleteAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var force = request.Bool("ForceDeleteWithoutRecovery") == true;
        var window = request["RecoveryWindowInDays"]?.GetValue<long>();
        if (force && window is not null)
            throw AwsServiceException.InvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
        if (window is < 7 or > 30)
            throw AwsServiceException.InvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).");

        var now = time.GetUtcNow();
        var secret = await FindAsync(request.String("SecretId")!, cancellationToken);
        if (force)
        {
            await store.PurgeAsync(secret.Name, cancellationToken);
            return Identity(secret).With("DeletionDate", AwsJson.Timestamp(now));
        }
        if (secret.IsDeleted) throw AwsServiceException.MarkedForDeletion();
        var deleted = await ChangeAsync(secret.Name, s => s.IsDeleted
            ? throw AwsServiceException.MarkedForDeletion()
            : s with { DeletedDate = now, DeletionDate = now.AddDays(window ?? 30), LastChanged = now }, cancellationToken, allowDeleted: true);
        return Identity(deleted).With("DeletionDate", AwsJson.Timestamp(deleted.DeletionDate!.Value));
    }

    private async Task<JsonObject> RestoreAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var restored = await ChangeAsync(request.String("SecretId")!, s => s with { DeletedDate = null, DeletionDate = null, LastChanged = time.GetUtcNow() },
            cancellationToken, allowDeleted: true);
        return Identity(restored);
    }

    private async Task<JsonObject> TagAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        await ChangeAsync(request.String("SecretId")!, s => s with { Tags = Tags(request, s.Tags) }, cancellationToken, allowDeleted: true);
        return [];
    }

    private async Task<JsonObject> UntagAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var keys = request.Strings("TagKeys").ToHashSet(StringComparer.Ordinal);
        await ChangeAsync(request.String("SecretId")!, s => s with { Tags = [.. s.Tags.Where(t => !keys.Contains(t.Key))] }, cancellationToken, allowDeleted: true);
        return [];
    }

    /// <summary>
    /// The value of a secret (current, or by version id or stage) for a caller inside the control
    /// plane (task secret injection); throws <see cref="AwsServiceException"/> as GetSecretValue would.
    /// </summary>
    public async Task<ResolvedSecret> GetValueAsync(string secretId, string? versionId, string? versionStage, CancellationToken cancellationToken)
        => await ResolveAsync(await LiveAsync(secretId, cancellationToken), versionId, versionStage, cancellationToken);

    private async Task<(SecretRecord Secret, string VersionId)> AddVersionAsync(
        string secretId, string? token, SecretValue value, IReadOnlyList<string> stages, Func<SecretRecord, SecretRecord>? metadata, CancellationToken cancellationToken)
    {
        var versionId = token ?? Guid.NewGuid().ToString();
        for (var attempt = 1; ; attempt++)
        {
            var secret = await LiveAsync(secretId, cancellationToken);
            if (secret.Versions.FirstOrDefault(v => v.VersionId == versionId) is { } existing)
            {
                // A retried request with the same token and value is answered again; another value is refused.
                if ((await ReadAsync(secret, existing, cancellationToken)).Value == value) return (secret, versionId);
                throw new AwsServiceException("ResourceExistsException", "You can't modify an existing version, you can only create a new version.");
            }
            var now = time.GetUtcNow();
            var sealedValue = EncryptedValue.Seal(keys, value.ToPlaintext(), secret.Context(versionId));
            var (versions, removed) = SecretStages.Add(secret.Versions, versionId, now, stages);
            var changed = (metadata?.Invoke(secret) ?? secret) with { Versions = versions, LastChanged = now };
            if (stages.Contains(SecretStages.Current)) changed = changed with { Current = sealedValue };
            try
            {
                await store.SaveAsync(changed, (versionId, sealedValue), removed, cancellationToken);
                return (changed, versionId);
            }
            catch (ConcurrentUpdateException) when (attempt < MaxAttempts)
            {
            }
        }
    }

    private const int MaxAttempts = 5;

    /// <summary>Reads, changes and writes a secret's metadata conditionally, again on a lost race.</summary>
    private async Task<SecretRecord> ChangeAsync(
        string secretId, Func<SecretRecord, SecretRecord> change, CancellationToken cancellationToken, bool allowDeleted = false, bool moveCurrentValue = false)
    {
        for (var attempt = 1; ; attempt++)
        {
            var secret = allowDeleted ? await FindAsync(secretId, cancellationToken) : await LiveAsync(secretId, cancellationToken);
            var changed = change(secret);
            var oldCurrent = SecretStages.WithStage(secret.Versions, SecretStages.Current);
            var newCurrent = SecretStages.WithStage(changed.Versions, SecretStages.Current);
            if (moveCurrentValue && newCurrent is not null && newCurrent.VersionId != oldCurrent?.VersionId)
                changed = changed with { Current = await store.ReadVersionAsync(secret.Name, newCurrent.VersionId, cancellationToken) };
            try
            {
                await store.SaveAsync(changed, null, [], cancellationToken);
                return changed;
            }
            catch (ConcurrentUpdateException) when (attempt < MaxAttempts)
            {
            }
        }
    }

    /// <summary>The secret <paramref name="secretId"/> names (name, full ARN or partial ARN); a recovery window that ended deletes it.</summary>
    private async Task<SecretRecord> FindAsync(string secretId, CancellationToken cancellationToken)
    {
        foreach (var (name, arn) in Candidates(secretId))
        {
            if (!IsName(name)) continue;
            var secret = await store.FindAsync(name, cancellationToken);
            if (secret is null || (arn is not null && secret.Arn != arn)) continue;
            if (secret.DeletionDate is { } due && due <= time.GetUtcNow())
            {
                await store.PurgeAsync(secret.Name, cancellationToken);
                break;
            }
            return secret;
        }
        throw AwsServiceException.SecretNotFound();
    }

    /// <summary>As <see cref="FindAsync"/>, refusing a secret marked for deletion.</summary>
    private async Task<SecretRecord> LiveAsync(string secretId, CancellationToken cancellationToken)
    {
        var secret = await FindAsync(secretId, cancellationToken);
        if (secret.IsDeleted) throw AwsServiceException.MarkedForDeletion();
        return secret;
    }

    /// <summary>
    /// The names a secret id may mean, each with the full ARN it must then have: a name; a full ARN
    /// (name, then '-' and the six random characters); a partial ARN, without the suffix.
    /// </summary>
    private IEnumerable<(string Name, string? Arn)> Candidates(string secretId)
    {
        var prefix = $"arn:aws:secretsmanager:{options.Region}:{options.AccountId}:secret:";
        if (!secretId.StartsWith("arn:", StringComparison.Ordinal))
        {
            yield return (secretId, null);
            yield break;
        }
        if (!secretId.StartsWith(prefix, StringComparison.Ordinal)) yield break;
        var rest = secretId[prefix.Length..];
        if (FullArnName().Match(rest) is { Success: true } full) yield return (full.Groups[1].Value, secretId);
        yield return (rest, null);
    }

    [GeneratedRegex(@"^(.+)-[a-zA-Z0-9]{6}$", RegexOptions.CultureInvariant)]
    private static partial Regex FullArnName();

    private async Task<ResolvedSecret> ResolveAsync(SecretRecord secret, string? versionId, string? stage, CancellationToken cancellationToken)
    {
        SecretVersion? version;
        if (versionId is not null)
        {
            version = secret.Versions.FirstOrDefault(v => v.VersionId == versionId);
            if (version is null || (stage is not null && !version.Has(stage)))
            {
                throw new AwsServiceException("ResourceNotFoundException",
                    $"Secrets Manager can't find the specified secret value for VersionId: {versionId}{(stage is null ? "" : $" and staging label: {stage}")}");
            }
        }
        else
        {
            var label = stage ?? SecretStages.Current;
            version = SecretStages.WithStage(secret.Versions, label)
                ?? throw new AwsServiceException("ResourceNotFoundException", $"Secrets Manager can't find the specified secret value for staging label: {label}");
        }
        return await ReadAsync(secret, version, cancellationToken);
    }

    private async Task<ResolvedSecret> ReadAsync(SecretRecord secret, SecretVersion version, CancellationToken cancellationToken)
    {
        var encrypted = version.Has(SecretStages.Current) && secret.Current is not null
            ? secret.Current
            : await store.ReadVersionAsync(secret.Name, version.VersionId, cancellationToken)
              ?? throw new AwsServiceException("ResourceNotFoundException", $"Secrets Manager can't find the specified secret value for VersionId: {version.VersionId}");
        byte[] plaintext;
        try
        {
            plaintext = encrypted.Open(keys, secret.Context(version.VersionId));
        }
        catch (CryptographicException)
        {
            // Never says more than which secret: the reason could help an attacker, the value must not leak.
            throw new AwsServiceException("DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.");
        }
        return new ResolvedSecret(secret, version, SecretValue.FromPlaintext(plaintext));
    }

    private static JsonObject ValueJson(ResolvedSecret resolved)
    {
        var response = Identity(resolved.Secret);
        response["VersionId"] = resolved.Version.VersionId;
        if (resolved.Value.Text is { } text) response["SecretString"] = text;
        else response["SecretBinary"] = Convert.ToBase64String(resolved.Value.Binary!);
        response["VersionStages"] = resolved.Version.Stages.ToJsonArray();
        response["CreatedDate"] = AwsJson.Timestamp(resolved.Version.Created);
        return response;
    }

    private static JsonObject Identity(SecretRecord secret) => new() { ["ARN"] = secret.Arn, ["Name"] = secret.Name };

    private static JsonObject Describe(SecretRecord secret, string stagesMember)
    {
        var json = Identity(secret);
        if (secret.Description is not null) json["Description"] = secret.Description;
        if (secret.KmsKeyId is not null) json["KmsKeyId"] = secret.KmsKeyId;
        json["RotationEnabled"] = false;
        json["LastChangedDate"] = AwsJson.Timestamp(secret.LastChanged);
        if (secret.DeletedDate is { } deleted) json["DeletedDate"] = AwsJson.Timestamp(deleted);
        if (secret.Tags.Count > 0)
            json["Tags"] = secret.Tags.Select(t => (JsonNode?)new JsonObject { ["Key"] = t.Key, ["Value"] = t.Value }).ToJsonArray();
        var stages = new JsonObject();
        foreach (var version in secret.Versions.Where(v => v.Stages.Count > 0)) stages[version.VersionId] = version.Stages.ToJsonArray();
        json[stagesMember] = stages;
        json["CreatedDate"] = AwsJson.Timestamp(secret.Created);
        return json;
    }

    /// <summary>
    /// ListSecrets' filters: each key's values are alternatives (a '!' value excludes), keys must all
    /// match; name, description, tag key and value match by prefix, case-insensitively, as on AWS.
    /// </summary>
    private static IEnumerable<SecretRecord> Filter(IEnumerable<SecretRecord> secrets, JsonArray filters, bool includeDeleted)
    {
        var parsed = filters.Select(f => (Key: f!["Key"]?.GetValue<string>() ?? "all", Values: f["Values"] is JsonArray v ? v.Select(x => x!.GetValue<string>()).ToList() : [])).ToList();
        if (parsed.Any(f => f.Values.Count == 0)) throw AwsServiceException.InvalidParameter("Filter values must not be empty.");
        return secrets.Where(s => (includeDeleted || !s.IsDeleted) && parsed.All(f => Matches(s, f.Key, f.Values)));
    }

    private static bool Matches(SecretRecord secret, string key, List<string> values)
    {
        var description = secret.Description ?? "";
        List<string> fields = key switch
        {
            "name" => [secret.Name],
            "description" => [description],
            "tag-key" => [.. secret.Tags.Select(t => t.Key)],
            "tag-value" => [.. secret.Tags.Select(t => t.Value)],
            "primary-region" or "owning-service" => [],
            _ => [secret.Name, description, .. secret.Tags.Select(t => t.Key), .. secret.Tags.Select(t => t.Value)],
        };
        bool Hit(string value) => fields.Any(f => f.StartsWith(value, StringComparison.OrdinalIgnoreCase));
        var positive = values.Where(v => !v.StartsWith('!')).ToList();
        var negative = values.Where(v => v.StartsWith('!')).Select(v => v[1..]).ToList();
        return (positive.Count == 0 || positive.Any(Hit)) && !negative.Any(Hit);
    }

    /// <summary>A page of an ordered list: the token is the position after the last item returned.</summary>
    private static (List<T> Page, string? Next) Page<T>(List<T> items, string? token, int take)
    {
        var skip = 0;
        if (!string.IsNullOrEmpty(token))
        {
            var after = Paging.AfterKey(new JsonObject { ["nextToken"] = token });
            if (!int.TryParse(after, out skip) || skip < 0) throw AwsServiceException.InvalidNextToken();
        }
        var page = items.Skip(skip).Take(take).ToList();
        return (page, skip + take < items.Count ? Paging.Token((skip + take).ToString(System.Globalization.CultureInfo.InvariantCulture)) : null);
    }

    private static SecretValue? ValueOf(JsonObject request, bool required)
    {
        var text = request.String("SecretString");
        var binary = request.String("SecretBinary");
        if (text is not null && binary is not null)
            throw AwsServiceException.InvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.");
        if (text is null && binary is null)
            return required ? throw AwsServiceException.InvalidParameter("You must provide either SecretString or SecretBinary.") : null;
        if (binary is null) return new SecretValue(text, null);
        try
        {
            return new SecretValue(null, Convert.FromBase64String(binary));
        }
        catch (FormatException)
        {
            throw new SerializationException("SecretBinary is not valid base64.");
        }
    }

    private static IReadOnlyList<SecretTag> Tags(JsonObject request, IReadOnlyList<SecretTag> existing)
    {
        var merged = existing.ToList();
        foreach (var tag in request["Tags"] as JsonArray ?? [])
        {
            var key = tag!["Key"]?.GetValue<string>() ?? throw AwsServiceException.InvalidParameter("A tag key must not be null.");
            if (key.StartsWith("aws:", StringComparison.OrdinalIgnoreCase))
                throw AwsServiceException.InvalidParameter("Tag keys with the prefix 'aws:' are reserved for AWS use.");
            merged.RemoveAll(t => t.Key == key);
            merged.Add(new SecretTag(key, tag["Value"]?.GetValue<string>() ?? ""));
        }
        if (merged.Count > 50) throw AwsServiceException.InvalidParameter("A secret can have at most 50 tags.");
        return merged;
    }

    private static void CheckName(string name)
    {
        if (!IsName(name))
            throw AwsServiceException.Validation("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!");
    }

    private static bool IsName(string name) => SecretName().IsMatch(name);

    [GeneratedRegex(@"^[a-zA-Z0-9/_+=.@!-]{1,512}$", RegexOptions.CultureInvariant)]
    private static partial Regex SecretName();

    private static string RandomSuffix()
        => RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 6);
}

internal static class JsonObjectExtensions
{
    public static JsonObject With(this JsonObject json, string name, JsonNode? value)
    {
        json[name] = value;
        return json;
    }
}
