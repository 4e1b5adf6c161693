using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Serverless.TestSupport.Storage;

/// <summary>
/// A small HTTP proxy in front of Azurite's Table and Queue endpoints that refuses what Azure refuses
/// (<see cref="AzureLimits"/>), with Azure's status codes and error bodies, and injects
/// <see cref="Faults"/>. Everything else is forwarded unchanged, so Shared Key signatures still hold
/// (they cover the path, query and headers, not the host's port).
/// </summary>
public sealed class StorageProxy : IAsyncDisposable
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "TE", "Trailer", "Host",
    };

    private readonly HttpClient _upstream = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    private readonly TimeProvider _time;
    private WebApplication? _app;
    private int _tablePort;
    private int _queuePort;
    private volatile Uri? _tableTarget;
    private volatile Uri? _queueTarget;

    public StorageProxy(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        Faults = new StorageFaults(_time);
    }

    private long _requests;

    /// <summary>Requests received so far (table and queue, refused ones included): each is one storage transaction.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    /// <summary>Called for every request with its service, HTTP method and table or queue (benchmarks break counts down with it).</summary>
    public Action<StorageService, string, string?>? RequestSeen { get; set; }
    /// <summary>
    /// Called for every request received (before faults and limits), with the table or queue and the
    /// partition it addresses: a counting meter (bench/ScaleSim) attributes the transactions.
    /// </summary>
    public Action<StorageRequest>? Observe { get; set; }

    /// <summary>The requests received while <paramref name="act"/> ran (<see cref="Observe"/> is taken meanwhile).</summary>
    public async Task<IReadOnlyList<StorageRequest>> RecordAsync(Func<Task> act)
    {
        var seen = new List<StorageRequest>();
        Observe = r => { lock (seen) seen.Add(r); };
        try
        {
            await act();
        }
        finally
        {
            Observe = null;
        }
        lock (seen) return [.. seen];
    }

    /// <summary>Faults to inject into what passes through.</summary>
    public StorageFaults Faults { get; }

    /// <summary>Whether Azure's limits are enforced (on unless a test turns them off to compare with Azurite).</summary>
    public bool EnforceLimits { get; set; } = true;

    /// <summary>The proxy's table service root (e.g. <c>http://127.0.0.1:5123</c>).</summary>
    public Uri TableRoot => new($"http://127.0.0.1:{_tablePort}");

    /// <summary>The proxy's queue service root.</summary>
    public Uri QueueRoot => new($"http://127.0.0.1:{_queuePort}");

    /// <summary>Where requests go: Azurite's table and queue service roots. May change while running (an Azurite restart).</summary>
    public void Retarget(Uri tableRoot, Uri queueRoot)
    {
        _tableTarget = tableRoot;
        _queueTarget = queueRoot;
    }

    public async Task StartAsync(Uri tableRoot, Uri queueRoot, CancellationToken cancellationToken)
    {
        Retarget(tableRoot, queueRoot);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        ListenOptions? tables = null, queues = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MinResponseDataRate = null;
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                tables = listen;
                listen.Use(next => context => OnConnectionAsync(context, next, StorageService.Table));
            });
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                queues = listen;
                listen.Use(next => context => OnConnectionAsync(context, next, StorageService.Queue));
            });
        });
        _app = builder.Build();
        _app.Run(async context =>
        {
            try
            {
                await HandleAsync(context);
            }
            catch (Exception e) when (e is not OperationCanceledException && !context.Response.HasStarted)
            {
                // A bug here must not pass for a storage fault: say what broke.
                await File.AppendAllTextAsync(Path.Combine(Path.GetTempPath(), "storage-proxy-errors.log"), $"{DateTime.UtcNow:O} {context.Request.Method} {context.Request.Path}: {e}\n");
                context.Response.StatusCode = 500;
                context.Response.Headers["x-ms-error-code"] = "StorageProxyError";
                await context.Response.WriteAsync($"storage proxy: {e}");
            }
        });
        await _app.StartAsync(cancellationToken);
        // Kestrel writes the port it bound back into each listener's options.
        (_tablePort, _queuePort) = (tables!.IPEndPoint!.Port, queues!.IPEndPoint!.Port);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _app.StopAsync(grace.Token);
            await _app.DisposeAsync();
            _app = null;
        }
        _upstream.Dispose();
    }

    private Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next, StorageService service)
    {
        // "Down" for a whole service refuses the connection before a request is read.
        if (Faults.Take(service, resource: null, connectionOnly: true) is not null)
        {
            connection.Abort(new ConnectionAbortedException("storage proxy: down"));
            return Task.CompletedTask;
        }
        connection.Items["service"] = service;
        return next(connection);
    }

    private StorageService ServiceOf(HttpContext context)
        => context.Connection.LocalPort == _queuePort ? StorageService.Queue : StorageService.Table;

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        var service = ServiceOf(context);
        var request = context.Request;
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path + request.QueryString;
        var path = request.Path.Value ?? "/";
        var body = await ReadBodyAsync(request, context.RequestAborted);
        PlaintextWatch.Inspect(service, request.Method, rawTarget, body);

        var resource = StorageWire.ResourceName(path);
        IReadOnlyList<BatchOperation>? batch = null;
        if (service == StorageService.Table && path.EndsWith("/$batch", StringComparison.Ordinal))
        {
            batch = StorageWire.ParseBatch(request.ContentType ?? "", Encoding.UTF8.GetString(body));
            resource = batch.FirstOrDefault()?.Table;
        }
        RequestSeen?.Invoke(service, request.Method, resource);

        var observed = Observe is null ? null : StorageRequest.Of(service, request.Method, path, rawTarget, body, batch, resource);
        // A query is observed once its answer tells how many entities it read.
        if (observed is not null && observed.Kind != "query") Observe!(observed);

        if (Faults.Take(service, resource) is { } fault)
        {
            switch (fault.Fault.Kind)
            {
                case StorageFaultKind.Down:
                    context.Abort();
                    return;
                case StorageFaultKind.Delay:
                    await Task.Delay(fault.Fault.Delay, _time, context.RequestAborted);
                    break;
                case StorageFaultKind.ServerBusy:
                    await RefuseAsync(context, service, new StorageRefusal(503, "ServerBusy",
                        service == StorageService.Table ? "Operations per second is over the account limit." : "The server is currently unable to receive requests. Please retry your request."));
                    return;
                case StorageFaultKind.OperationTimedOut:
                    await RefuseAsync(context, service, new StorageRefusal(500, "OperationTimedOut", "The operation could not be completed within the permitted time."));
                    return;
            }
        }

        if (EnforceLimits && Check(service, request, rawTarget, body, batch) is { } refusal)
        {
            if (observed?.Kind == "query") Observe!(observed);
            if (batch is not null && refusal.OperationIndex is not null)
                await RefuseBatchAsync(context, refusal);
            else
                await RefuseAsync(context, service, refusal);
            return;
        }

        await ForwardAsync(context, service, rawTarget, body, observed?.Kind == "query" ? observed : null);
    }

    private static StorageRefusal? Check(StorageService service, HttpRequest request, string rawTarget, byte[] body, IReadOnlyList<BatchOperation>? batch)
    {
        if (service == StorageService.Queue)
        {
            // Put Message (POST .../messages) and Update Message (PUT .../messages/{id}) carry a message text.
            var isMessage = request.Path.Value?.Contains("/messages", StringComparison.Ordinal) == true
                            && (HttpMethods.IsPost(request.Method) || HttpMethods.IsPut(request.Method));
            return isMessage && body.Length > 0 ? AzureLimits.CheckQueueMessage(StorageWire.QueueMessageText(body)) : null;
        }

        if (batch is not null) return AzureLimits.CheckBatch(body.Length, batch);
        if (HttpMethods.IsGet(request.Method)) return AzureLimits.CheckFilter(request.Query["$filter"].FirstOrDefault());
        var isEntityWrite = (HttpMethods.IsPost(request.Method) || HttpMethods.IsPut(request.Method) || HttpMethods.IsPatch(request.Method)
                             || request.Method == "MERGE") && StorageWire.ResourceName(request.Path.Value ?? "") is not (null or "Tables");
        if (isEntityWrite && body.Length > 0)
        {
            using var entity = JsonDocument.Parse(body);
            var (partitionKey, rowKey) = StorageWire.EntityKeys(rawTarget);
            return AzureLimits.CheckEntity(entity.RootElement, partitionKey, rowKey);
        }
        if (HttpMethods.IsDelete(request.Method) && StorageWire.EntityKeys(rawTarget) is (not null, _) keys)
            return AzureLimits.CheckKeys(keys.PartitionKey, keys.RowKey);
        return null;
    }

    private async Task ForwardAsync(HttpContext context, StorageService service, string rawTarget, byte[] body, StorageRequest? query = null)
    {
        var target = (service == StorageService.Queue ? _queueTarget : _tableTarget)!;
        using var message = new HttpRequestMessage(new HttpMethod(context.Request.Method), new Uri(target, rawTarget));
        if (body.Length > 0 || context.Request.ContentLength is not null) message.Content = new ByteArrayContent(body);
        foreach (var (name, values) in context.Request.Headers)
        {
            if (HopByHop.Contains(name)) continue;
            if (!message.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
                message.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
        }

        HttpResponseMessage response;
        try
        {
            response = await _upstream.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        }
        catch (HttpRequestException)
        {
            // Azurite is down (or restarting): so is the endpoint, as far as the client can tell.
            context.Abort();
            return;
        }
        using (response)
        {
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                if (!HopByHop.Contains(name)) context.Response.Headers[name] = values.ToArray();
            }
            if (query is not null)
            {
                var answer = await response.Content.ReadAsByteArrayAsync(context.RequestAborted);
                Observe?.Invoke(query with { Entities = StorageRequest.CountEntities(answer) });
                await context.Response.Body.WriteAsync(answer, context.RequestAborted);
                return;
            }
            await using var stream = await response.Content.ReadAsStreamAsync(context.RequestAborted);
            await stream.CopyToAsync(context.Response.Body, context.RequestAborted);
        }
    }

    private async Task RefuseAsync(HttpContext context, StorageService service, StorageRefusal refusal)
    {
        var requestId = Guid.NewGuid().ToString();
        var response = context.Response;
        response.StatusCode = refusal.Status;
        response.Headers["x-ms-request-id"] = requestId;
        response.Headers["x-ms-version"] = context.Request.Headers["x-ms-version"].ToString();
        response.Headers["x-ms-error-code"] = refusal.Code;
        if (context.Request.Headers["x-ms-client-request-id"] is { Count: > 0 } clientRequestId)
            response.Headers["x-ms-client-request-id"] = clientRequestId;
        string body;
        if (service == StorageService.Table)
        {
            response.ContentType = "application/json;odata=minimalmetadata;streaming=true;charset=utf-8";
            body = StorageWire.TableErrorJson(refusal, requestId, _time.GetUtcNow());
        }
        else
        {
            response.ContentType = "application/xml";
            body = StorageWire.QueueErrorXml(refusal, requestId, _time.GetUtcNow());
        }
        await response.WriteAsync(body, context.RequestAborted);
    }

    private async Task RefuseBatchAsync(HttpContext context, StorageRefusal refusal)
    {
        var requestId = Guid.NewGuid().ToString();
        var (contentType, body) = StorageWire.BatchFailure(refusal, requestId, _time.GetUtcNow());
        var response = context.Response;
        response.StatusCode = 202;
        response.Headers["x-ms-request-id"] = requestId;
        response.Headers["x-ms-version"] = context.Request.Headers["x-ms-version"].ToString();
        response.Headers["DataServiceVersion"] = "3.0;";
        response.Headers["Cache-Control"] = "no-cache";
        if (context.Request.Headers["x-ms-client-request-id"] is { Count: > 0 } clientRequestId)
            response.Headers["x-ms-client-request-id"] = clientRequestId;
        response.ContentType = contentType;
        await response.WriteAsync(body, context.RequestAborted);
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength == 0) return [];
        using var buffer = new MemoryStream(request.ContentLength is { } length ? (int)Math.Min(length, int.MaxValue) : 0);
        await request.Body.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }
}
