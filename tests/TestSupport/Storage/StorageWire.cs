using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml;

namespace Serverless.TestSupport.Storage;

/// <summary>
/// The parts of Table and Queue Storage's REST protocol the proxy reads (resource names, entity keys,
/// batch bodies, message bodies) and the error bodies it writes, in Azure's formats.
/// </summary>
public static partial class StorageWire
{
    /// <summary>
    /// The table or queue a request addresses: the path segment after the account, without an entity's
    /// <c>(PartitionKey='..',RowKey='..')</c> or a query's <c>()</c>; null for account-level requests.
    /// </summary>
    public static string? ResourceName(string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length < 2) return null;
        var name = Uri.UnescapeDataString(segments[1]);
        var paren = name.IndexOf('(');
        if (paren >= 0) name = name[..paren];
        return name.Length == 0 || name.StartsWith('$') ? null : name;
    }

    /// <summary>The keys of <c>table(PartitionKey='a',RowKey='b')</c> in a path or URL as sent (percent-encoded); nulls when it names none.</summary>
    public static (string? PartitionKey, string? RowKey) EntityKeys(string pathOrUrl)
    {
        var match = EntityKeyPattern().Match(Uri.UnescapeDataString(pathOrUrl));
        if (!match.Success) return (null, null);
        static string Unquote(string value) => value.Replace("''", "'");
        return (Unquote(match.Groups["pk"].Value), Unquote(match.Groups["rk"].Value));
    }

    /// <summary>
    /// The operations of a <c>$batch</c> body (one change set of <c>application/http</c> parts): method,
    /// table, keys (from the URL, or from the entity of an insert) and the entity of each write.
    /// </summary>
    public static IReadOnlyList<BatchOperation> ParseBatch(string contentType, string body)
    {
        var batchBoundary = Boundary(contentType) ?? throw new FormatException("The batch has no boundary.");
        var operations = new List<BatchOperation>();
        foreach (var batchPart in Parts(body, batchBoundary))
        {
            var (headers, content) = SplitHead(batchPart);
            var changeset = Boundary(Header(headers, "Content-Type") ?? "");
            var requests = changeset is null ? [content] : Parts(content, changeset);
            foreach (var request in requests)
            {
                var (_, http) = SplitHead(request);
                var (head, entityText) = SplitHead(http);
                var requestLine = head.Split('\n', 2)[0].Trim();
                var pieces = requestLine.Split(' ');
                if (pieces.Length < 2) continue;
                var method = pieces[0];
                var url = pieces[1];
                var path = Uri.TryCreate(url, UriKind.Absolute, out var absolute) ? absolute.AbsolutePath : url;
                JsonElement? entity = null;
                if (!string.IsNullOrWhiteSpace(entityText))
                {
                    using var document = JsonDocument.Parse(entityText.Trim());
                    entity = document.RootElement.Clone();
                }
                var (partitionKey, rowKey) = EntityKeys(url);
                if (partitionKey is null && entity is { } e)
                {
                    partitionKey = e.TryGetProperty("PartitionKey", out var pk) ? pk.GetString() : null;
                    rowKey = e.TryGetProperty("RowKey", out var rk) ? rk.GetString() : null;
                }
                operations.Add(new BatchOperation(method, ResourceName(path), partitionKey, rowKey, entity));
            }
        }
        return operations;
    }

    /// <summary>The text of a <c>&lt;QueueMessage&gt;&lt;MessageText&gt;</c> body, XML-decoded; null when there is none.</summary>
    public static string? QueueMessageText(byte[] body)
    {
        if (body.Length == 0) return null;
        // From the bytes: the reader honours the declaration and a byte-order mark.
        using var reader = XmlReader.Create(new MemoryStream(body), new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit });
        while (reader.Read())
        {
            if (reader.NodeType == XmlNodeType.Element && reader.LocalName == "MessageText") return reader.ReadElementContentAsString();
        }
        return null;
    }

    /// <summary>A Table service error body: <c>{"odata.error":{"code":..,"message":{"lang":"en-US","value":..}}}</c>.</summary>
    public static string TableErrorJson(StorageRefusal refusal, string requestId, DateTimeOffset now)
    {
        var index = refusal.OperationIndex is { } i ? $"{i}:" : "";
        var value = $"{index}{refusal.Message}\nRequestId:{requestId}\nTime:{now.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffffffZ}";
        return JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["odata.error"] = new Dictionary<string, object>
            {
                ["code"] = refusal.Code,
                ["message"] = new Dictionary<string, string> { ["lang"] = "en-US", ["value"] = value },
            },
        });
    }

    /// <summary>A Queue (and common) service error body: <c>&lt;Error&gt;&lt;Code&gt;..&lt;/Code&gt;&lt;Message&gt;..&lt;/Message&gt;&lt;/Error&gt;</c>.</summary>
    public static string QueueErrorXml(StorageRefusal refusal, string requestId, DateTimeOffset now)
    {
        var message = $"{refusal.Message}\nRequestId:{requestId}\nTime:{now.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffffffZ}";
        var limit = refusal.MaxLimit is { } max ? $"<MaxLimit>{max}</MaxLimit>" : "";
        return $"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{Escape(refusal.Code)}</Code><Message>{Escape(message)}</Message>{limit}</Error>";
    }

    /// <summary>
    /// The 202 answer to a <c>$batch</c> whose change set failed: one <c>application/http</c> part with
    /// the failed operation's status and error, its index in front of the message (the SDK reads it into
    /// <c>TableTransactionFailedException.FailedTransactionActionIndex</c>).
    /// </summary>
    public static (string ContentType, string Body) BatchFailure(StorageRefusal refusal, string requestId, DateTimeOffset now)
    {
        var batch = $"batchresponse_{Guid.NewGuid()}";
        var changeset = $"changesetresponse_{Guid.NewGuid()}";
        var body = new StringBuilder()
            .Append($"--{batch}\r\n")
            .Append($"Content-Type: multipart/mixed; boundary={changeset}\r\n\r\n")
            .Append($"--{changeset}\r\n")
            .Append("Content-Type: application/http\r\n")
            .Append("Content-Transfer-Encoding: binary\r\n\r\n")
            .Append($"HTTP/1.1 {refusal.Status} {ReasonPhrase(refusal.Status)}\r\n")
            .Append("X-Content-Type-Options: nosniff\r\n")
            .Append("Cache-Control: no-cache\r\n")
            .Append("DataServiceVersion: 3.0;\r\n")
            .Append("Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8\r\n\r\n")
            .Append(TableErrorJson(refusal, requestId, now)).Append("\r\n")
            .Append($"--{changeset}--\r\n")
            .Append($"--{batch}--\r\n");
        return ($"multipart/mixed; boundary={batch}", body.ToString());
    }

    public static string ReasonPhrase(int status) => status switch
    {
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Request Entity Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Error",
    };

    private static string Escape(string text)
        => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    private static string? Boundary(string contentType)
    {
        var match = BoundaryPattern().Match(contentType);
        return match.Success ? match.Groups["b"].Value.Trim('"') : null;
    }

    private static string? Header(string headers, string name)
    {
        foreach (var line in headers.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon > 0 && line[..colon].Trim().Equals(name, StringComparison.OrdinalIgnoreCase)) return line[(colon + 1)..].Trim();
        }
        return null;
    }

    private static List<string> Parts(string body, string boundary)
    {
        var parts = new List<string>();
        var delimiter = "--" + boundary;
        var sections = body.Split(delimiter);
        // Before the first delimiter is a preamble; a section starting "--" is the close delimiter's tail.
        for (var i = 1; i < sections.Length; i++)
        {
            if (sections[i].StartsWith("--", StringComparison.Ordinal)) break;
            parts.Add(sections[i].TrimStart('\r', '\n'));
        }
        return parts;
    }

    private static (string Head, string Tail) SplitHead(string text)
    {
        var normalized = text.Replace("\r\n", "\n");
        var end = normalized.IndexOf("\n\n", StringComparison.Ordinal);
        return end < 0 ? (normalized, "") : (normalized[..end], normalized[(end + 2)..]);
    }

    [GeneratedRegex(@"\(PartitionKey='(?<pk>(?:[^']|'')*)',RowKey='(?<rk>(?:[^']|'')*)'\)")]
    private static partial Regex EntityKeyPattern();

    [GeneratedRegex(@"boundary=(?<b>[^;\s]+)", RegexOptions.IgnoreCase)]
    private static partial Regex BoundaryPattern();
}
