using System.Text.Json;
using Docker.DotNet.Models;

namespace Serverless.Worker.Docker;

/// <summary>
/// Docker's <c>/events</c> stream as the engine writes it: one JSON object per line. Read here
/// rather than by Docker.DotNet's <c>MonitorEventsAsync(…, IProgress&lt;Message&gt;, …)</c>, whose
/// StreamReader and JSON reader can keep an event that already arrived until the next one does
/// (an event of more than about 1 KB, such as one carrying a task's labels, usually; found with a
/// loopback engine in DockerEventWatcherTests): each event is handed on as soon as its line ends,
/// and the read ends when its token is cancelled.
/// </summary>
internal static class DockerEventLines
{
    /// <summary>No event line is longer: a stream that says otherwise is not Docker's.</summary>
    private const int MaxLine = 1 << 20;

    /// <summary>
    /// Reads <paramref name="stream"/> to its end, calling <paramref name="onEvent"/> with each event
    /// (<paramref name="onMalformed"/> with a line that is not one). Cancelling ends the read at once
    /// (the stream is disposed, so a read the stream itself does not cancel ends too).
    /// </summary>
    public static async Task ReadAsync(Stream stream, Action<Message> onEvent, Action<string> onMalformed, CancellationToken cancellationToken)
    {
        await using var closing = cancellationToken.Register(stream.Dispose);
        var buffer = new byte[16 * 1024];
        var filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                if (buffer.Length >= MaxLine) throw new IOException($"A Docker event line longer than {MaxLine} bytes");
                Array.Resize(ref buffer, buffer.Length * 2);
            }
            int read;
            try
            {
                read = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            }
            catch (Exception e) when (cancellationToken.IsCancellationRequested && e is not OperationCanceledException)
            {
                throw new OperationCanceledException("The event stream was closed", e, cancellationToken);
            }
            if (read == 0) return;
            var scanned = filled;
            filled += read;
            var lineStart = 0;
            int newline;
            while ((newline = buffer.AsSpan(scanned, filled - scanned).IndexOf((byte)'\n')) >= 0)
            {
                var lineEnd = scanned + newline;
                var line = buffer.AsMemory(lineStart, lineEnd - lineStart);
                if (!line.Span.Trim("\r\t "u8).IsEmpty) Deliver(line, onEvent, onMalformed);
                lineStart = scanned = lineEnd + 1;
            }
            // What follows the last line end is the start of the next line.
            buffer.AsSpan(lineStart, filled - lineStart).CopyTo(buffer);
            filled -= lineStart;
        }
    }

    private static void Deliver(ReadOnlyMemory<byte> line, Action<Message> onEvent, Action<string> onMalformed)
    {
        Message message;
        try
        {
            message = Parse(line.Span);
        }
        catch (JsonException)
        {
            onMalformed(System.Text.Encoding.UTF8.GetString(line.Span));
            return;
        }
        onEvent(message);
    }

    /// <summary>One event line, named as Docker writes them (Docker.DotNet's <see cref="Message"/> and <see cref="Actor"/>).</summary>
    public static Message Parse(ReadOnlySpan<byte> line)
    {
        var reader = new Utf8JsonReader(line);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new JsonException("An event is a JSON object");
        return new Message
        {
            Status = Text(root, "status"),
            ID = Text(root, "id"),
            From = Text(root, "from"),
            Type = Text(root, "Type"),
            Action = Text(root, "Action"),
            Scope = Text(root, "scope"),
            Time = Number(root, "time"),
            TimeNano = Number(root, "timeNano"),
            Actor = root.TryGetProperty("Actor", out var actor) && actor.ValueKind == JsonValueKind.Object
                ? new Actor
                {
                    ID = Text(actor, "ID"),
                    Attributes = actor.TryGetProperty("Attributes", out var attributes) && attributes.ValueKind == JsonValueKind.Object
                        ? attributes.EnumerateObject().ToDictionary(
                            a => a.Name, a => a.Value.ValueKind == JsonValueKind.String ? a.Value.GetString()! : a.Value.GetRawText(), StringComparer.Ordinal)
                        : null,
                }
                : null,
        };
    }

    /// <summary>An event as Docker writes it on the stream: one line (the simulated engine's stream).</summary>
    public static byte[] Line(Message message)
    {
        using var output = new MemoryStream();
        using (var writer = new Utf8JsonWriter(output))
        {
            writer.WriteStartObject();
            if (message.Status is { } status) writer.WriteString("status", status);
            if (message.ID is { } id) writer.WriteString("id", id);
            if (message.From is { } from) writer.WriteString("from", from);
            if (message.Type is { } type) writer.WriteString("Type", type);
            if (message.Action is { } action) writer.WriteString("Action", action);
            if (message.Actor is { } actor)
            {
                writer.WriteStartObject("Actor");
                if (actor.ID is { } actorId) writer.WriteString("ID", actorId);
                if (actor.Attributes is { } attributes)
                {
                    writer.WriteStartObject("Attributes");
                    foreach (var (name, value) in attributes) writer.WriteString(name, value);
                    writer.WriteEndObject();
                }
                writer.WriteEndObject();
            }
            if (message.Scope is { } scope) writer.WriteString("scope", scope);
            writer.WriteNumber("time", message.Time);
            writer.WriteNumber("timeNano", message.TimeNano);
            writer.WriteEndObject();
        }
        output.WriteByte((byte)'\n');
        return output.ToArray();
    }

    private static string? Text(JsonElement element, string name)
        => element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static long Number(JsonElement element, string name)
        => element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) ? number : 0;
}
