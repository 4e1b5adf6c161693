using System.Net;
using System.Net.Sockets;
using System.Text;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// A transparent TCP proxy in front of Azurite's queue endpoint that calls <see cref="OnSend"/>
/// when a message send (a <c>POST</c>) passes through, before forwarding it: the moment a client
/// goes away mid-RunTask in the tests that use it. Everything is forwarded unchanged.
/// </summary>
internal sealed class QueueSendTap : LoopbackQueueEndpoint
{
    private readonly Uri _upstream;

    public QueueSendTap(AzuriteFixture azurite)
    {
        _upstream = azurite.QueueEndpoint;
        Start();
    }

    public Action OnSend { get; set; } = () => { };

    protected override async Task HandleAsync(TcpClient client, CancellationToken cancellationToken)
    {
        using var _ = client;
        using var upstream = new TcpClient();
        try
        {
            await upstream.ConnectAsync(_upstream.Host, _upstream.Port, cancellationToken);
            var down = upstream.GetStream().CopyToAsync(client.GetStream(), cancellationToken);
            var from = client.GetStream();
            var to = upstream.GetStream();
            var buffer = new byte[64 * 1024];
            int read;
            while ((read = await from.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (Encoding.ASCII.GetString(buffer, 0, Math.Min(read, 5)) == "POST ") OnSend();
                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
            await down;
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A side went away: so does the connection.
        }
    }
}
