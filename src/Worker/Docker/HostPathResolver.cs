namespace Serverless.Worker.Docker;

/// <summary>Host paths as the kernel will see them when Docker binds them.</summary>
public static class HostPathResolver
{
    /// <summary>Links followed before giving up (the kernel's own limit is 40).</summary>
    private const int MaxLinks = 40;

    /// <summary>
    /// <paramref name="path"/> (absolute) with every symbolic link in it followed, like realpath(3),
    /// except that a part that does not exist yet is kept as written (Docker creates a missing bind
    /// source). A loop of links ends at the kernel's limit with the path reached so far.
    /// </summary>
    public static string Resolve(string path)
    {
        var pending = new LinkedList<string>(path.Split('/', StringSplitOptions.RemoveEmptyEntries));
        var current = "/";
        var links = 0;
        while (pending.First is { } first)
        {
            var part = first.Value;
            pending.RemoveFirst();
            if (part == ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? "/";
                continue;
            }
            var next = Path.Join(current, part);
            if (links < MaxLinks && new FileInfo(next).LinkTarget is { } target)
            {
                links++;
                // Go on from the link's target: an absolute one restarts at the root.
                if (target.StartsWith('/')) current = "/";
                foreach (var targetPart in target.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse()) pending.AddFirst(targetPart);
                continue;
            }
            current = next;
        }
        return current;
    }
}
