using System.Globalization;
using System.Text.Json;
using Azure.Storage.Queues;
using Serverless.Core.Storage;

namespace Serverless.Functions.Standalone;

/// <summary>The parts of <c>host.json</c> the standalone host honours, with the host's defaults.</summary>
public sealed record HostJson
{
    public const string FileName = "host.json";

    /// <summary><c>extensions.http.routePrefix</c>; the host's default is <c>api</c>.</summary>
    public string RoutePrefix { get; init; } = "api";

    public QueueTriggerOptions Queues { get; init; } = new();

    /// <summary><c>functions</c>: when present, only these functions run, as in the host.</summary>
    public IReadOnlyList<string>? Functions { get; init; }

    /// <summary><c>logging.logLevel</c> entries, category to level (<c>default</c> included as written).</summary>
    public IReadOnlyDictionary<string, string> LogLevels { get; init; } = new Dictionary<string, string>();

    /// <summary>Reads the file; a missing file means all defaults.</summary>
    /// <exception cref="FormatException">A value is out of the range the host accepts.</exception>
    public static HostJson Load(string path)
        => File.Exists(path) ? Parse(File.ReadAllText(path)) : new HostJson();

    public static HostJson Parse(string json)
    {
        using var document = JsonDocument.Parse(json, new JsonDocumentOptions
        {
            AllowTrailingCommas = true,
            CommentHandling = JsonCommentHandling.Skip,
        });
        var root = document.RootElement;
        var result = new HostJson();

        if (TryGet(root, "extensions", out var extensions))
        {
            if (TryGet(extensions, "http", out var http) && TryGet(http, "routePrefix", out var prefix)
                && prefix.ValueKind == JsonValueKind.String)
            {
                result = result with { RoutePrefix = prefix.GetString()!.Trim('/') };
            }
            if (TryGet(extensions, "queues", out var queues))
            {
                result = result with { Queues = QueueTriggerOptions.Parse(queues) };
            }
        }
        if (TryGet(root, "functions", out var functions) && functions.ValueKind == JsonValueKind.Array)
        {
            result = result with { Functions = functions.EnumerateArray().Select(f => f.GetString()!).ToList() };
        }
        if (TryGet(root, "logging", out var logging) && TryGet(logging, "logLevel", out var levels)
            && levels.ValueKind == JsonValueKind.Object)
        {
            result = result with
            {
                LogLevels = levels.EnumerateObject()
                    .Where(l => l.Value.ValueKind == JsonValueKind.String)
                    .ToDictionary(l => l.Name, l => l.Value.GetString()!, StringComparer.OrdinalIgnoreCase),
            };
        }
        return result;
    }

    internal static bool TryGet(JsonElement element, string name, out JsonElement value)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in element.EnumerateObject())
            {
                if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
                {
                    value = property.Value;
                    return true;
                }
            }
        }
        value = default;
        return false;
    }
}

/// <summary>
/// <c>extensions.queues</c> of host.json, with the defaults of the Storage Queues extension (5.x).
/// </summary>
public sealed record QueueTriggerOptions
{
    /// <summary>The lowest polling interval: the host polls this often while messages keep arriving.</summary>
    public static readonly TimeSpan MinimumPollingInterval = QueueConsumerOptions.MinimumPollingInterval;

    /// <summary>Messages fetched per poll (1–32).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>
    /// A new batch is fetched when no more than this many messages are still being processed, so up to
    /// <c>BatchSize + NewBatchThreshold</c> run at once. The host's default is <c>BatchSize / 2 × processors</c>.
    /// </summary>
    public int NewBatchThreshold { get; init; } = 16 / 2 * Environment.ProcessorCount;

    /// <summary>The longest wait between polls of an empty queue.</summary>
    public TimeSpan MaxPollingInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How long a failed message stays invisible before its retry.</summary>
    public TimeSpan VisibilityTimeout { get; init; } = TimeSpan.Zero;

    /// <summary>A message that has failed this many times moves to <c>&lt;queue&gt;-poison</c>.</summary>
    public int MaxDequeueCount { get; init; } = 5;

    /// <summary>How message bodies are encoded on the wire; the host's default is Base64.</summary>
    public QueueMessageEncoding MessageEncoding { get; init; } = QueueMessageEncoding.Base64;

    /// <summary>
    /// How long a received message stays invisible while its function runs; renewed at half that interval
    /// for as long as the function runs. The host uses 10 minutes and does not expose it in host.json.
    /// </summary>
    public TimeSpan MessageLease { get; init; } = TimeSpan.FromMinutes(10);

    internal static QueueTriggerOptions Parse(JsonElement queues)
    {
        var options = new QueueTriggerOptions();
        var batchSize = ReadInt(queues, "batchSize") ?? options.BatchSize;
        if (batchSize is < 1 or > 32) throw new FormatException("host.json extensions.queues.batchSize must be between 1 and 32.");

        var threshold = ReadInt(queues, "newBatchThreshold") ?? batchSize / 2 * Environment.ProcessorCount;
        if (threshold < 0) throw new FormatException("host.json extensions.queues.newBatchThreshold must not be negative.");

        var maxPolling = ReadTimeSpan(queues, "maxPollingInterval") ?? options.MaxPollingInterval;
        if (maxPolling < MinimumPollingInterval)
        {
            throw new FormatException("host.json extensions.queues.maxPollingInterval must be at least 00:00:00.1.");
        }

        var visibility = ReadTimeSpan(queues, "visibilityTimeout") ?? options.VisibilityTimeout;
        if (visibility < TimeSpan.Zero) throw new FormatException("host.json extensions.queues.visibilityTimeout must not be negative.");

        var maxDequeue = ReadInt(queues, "maxDequeueCount") ?? options.MaxDequeueCount;
        if (maxDequeue < 1) throw new FormatException("host.json extensions.queues.maxDequeueCount must be at least 1.");

        var encoding = options.MessageEncoding;
        if (HostJson.TryGet(queues, "messageEncoding", out var encodingValue) && encodingValue.ValueKind == JsonValueKind.String)
        {
            encoding = encodingValue.GetString()!.ToLowerInvariant() switch
            {
                "base64" => QueueMessageEncoding.Base64,
                "none" => QueueMessageEncoding.None,
                var other => throw new FormatException(
                    $"host.json extensions.queues.messageEncoding '{other}' is not supported; use 'base64' or 'none'."),
            };
        }

        return options with
        {
            BatchSize = batchSize,
            NewBatchThreshold = threshold,
            MaxPollingInterval = maxPolling,
            VisibilityTimeout = visibility,
            MaxDequeueCount = maxDequeue,
            MessageEncoding = encoding,
        };
    }

    private static int? ReadInt(JsonElement element, string name)
        => HostJson.TryGet(element, name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetInt32() : null;

    // The host accepts "hh:mm:ss" strings; a bare number is read as milliseconds, as older hosts did.
    private static TimeSpan? ReadTimeSpan(JsonElement element, string name)
    {
        if (!HostJson.TryGet(element, name, out var value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.String when TimeSpan.TryParse(value.GetString(), CultureInfo.InvariantCulture, out var span) => span,
            JsonValueKind.Number => TimeSpan.FromMilliseconds(value.GetDouble()),
            _ => throw new FormatException($"host.json extensions.queues.{name} must be a TimeSpan such as \"00:00:30\"."),
        };
    }
}
