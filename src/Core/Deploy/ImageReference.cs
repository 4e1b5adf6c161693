using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serverless.Core.TaskDefinitions;

namespace Serverless.Core.Deploy;

/// <summary>
/// A Docker image reference (<c>[registry/]path[:tag][@digest]</c>), by the grammar of the
/// distribution project's <c>reference</c> package that Docker itself parses with.
/// </summary>
public sealed partial record ImageReference(string Repository, string? Tag, string? Digest)
{
    private const int MaxNameLength = 255;

    // domain-component ("." domain-component)* [":" port] "/" ; path-component ("/" path-component)* ;
    // path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | "-"+
    [GeneratedRegex(@"^(?:(?<domain>(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?)/)?(?<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@(?<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")]
    private static partial Regex Grammar();

    /// <summary>The reference, or null with <paramref name="problem"/> saying what is wrong with it.</summary>
    public static ImageReference? TryParse(string? value, out string problem)
    {
        problem = "";
        if (string.IsNullOrEmpty(value))
        {
            problem = "image must be a non-empty Docker image reference (repository[:tag][@digest]).";
            return null;
        }
        var match = Grammar().Match(value);
        if (!match.Success)
        {
            problem = $"image '{Truncate(value)}' is not a valid Docker image reference (lowercase repository[:tag][@digest]).";
            return null;
        }
        var domain = match.Groups["domain"];
        var path = match.Groups["path"].Value;
        // A first component without '.', ':' or "localhost" is a path on Docker Hub, not a registry,
        // exactly as Docker splits it; the grammar above only admits such a domain in lowercase.
        var name = domain.Success ? domain.Value + "/" + path : path;
        if (name.Length > MaxNameLength)
        {
            problem = $"image repository name is longer than {MaxNameLength} characters.";
            return null;
        }
        return new ImageReference(
            name,
            match.Groups["tag"] is { Success: true } tag ? tag.Value : null,
            match.Groups["digest"] is { Success: true } digest ? digest.Value : null);
    }

    /// <summary>
    /// The repository as Docker names it in full: <c>busybox</c>, <c>docker.io/busybox</c> and
    /// <c>docker.io/library/busybox</c> are one repository, so a service opts in once for all spellings.
    /// </summary>
    public string CanonicalRepository
    {
        get
        {
            var slash = Repository.IndexOf('/');
            var first = slash < 0 ? "" : Repository[..slash];
            var isRegistry = first.Contains('.') || first.Contains(':') || first == "localhost";
            var (registry, path) = isRegistry ? (first, Repository[(slash + 1)..]) : ("docker.io", Repository);
            if (registry == "index.docker.io") registry = "docker.io";
            if (registry == "docker.io" && !path.Contains('/')) path = "library/" + path;
            return registry + "/" + path;
        }
    }

    /// <summary>
    /// The task definition's container definitions with <paramref name="image"/> set: on the container
    /// named <paramref name="container"/>, or, without a name, on every container whose image has the
    /// same repository. Null with <paramref name="problem"/> when no container matches; <paramref name="changed"/>
    /// says whether any image actually differs.
    /// </summary>
    public static JsonArray? Replace(JsonArray containerDefinitions, string image, string? container, out bool changed, out string problem)
    {
        changed = false;
        problem = "";
        var reference = TryParse(image, out problem) ?? throw new ArgumentException(problem, nameof(image));
        var result = containerDefinitions.DeepClone().AsArray();
        var matched = 0;
        foreach (var definition in result.OfType<JsonObject>().Select(d => new ContainerDefinitionView(d)))
        {
            var current = definition.Image;
            var matches = container is not null
                ? definition.Name == container
                : TryParse(current, out _) is { } existing && existing.CanonicalRepository == reference.CanonicalRepository;
            if (!matches) continue;
            matched++;
            if (current != image) changed = true;
            definition.Json["image"] = image;
        }
        if (matched > 0) return result;
        problem = container is not null
            ? $"The task definition has no container named '{Truncate(container)}'."
            : $"No container of the task definition runs an image of repository '{reference.Repository}'; name one with \"container\".";
        return null;
    }

    private static string Truncate(string value) => value.Length <= 300 ? value : value[..300] + "...";
}
