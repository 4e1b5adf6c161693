using System.Text.Json;
using System.Text.Json.Nodes;

namespace Serverless.Core.Deploy;

/// <summary>"Roll <see cref="Image"/> out to this service" (one service of the generic payload).</summary>
public sealed record DeployTarget(string Cluster, string Service, string Image, string? Container, bool Force);

/// <summary>What a delivery asks for, once its body is read.</summary>
public abstract record DeployRequest
{
    /// <summary>GitHub's <c>ping</c>, sent when a webhook is created: answered, nothing else.</summary>
    public sealed record Ping : DeployRequest;

    /// <summary>An event this endpoint acknowledges without acting on (a package <c>updated</c>, ...).</summary>
    public sealed record Ignored(string Reason) : DeployRequest;

    /// <summary>The generic payload: one image for one service.</summary>
    public sealed record Service(DeployTarget Target) : DeployRequest;

    /// <summary>A package published: <see cref="Image"/> to every service of the cluster that opted in to its repository.</summary>
    public sealed record Package(string Cluster, ImageReference Reference, string Image) : DeployRequest;
}

/// <summary>A payload that cannot be acted on, with the message a 400 carries.</summary>
public sealed class DeployPayloadException(string message) : Exception(message);

/// <summary>
/// Parses a delivery's body by its <c>X-GitHub-Event</c>: none (any CI's <c>curl</c>) is the generic
/// payload; <c>ping</c>; <c>registry_package</c> and <c>package</c> (action <c>published</c>, a
/// container package). Pure: no I/O, every refusal a <see cref="DeployPayloadException"/>.
/// </summary>
public static class DeployPayload
{
    public const string DefaultCluster = "default";
    private const int MaxNameLength = 255;

    public static DeployRequest Parse(string? gitHubEvent, ReadOnlySpan<byte> body, string? cluster)
    {
        if (gitHubEvent == "ping") return new DeployRequest.Ping();
        var json = ParseObject(body);
        return gitHubEvent switch
        {
            null or "" => Generic(json),
            "registry_package" or "package" => Package(json, gitHubEvent, cluster ?? DefaultCluster),
            _ => throw new DeployPayloadException($"Unsupported X-GitHub-Event '{Short(gitHubEvent)}': send ping, registry_package or package, or no event header with the generic payload."),
        };
    }

    private static DeployRequest Generic(JsonObject json)
    {
        var cluster = Name(json, "cluster", required: false) ?? DefaultCluster;
        var service = Name(json, "service", required: true)!;
        var image = Text(json, "image") ?? throw new DeployPayloadException("Missing member \"image\": the image reference to deploy.");
        var container = Text(json, "container");
        if (container is { Length: 0 or > MaxNameLength }) throw new DeployPayloadException("\"container\" must be a container name of 1 to 255 characters.");
        var force = json["force"] switch
        {
            null => false,
            JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
            _ => throw new DeployPayloadException("\"force\" must be true or false."),
        };
        if (ImageReference.TryParse(image, out var problem) is null) throw new DeployPayloadException(problem);
        return new DeployRequest.Service(new DeployTarget(cluster, service, image, container, force));
    }

    private static DeployRequest Package(JsonObject json, string gitHubEvent, string cluster)
    {
        if (!IsName(cluster)) throw new DeployPayloadException("The cluster query parameter must be a cluster name.");
        var action = Text(json, "action");
        if (action != "published") return new DeployRequest.Ignored($"{gitHubEvent} action '{Short(action ?? "")}' deploys nothing; only 'published' does.");
        var package = json[gitHubEvent] as JsonObject ?? throw new DeployPayloadException($"Missing member \"{gitHubEvent}\".");
        var type = Text(package, "package_type") ?? Text(package, "ecosystem");
        if (type is not null && !type.Equals("CONTAINER", StringComparison.OrdinalIgnoreCase) && !type.Equals("docker", StringComparison.OrdinalIgnoreCase))
            return new DeployRequest.Ignored($"A {Short(type)} package is not a container image.");

        var name = Text(package, "name") ?? throw new DeployPayloadException($"Missing member \"{gitHubEvent}.name\".");
        var owner = Text(package, "namespace") ?? (package["owner"] as JsonObject)?["login"]?.GetValue<string>()
            ?? throw new DeployPayloadException($"Missing member \"{gitHubEvent}.namespace\".");
        var host = (package["registry"] as JsonObject) is { } registry
            ? Text(registry, "host") ?? (Text(registry, "url") is { } url && Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.Authority : null)
            : null;
        var version = package["package_version"] as JsonObject ?? throw new DeployPayloadException($"Missing member \"{gitHubEvent}.package_version\".");
        var tag = version["container_metadata"]?["tag"] as JsonObject;
        var tagName = tag is null ? null : Text(tag, "name");
        var digest = (tag is null ? null : Text(tag, "digest")) ?? (Text(version, "version") is { } v && v.StartsWith("sha256:", StringComparison.Ordinal) ? v : null);

        // Docker repositories are lowercase; GitHub owners and package names need not be.
        var repository = $"{host ?? "ghcr.io"}/{owner}/{name}".ToLowerInvariant();
        var image = !string.IsNullOrEmpty(tagName) ? $"{repository}:{tagName}"
            : digest is not null ? $"{repository}@{digest}"
            : throw new DeployPayloadException($"The published package version has neither a tag nor a digest.");
        var reference = ImageReference.TryParse(image, out var problem) ?? throw new DeployPayloadException(problem);
        return new DeployRequest.Package(cluster, reference, image);
    }

    private static JsonObject ParseObject(ReadOnlySpan<byte> body)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(body, documentOptions: new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new DeployPayloadException($"Malformed JSON body: {e.Message.Split(" Path:")[0]}");
        }
        catch (ArgumentException e)
        {
            throw new DeployPayloadException($"Malformed JSON body: {e.Message}");
        }
        return node as JsonObject ?? throw new DeployPayloadException("The body must be a JSON object.");
    }

    private static string? Text(JsonObject json, string member) => json[member] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => throw new DeployPayloadException($"\"{member}\" must be a string."),
    };

    private static string? Name(JsonObject json, string member, bool required)
    {
        var value = Text(json, member);
        if (value is null)
            return required ? throw new DeployPayloadException($"Missing member \"{member}\": the {member} name.") : null;
        // A name, or the ARN's last segment: both name the same ECS resource.
        var name = value.StartsWith("arn:", StringComparison.Ordinal) ? value[(value.LastIndexOf('/') + 1)..] : value;
        return IsName(name) ? name : throw new DeployPayloadException($"\"{member}\" must be a {member} name or ARN (letters, numbers, hyphens and underscores).");
    }

    private static bool IsName(string name)
        => name.Length is > 0 and <= MaxNameLength && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    private static string Short(string value) => value.Length <= 64 ? value : value[..64] + "...";
}
