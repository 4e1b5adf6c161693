using System.Net;

namespace Serverless.LoadBalancer;

/// <summary>
/// One Kestrel server per listener port, started when a listener appears and stopped gracefully (requests in
/// flight complete) when it goes. A port that cannot be bound (something else holds it) is logged and tried
/// again a few seconds later; the other listeners serve meanwhile.
/// </summary>
public sealed class ListenerServers(ProxyHandler handler, DataPlaneOptions options, ILogger<ListenerServers> logger) : IAsyncDisposable
{
    private static readonly TimeSpan RetryBindAfter = TimeSpan.FromSeconds(5);
    private readonly Dictionary<int, WebApplication> _servers = [];
    private readonly Dictionary<int, DateTimeOffset> _failed = [];

    public async Task SyncAsync(IReadOnlyCollection<int> ports, CancellationToken cancellationToken)
    {
        foreach (var port in _servers.Keys.Where(p => !ports.Contains(p)).ToList())
        {
            var server = _servers[port];
            _servers.Remove(port);
            await server.StopAsync(cancellationToken);
            await server.DisposeAsync();
            logger.LogInformation("Stopped listener on port {Port}", port);
        }
        foreach (var port in ports.Where(p => !_servers.ContainsKey(p)))
        {
            if (_failed.TryGetValue(port, out var at) && DateTimeOffset.UtcNow - at < RetryBindAfter) continue;
            var server = Build(port);
            try
            {
                await server.StartAsync(cancellationToken);
                _servers[port] = server;
                _failed.Remove(port);
                logger.LogInformation("Serving listener on {Address}:{Port}", options.ListenAddress, port);
            }
            catch (IOException e)
            {
                _failed[port] = DateTimeOffset.UtcNow;
                await server.DisposeAsync();
                logger.LogError("Cannot serve listener port {Port}: {Message}", port, e.Message);
            }
        }
    }

    private WebApplication Build(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(IPAddress.Parse(options.ListenAddress), port);
        });
        var app = builder.Build();
        app.Run(context => handler.HandleAsync(context, port));
        return app;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers.Values) await server.DisposeAsync();
        _servers.Clear();
    }
}
