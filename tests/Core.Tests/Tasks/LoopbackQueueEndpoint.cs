using System.Net;
using System.Net.Sockets;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// A queue endpoint of the test's own on loopback, in place of Azurite's: accepts connections and
/// hands each to <see cref="HandleAsync"/>. Tables stay on the real Azurite.
/// </summary>
internal abstract class LoopbackQueueEndpoint : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private Task _serving = Task.CompletedTask;

    /// <summary>Starts accepting; called by a derived constructor once its own fields are set.</summary>
    protected void Start()
    {
        _listener.Start();
        _serving = ServeAsync(_stop.Token);
    }

    /// <summary>Azurite's connection string with the queue endpoint replaced by this one.</summary>
    public string ConnectionString(AzuriteFixture azurite)
        => $"DefaultEndpointsProtocol=http;AccountName={AzuriteFixture.AccountName};AccountKey={AzuriteFixture.AccountKey};" +
           $"BlobEndpoint={azurite.BlobEndpoint};TableEndpoint={azurite.TableEndpoint};" +
           $"QueueEndpoint=http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/{AzuriteFixture.AccountName};";

    /// <summary>Serves one connection; owns (and disposes) <paramref name="client"/>.</summary>
    protected abstract Task HandleAsync(TcpClient client, CancellationToken cancellationToken);

    private async Task ServeAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            _ = HandleAsync(client, cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _serving;
    }
}
