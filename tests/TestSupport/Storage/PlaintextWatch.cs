using System.Collections.Concurrent;
using System.Text;

namespace Serverless.TestSupport.Storage;

/// <summary>
/// Values that must never reach storage readable: every <see cref="StorageProxy"/> of the test process
/// looks for each watched value in every request it forwards (the target with its query, and the body:
/// entities, batches, queue messages), as UTF-8 and as base64 at each of the three byte alignments (a
/// binary property or a base64 queue message), and records where it saw one. A test watches the
/// secrets it creates from the moment it has them, and asserts at its end that no sighting names them.
/// </summary>
public static class PlaintextWatch
{
    private static readonly ConcurrentDictionary<string, byte[][]> Watched = new(StringComparer.Ordinal);
    private static readonly ConcurrentQueue<(string Value, string Where)> Seen = new();

    /// <summary>Watches <paramref name="value"/> (at least 8 characters, so it cannot match by chance) from now on.</summary>
    public static void Watch(string value)
    {
        if (value.Length < 8) throw new ArgumentException("A watched value needs at least 8 characters.", nameof(value));
        var bytes = Encoding.UTF8.GetBytes(value);
        Watched[value] = [bytes, .. Enumerable.Range(0, 3).Select(offset => Encoding.ASCII.GetBytes(Base64Core(bytes, offset)))];
    }

    /// <summary>Where <paramref name="value"/> was seen since it was watched, e.g. "Table POST /Tasks".</summary>
    public static IReadOnlyList<string> SightingsOf(string value)
        => [.. Seen.Where(s => s.Value == value).Select(s => s.Where)];

    internal static void Inspect(StorageService service, string method, string target, byte[] body)
    {
        if (Watched.IsEmpty) return;
        var targetBytes = Encoding.UTF8.GetBytes(Uri.UnescapeDataString(target));
        foreach (var (value, patterns) in Watched)
        {
            if (patterns.Any(p => body.AsSpan().IndexOf(p) >= 0 || targetBytes.AsSpan().IndexOf(p) >= 0))
                Seen.Enqueue((value, $"{service} {method} {target}"));
        }
    }

    // The base64 characters that depend on the value's bytes alone when it starts `offset` bytes into
    // a 3-byte group: whatever surrounds it, its encoding contains these.
    private static string Base64Core(byte[] value, int offset)
    {
        var encoded = Convert.ToBase64String([.. new byte[offset], .. value]);
        var first = (8 * offset + 5) / 6;
        var end = 8 * (offset + value.Length) / 6;
        return encoded[first..end];
    }
}
