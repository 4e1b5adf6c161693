using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serverless.Core.Api;
using Serverless.Core.Api.Auth;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Api;

/// <summary>
/// The whole control plane in-process, composed as the app composes it (<see cref="ControlPlaneServices"/>)
/// over this test's Azurite and table prefix, and driven through <see cref="ApiEndpoint"/> with requests
/// signed as botocore signs them: what a client on the wire would get, without a host.
/// </summary>
public sealed class ApiHarness : IDisposable
{
    public const string AccessKeyId = "AKIDHARNESS";
    public const string Secret = "harness-secret";
    public const string Host = "ecs.harness.test";

    /// <summary>The key-encryption key of this process's harnesses (made up per run, as run.sh makes one per state directory).</summary>
    public static readonly string KeyEncryptionKey = Serverless.Core.Secrets.KeyEncryptionKeys.Generate("harness");

    private readonly ServiceProvider _services;

    public ApiHarness(AzuriteFixture azurite, string prefix, Action<IServiceCollection>? configure = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = azurite.ConnectionString,
            ["Ecs:StoragePrefix"] = prefix,
            ["Ecs:AccessKeys"] = $"{AccessKeyId}:{Secret}",
            ["Secrets:KeyEncryptionKeys"] = KeyEncryptionKey,
        }).Build();
        var services = new ServiceCollection().AddLogging(logging => logging.AddProvider(Errors));
        services.AddControlPlane(configuration);
        configure?.Invoke(services);
        _services = services.BuildServiceProvider();
        Endpoint = _services.GetRequiredService<ApiEndpoint>();
    }

    public ApiEndpoint Endpoint { get; }

    /// <summary>Exceptions the control plane logged: what a 500 hid from the client.</summary>
    public ErrorLog Errors { get; } = new();

    public T Get<T>() where T : notnull => _services.GetRequiredService<T>();

    public IServiceProvider Services => _services;

    public void Dispose() => _services.Dispose();

    public sealed record Answer(int Status, JsonObject? Body, string Raw)
    {
        public string? Type => Body?["__type"]?.GetValue<string>();
        public string? Message => Body?["message"]?.GetValue<string>();
    }

    /// <summary>An ECS action with a JSON body, signed (host, x-amz-date, x-amz-target).</summary>
    public Task<Answer> EcsAsync(string action, string body, CancellationToken cancellationToken)
        => SendAsync($"{ActionRegistry.EcsTargetPrefix}.{action}", Encoding.UTF8.GetBytes(body), cancellationToken);

    public Task<Answer> SendAsync(string target, byte[] body, CancellationToken cancellationToken,
        string signedHeaders = "host;x-amz-date;x-amz-target", IEnumerable<(string Name, string Value)>? extraHeaders = null)
    {
        var headers = new List<(string Name, string Value)>
        {
            ("Host", Host),
            ("X-Amz-Date", TimeProvider.System.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'")),
            ("X-Amz-Target", target),
            ("Content-Type", "application/x-amz-json-1.1"),
        };
        headers.AddRange(extraHeaders ?? []);
        headers.Add(("Authorization", Authorization(headers, signedHeaders, body)));
        return SendRawAsync(headers, body, cancellationToken);
    }

    /// <summary>A POST to the endpoint's root with these headers and body, and the stream its answer is written to.</summary>
    public static (DefaultHttpContext Context, MemoryStream Output) PostContext(IEnumerable<(string Name, string Value)> headers, byte[] body)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.Path = "/";
        foreach (var (name, value) in headers) context.Request.Headers.Append(name, value);
        context.Request.Body = new MemoryStream(body);
        context.Request.ContentLength = body.Length;
        var output = new MemoryStream();
        context.Response.Body = output;
        return (context, output);
    }

    public async Task<Answer> SendRawAsync(IEnumerable<(string Name, string Value)> headers, byte[] body, CancellationToken cancellationToken)
    {
        var (context, output) = PostContext(headers, body);

        var result = (AwsJsonResult)await Endpoint.HandleAsync(context.Request, cancellationToken);
        await result.WriteAsync(context.Response);
        var raw = Encoding.UTF8.GetString(output.ToArray());
        return new Answer(result.StatusCode, JsonNode.Parse(raw) as JsonObject, raw);
    }

    /// <summary>SigV4 as botocore computes it for a POST to "/" without a query string.</summary>
    public static string Authorization(IReadOnlyList<(string Name, string Value)> headers, string signedHeaders, byte[] body)
    {
        var timestamp = headers.First(h => h.Name == "X-Amz-Date").Value;
        var canonicalHeaders = new StringBuilder();
        foreach (var name in signedHeaders.Split(';'))
        {
            var values = headers.Where(h => string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value.Trim());
            canonicalHeaders.Append(name).Append(':').Append(string.Join(',', values)).Append('\n');
        }
        var canonical = $"POST\n/\n\n{canonicalHeaders}\n{signedHeaders}\n{Convert.ToHexStringLower(SHA256.HashData(body))}";
        var scope = $"{timestamp[..8]}/us-east-1/ecs/aws4_request";
        var stringToSign = $"{SigV4Verifier.Algorithm}\n{timestamp}\n{scope}\n{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))}";
        var key = SigV4Verifier.DeriveSigningKey(Secret, timestamp.AsSpan(0, 8), "us-east-1", "ecs");
        var signature = Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
        return $"{SigV4Verifier.Algorithm} Credential={AccessKeyId}/{scope}, SignedHeaders={signedHeaders}, Signature={signature}";
    }
}

/// <summary>Collects the exceptions logged by any category.</summary>
public sealed class ErrorLog : ILoggerProvider, ILogger
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<Exception> _exceptions = new();

    public IReadOnlyCollection<Exception> Exceptions => _exceptions;

    public Exception? Last => _exceptions.LastOrDefault();

    public void Clear() => _exceptions.Clear();

    public ILogger CreateLogger(string categoryName) => this;

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (exception is not null) _exceptions.Enqueue(exception);
    }

    public void Dispose()
    {
    }
}
