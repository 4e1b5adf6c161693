using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serverless.Core.Api;

namespace Serverless.Core.Secrets;

/// <summary>
/// The SSM Parameter Store (target prefix <c>AmazonSSM</c>, AWS JSON 1.1): String, StringList and
/// SecureString parameters with versions and tags. A SecureString is encrypted envelope-style before
/// it is stored and is answered decrypted only with <c>WithDecryption</c>; otherwise its value is the
/// ciphertext, as AWS answers the KMS ciphertext. Labels and parameter policies are not served.
/// </summary>
public sealed partial class ParameterActions(ParameterStore store, KeyEncryptionKeys keys, EcsOptions options, Arns arns, TimeProvider time) : IActionSource
{
    public const string TargetPrefix = "AmazonSSM";
    private const string DefaultKeyId = "alias/aws/ssm";

    public void MapActions(ActionRegistry registry)
    {
        registry.Map("PutParameter", PutAsync, TargetPrefix);
        registry.Map("GetParameter", GetAsync, TargetPrefix);
        registry.Map("GetParameters", GetManyAsync, TargetPrefix);
        registry.Map("GetParametersByPath", GetByPathAsync, TargetPrefix);
        registry.Map("GetParameterHistory", HistoryAsync, TargetPrefix);
        registry.Map("DeleteParameter", DeleteAsync, TargetPrefix);
        registry.Map("DeleteParameters", DeleteManyAsync, TargetPrefix);
        registry.Map("DescribeParameters", DescribeAsync, TargetPrefix);
    }

    private async Task<JsonObject> PutAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request.String("Name")!;
        CheckName(name);
        var value = request.String("Value")!;
        var overwrite = request.Bool("Overwrite") == true;
        if (overwrite && request["Tags"] is JsonArray { Count: > 0 })
            throw Validation("Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.");
        var tier = request.String("Tier") is "Advanced" ? "Advanced" : "Standard";
        var limit = tier == "Advanced" ? 8192 : 4096;
        if (value.Length > limit)
        {
            throw Validation(tier == "Advanced"
                ? "Advanced tier parameters support a maximum parameter value of 8192 characters."
                : "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.");
        }
        if (value.Length == 0) throw Validation("1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.");

        for (var attempt = 1; ; attempt++)
        {
            var existing = await store.FindAsync(name, cancellationToken);
            if (existing is not null && !overwrite)
                throw new AwsServiceException("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.");
            var type = request.String("Type") ?? existing?.Type
                ?? throw Validation("A parameter type is required when you create a parameter.");
            var keyId = request.String("KeyId");
            if (keyId is not null && type != ParameterRecord.SecureString)
                throw Validation("KeyId is required for SecureString type parameter only.");
            var pattern = request.ContainsKey("AllowedPattern") ? request.String("AllowedPattern") : existing?.AllowedPattern;
            if (!string.IsNullOrEmpty(pattern) && !Matches(pattern, value))
            {
                // The value is never repeated in a message: it may be a secret.
                throw new AwsServiceException("ParameterPatternMismatchException", $"Parameter value failed to satisfy constraint specified by pattern: {pattern}");
            }
            var version = (existing?.Version ?? 0) + 1;
            var secure = type == ParameterRecord.SecureString;
            var parameter = new ParameterRecord(
                name, type, version,
                secure ? null : value,
                secure ? EncryptedValue.Seal(keys, Encoding.UTF8.GetBytes(value), ParameterRecord.Context(Arn(name), version)) : null,
                request.ContainsKey("Description") ? request.String("Description") : existing?.Description,
                secure ? keyId ?? (existing?.Type == ParameterRecord.SecureString ? existing.KeyId : null) ?? DefaultKeyId : null,
                pattern,
                existing?.Tier == "Advanced" ? "Advanced" : tier,
                request.String("DataType") ?? existing?.DataType ?? "text",
                existing?.Tags ?? Tags(request),
                time.GetUtcNow(),
                arns.Caller(context.AccessKeyId));
            if (await store.PutAsync(parameter, existing, cancellationToken))
                return new JsonObject { ["Version"] = version, ["Tier"] = parameter.Tier };
            if (attempt >= 5) throw new AwsServiceException("TooManyUpdates", "There are concurrent updates for a resource that supports one update at a time.");
        }
    }

    private async Task<JsonObject> GetAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var (parameter, selector) = await ResolveAsync(request.String("Name")!, cancellationToken);
        if (parameter is null) throw NotFound();
        var json = ToJson(parameter, request.Bool("WithDecryption") == true);
        if (selector is not null) json["Selector"] = selector;
        return new JsonObject { ["Parameter"] = json };
    }

    private async Task<JsonObject> GetManyAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var decrypt = request.Bool("WithDecryption") == true;
        var names = request.Strings("Names").Distinct(StringComparer.Ordinal).ToList();
        var found = await Task.WhenAll(names.Select(async n =>
        {
            try
            {
                return (Name: n, Found: await ResolveAsync(n, cancellationToken));
            }
            catch (AwsServiceException)
            {
                return (Name: n, Found: (null, null));
            }
        }));
        return new JsonObject
        {
            ["Parameters"] = found.Where(f => f.Found.Parameter is not null)
                .Select(f => (JsonNode?)ToJson(f.Found.Parameter!, decrypt).With("Selector", f.Found.Selector)).ToJsonArray(),
            ["InvalidParameters"] = found.Where(f => f.Found.Parameter is null).Select(f => f.Name).ToJsonArray(),
        };
    }

    private async Task<JsonObject> GetByPathAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var path = request.String("Path")!;
        if (!path.StartsWith('/') || !IsName(path.TrimEnd('/').Length == 0 ? "/x" : path.TrimEnd('/')))
            throw Validation("The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".");
        var prefix = path.EndsWith('/') ? path : path + "/";
        var recursive = request.Bool("Recursive") == true;
        var filters = StringFilters(request, forPath: true);
        var take = request.Int("MaxResults") ?? 10;
        var decrypt = request.Bool("WithDecryption") == true;

        var page = new List<ParameterRecord>();
        var more = false;
        await foreach (var parameter in store.ListAsync(prefix, AfterName(request), cancellationToken))
        {
            if (!recursive && parameter.Name[prefix.Length..].Contains('/')) continue;
            if (!filters.All(f => f(parameter))) continue;
            if (page.Count == take)
            {
                more = true;
                break;
            }
            page.Add(parameter);
        }
        var response = new JsonObject { ["Parameters"] = page.Select(p => (JsonNode?)ToJson(p, decrypt)).ToJsonArray() };
        if (more) response["NextToken"] = Paging.Token(page[^1].Name);
        return response;
    }

    private async Task<JsonObject> HistoryAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = NameOf(request.String("Name")!);
        var history = await store.HistoryAsync(name, cancellationToken);
        if (history.Count == 0) throw NotFound();
        var decrypt = request.Bool("WithDecryption") == true;
        var take = request.Int("MaxResults") ?? 50;
        var after = AfterName(request) is { } token ? long.TryParse(token, out var v) ? v : throw new AwsServiceException("InvalidNextToken", "The specified token isn't valid.") : 0;
        var page = history.Where(p => p.Version > after).Take(take).ToList();
        var response = new JsonObject
        {
            ["Parameters"] = page.Select(p =>
            {
                var json = ToJson(p, decrypt);
                json.Remove("ARN");
                json.Remove("Selector");
                if (p.KeyId is not null) json["KeyId"] = p.KeyId;
                if (p.Description is not null) json["Description"] = p.Description;
                if (p.AllowedPattern is not null) json["AllowedPattern"] = p.AllowedPattern;
                json["LastModifiedUser"] = p.LastModifiedUser;
                json["Labels"] = new JsonArray();
                json["Tier"] = p.Tier;
                json["Policies"] = new JsonArray();
                return (JsonNode?)json;
            }).ToJsonArray(),
        };
        if (page.Count == take && history.Any(p => p.Version > page[^1].Version))
            response["NextToken"] = Paging.Token(page[^1].Version.ToString(CultureInfo.InvariantCulture));
        return response;
    }

    private async Task<JsonObject> DeleteAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var name = request.String("Name")!;
        if (!IsName(name) || !await store.DeleteAsync(name, cancellationToken)) throw NotFound();
        return [];
    }

    private async Task<JsonObject> DeleteManyAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var names = request.Strings("Names").Distinct(StringComparer.Ordinal).ToList();
        var deleted = await Task.WhenAll(names.Select(async n => (Name: n, Deleted: IsName(n) && await store.DeleteAsync(n, cancellationToken))));
        return new JsonObject
        {
            ["DeletedParameters"] = deleted.Where(d => d.Deleted).Select(d => d.Name).ToJsonArray(),
            ["InvalidParameters"] = deleted.Where(d => !d.Deleted).Select(d => d.Name).ToJsonArray(),
        };
    }

    private async Task<JsonObject> DescribeAsync(JsonObject request, RequestContext context, CancellationToken cancellationToken)
    {
        var filters = StringFilters(request, forPath: false);
        foreach (var legacy in request["Filters"] as JsonArray ?? [])
        {
            var key = legacy!["Key"]!.GetValue<string>();
            var values = legacy["Values"]!.AsArray().Select(v => v!.GetValue<string>()).ToList();
            filters.Add(key switch
            {
                "Name" => p => values.Any(v => p.Name.StartsWith(v, StringComparison.Ordinal)),
                "Type" => p => values.Contains(p.Type),
                _ => p => p.KeyId is not null && values.Contains(p.KeyId),
            });
        }
        var take = request.Int("MaxResults") ?? 50;
        var page = new List<ParameterRecord>();
        var more = false;
        await foreach (var parameter in store.ListAsync(null, AfterName(request), cancellationToken))
        {
            if (!filters.All(f => f(parameter))) continue;
            if (page.Count == take)
            {
                more = true;
                break;
            }
            page.Add(parameter);
        }
        var response = new JsonObject
        {
            ["Parameters"] = page.Select(p =>
            {
                var json = new JsonObject { ["Name"] = p.Name, ["ARN"] = Arn(p.Name), ["Type"] = p.Type };
                if (p.KeyId is not null) json["KeyId"] = p.KeyId;
                json["LastModifiedDate"] = AwsJson.Timestamp(p.LastModified);
                json["LastModifiedUser"] = p.LastModifiedUser;
                if (p.Description is not null) json["Description"] = p.Description;
                if (p.AllowedPattern is not null) json["AllowedPattern"] = p.AllowedPattern;
                json["Version"] = p.Version;
                json["Tier"] = p.Tier;
                json["Policies"] = new JsonArray();
                json["DataType"] = p.DataType;
                return (JsonNode?)json;
            }).ToJsonArray(),
        };
        if (more) response["NextToken"] = Paging.Token(page[^1].Name);
        return response;
    }

    /// <summary>
    /// A parameter's value for a caller inside the control plane (task secret injection): the
    /// current version, decrypted; null when there is no such parameter.
    /// </summary>
    public async Task<string?> GetDecryptedValueAsync(string nameOrArn, CancellationToken cancellationToken)
    {
        var (parameter, _) = await ResolveAsync(nameOrArn, cancellationToken);
        return parameter is null ? null : Value(parameter, decrypt: true);
    }

    /// <summary>A name, an ARN, or either with a <c>:version</c> selector.</summary>
    private async Task<(ParameterRecord? Parameter, string? Selector)> ResolveAsync(string nameOrArn, CancellationToken cancellationToken)
    {
        var name = NameOf(nameOrArn);
        string? selector = null;
        long? version = null;
        var colon = name.LastIndexOf(':');
        if (colon > 0)
        {
            selector = name[colon..];
            name = name[..colon];
            if (!long.TryParse(selector[1..], NumberStyles.None, CultureInfo.InvariantCulture, out var number))
                throw new AwsServiceException("ParameterVersionNotFound", $"Systems Manager could not find label {selector[1..]} of {name}. Labels are not supported here.");
            version = number;
        }
        if (!IsName(name)) return (null, selector);
        if (version is null) return (await store.FindAsync(name, cancellationToken), null);
        var found = await store.FindVersionAsync(name, version.Value, cancellationToken);
        if (found is null && await store.FindAsync(name, cancellationToken) is not null)
            throw new AwsServiceException("ParameterVersionNotFound", $"Systems Manager could not find version {version} of {name}. Verify the version and try again.");
        return (found, selector);
    }

    /// <summary>The parameter name in an ARN (<c>arn:aws:ssm:region:account:parameter/name</c>), or the name as given.</summary>
    private string NameOf(string nameOrArn)
    {
        var prefix = $"arn:aws:ssm:{options.Region}:{options.AccountId}:parameter";
        if (!nameOrArn.StartsWith(prefix, StringComparison.Ordinal)) return nameOrArn;
        var rest = nameOrArn[prefix.Length..];
        // A hierarchy's ARN keeps its leading slash ("parameter/a/b" is "/a/b"); "parameter/a" is "a".
        return rest.Count(c => c == '/') > 1 ? rest : rest.TrimStart('/');
    }

    private string Arn(string name) => $"arn:aws:ssm:{options.Region}:{options.AccountId}:parameter{(name.StartsWith('/') ? "" : "/")}{name}";

    private JsonObject ToJson(ParameterRecord parameter, bool decrypt) => new()
    {
        ["Name"] = parameter.Name,
        ["Type"] = parameter.Type,
        ["Value"] = Value(parameter, decrypt),
        ["Version"] = parameter.Version,
        ["LastModifiedDate"] = AwsJson.Timestamp(parameter.LastModified),
        ["ARN"] = Arn(parameter.Name),
        ["DataType"] = parameter.DataType,
    };

    private string Value(ParameterRecord parameter, bool decrypt)
    {
        if (parameter.Encrypted is not { } encrypted) return parameter.PlainValue ?? "";
        if (!decrypt) return encrypted.ToBase64();
        try
        {
            return Encoding.UTF8.GetString(encrypted.Open(keys, ParameterRecord.Context(Arn(parameter.Name), parameter.Version)));
        }
        catch (CryptographicException)
        {
            throw new AwsServiceException("InvalidKeyId", "The parameter could not be decrypted with its key.");
        }
    }

    /// <summary>ParameterFilters: Type, KeyId, Tier, DataType, Name (DescribeParameters only), Path, tag:key.</summary>
    private static List<Func<ParameterRecord, bool>> StringFilters(JsonObject request, bool forPath)
    {
        var filters = new List<Func<ParameterRecord, bool>>();
        foreach (var node in request["ParameterFilters"] as JsonArray ?? [])
        {
            var key = node!["Key"]!.GetValue<string>();
            var option = node["Option"]?.GetValue<string>() ?? "Equals";
            var values = (node["Values"] as JsonArray ?? []).Select(v => v!.GetValue<string>()).ToList();
            if (forPath && key is "Name" or "Path")
                throw new AwsServiceException("InvalidFilterKey", $"The following filter key is not valid: {key}. Valid filter keys include: [Type, KeyId, Label, Tier, DataType].");
            Func<string?, bool> match = option switch
            {
                "Equals" => v => v is not null && values.Contains(v),
                "BeginsWith" => v => v is not null && values.Any(x => v.StartsWith(x, StringComparison.Ordinal)),
                "Contains" => v => v is not null && values.Any(x => v.Contains(x, StringComparison.Ordinal)),
                "Recursive" or "OneLevel" when key == "Path" => _ => true,
                _ => throw new AwsServiceException("InvalidFilterOption", $"The following filter option is not valid: {option}. Valid options include: [Equals, BeginsWith, Contains]."),
            };
            filters.Add(key switch
            {
                "Name" => p => match(p.Name),
                "Type" => p => match(p.Type),
                "KeyId" => p => match(p.KeyId),
                "Tier" => p => match(p.Tier),
                "DataType" => p => match(p.DataType),
                "Path" => p => values.Any(v =>
                {
                    var prefix = v.EndsWith('/') ? v : v + "/";
                    return p.Name.StartsWith(prefix, StringComparison.Ordinal) && (option == "Recursive" || !p.Name[prefix.Length..].Contains('/'));
                }),
                _ when key.StartsWith("tag:", StringComparison.Ordinal) => p => p.Tags.Any(t => t.Key == key[4..] && (values.Count == 0 || match(t.Value))),
                _ => throw new AwsServiceException("InvalidFilterKey", $"The following filter key is not valid: {key}."),
            });
        }
        return filters;
    }

    private static string? AfterName(JsonObject request)
    {
        try
        {
            return Paging.AfterKey(new JsonObject { ["nextToken"] = request.String("NextToken") });
        }
        catch (InvalidParameterException)
        {
            throw new AwsServiceException("InvalidNextToken", "The specified token isn't valid.");
        }
    }

    private static IReadOnlyList<SecretTag> Tags(JsonObject request)
        => [.. (request["Tags"] as JsonArray ?? []).Select(t => new SecretTag(t!["Key"]!.GetValue<string>(), t["Value"]!.GetValue<string>()))];

    private static bool Matches(string pattern, string value)
    {
        try
        {
            return Regex.IsMatch(value, pattern, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
        }
        catch (Exception e) when (e is ArgumentException or RegexMatchTimeoutException)
        {
            throw new AwsServiceException("InvalidAllowedPatternException", "The request does not meet the regular expression requirement.");
        }
    }

    /// <summary>
    /// Systems Manager's name rules: letters, digits and <c>_.-/</c>; a hierarchy begins with '/' and
    /// has at most 15 levels; no name begins with "aws" or "ssm" (in any case).
    /// </summary>
    private static void CheckName(string name)
    {
        if (name.StartsWith("aws", StringComparison.OrdinalIgnoreCase) || name.StartsWith("ssm", StringComparison.OrdinalIgnoreCase)
            || name.TrimStart('/').StartsWith("aws", StringComparison.OrdinalIgnoreCase) || name.TrimStart('/').StartsWith("ssm", StringComparison.OrdinalIgnoreCase))
            throw Validation("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_");
        if (name.Contains('/') && !name.StartsWith('/'))
            throw Validation("Parameter name must be a fully qualified name.");
        if (name.Count(c => c == '/') > 15)
            throw new AwsServiceException("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels.");
        if (!IsName(name))
            throw Validation("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_");
    }

    private static bool IsName(string name) => ParameterName().IsMatch(name);

    [GeneratedRegex(@"^/?[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex ParameterName();

    private static AwsServiceException Validation(string message) => AwsServiceException.Validation(message);

    private static AwsServiceException NotFound() => new("ParameterNotFound", "");
}
