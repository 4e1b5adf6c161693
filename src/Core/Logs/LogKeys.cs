using System.Globalization;
using System.Text;

namespace Serverless.Core.Logs;

/// <summary>
/// Table keys for log group and stream names. Keys may not hold <c>/ \ # ?</c> or control characters,
/// which names do hold (<c>/ecs/web</c>, a stream <c>web/app/1f2e…</c>).
/// </summary>
public static class LogKeys
{
    /// <summary>
    /// A group name (<c>[.\-_/#A-Za-z0-9]+</c>) as a row key that sorts as the name does: <c># - . /</c>
    /// move down by two (to <c>! + , -</c>), which keeps their order among themselves and below the
    /// digits, so DescribeLogGroups pages with a range query in name order.
    /// </summary>
    public static string Group(string name)
    {
        var key = new StringBuilder(name.Length);
        foreach (var c in name) key.Append(c is '#' or '-' or '.' or '/' ? (char)(c - 2) : c);
        return key.ToString();
    }

    /// <summary>
    /// A stream name (any text but <c>:</c> and <c>*</c>) as a row key: forbidden characters map to one
    /// private-use character each, a private-use character of that block is written as two; every
    /// character's code is prefix-free, so a name's prefix maps to its key's prefix (DescribeLogStreams'
    /// <c>logStreamNamePrefix</c> is a range query) and a 512-character name stays within 1,024.
    /// </summary>
    public static string Stream(string name)
    {
        var key = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            if (c is '/' or '\\' or '#' or '?' || char.IsControl(c)) key.Append((char)(Private + c));
            else if (c >= Private && c <= Escape) key.Append(Escape).Append(c);
            else key.Append(c);
        }
        return key.ToString();
    }

    private const char Private = '\uE000';
    private const char Escape = '\uE100';

    /// <summary>The first key after every key that starts with <paramref name="prefix"/>.</summary>
    public static string PrefixEnd(string prefix) => prefix + '\uFFFF';

    /// <summary>Milliseconds since the epoch as a fixed-width row key part, so keys sort by time.</summary>
    public static string Time(long milliseconds) => milliseconds.ToString("D15", CultureInfo.InvariantCulture);
}
