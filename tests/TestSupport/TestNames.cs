namespace Serverless.TestSupport;

/// <summary>Names that keep one test class's tables and queues apart from every other's.</summary>
public static class TestNames
{
    private const int MaxReadablePart = 12;

    /// <summary>
    /// A fresh storage prefix for <paramref name="prefix"/> (typically the test class's name): lower-case
    /// letters and digits, starting with a letter, at most 22 characters, different on every call. It is
    /// both a valid table name and a valid queue name, and leaves at least 41 characters for whatever a
    /// table or queue name appends to it (both allow 63).
    /// </summary>
    public static string Unique(string prefix)
    {
        var readable = new string(prefix.Where(char.IsAsciiLetterOrDigit).Select(char.ToLowerInvariant).ToArray());
        // Table names must start with a letter.
        if (readable.Length == 0 || !char.IsAsciiLetter(readable[0])) readable = "t" + readable;
        if (readable.Length > MaxReadablePart) readable = readable[..MaxReadablePart];
        return readable + Guid.NewGuid().ToString("N")[..10];
    }

    /// <summary><see cref="Unique(string)"/> for the test class <typeparamref name="TTestClass"/>.</summary>
    public static string Unique<TTestClass>() => Unique(typeof(TTestClass).Name);
}
