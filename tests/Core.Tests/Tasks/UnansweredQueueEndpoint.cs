using System.Net;
using System.Net.Sockets;
using System.Text;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>
/// A queue endpoint whose sends get no answer: it creates queues (201) and drops the connection on
/// every other request, the way a send lost in a network fault or a timeout looks to the client,
/// who cannot tell whether the message was enqueued. Tables stay on the real Azurite.
/// </summary>
internal sealed class UnansweredQueueEndpoint : LoopbackQueueEndpoint
{
    public UnansweredQueueEndpoint() => Start();

    /// <summary>Sends that reached this endpoint (and were left unanswered).</summary>
    public int Sends { get; private set; }

    protected override async Task HandleAsync(TcpClient client, CancellationToken cancellationToken)
    {
        using var _ = client;
        var stream = client.GetStream();
        var head = new StringBuilder();
        var buffer = new byte[4096];
        while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(buffer, cancellationToken);
            if (read == 0) return;
            head.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        if (head.ToString().StartsWith("PUT ", StringComparison.Ordinal))
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), cancellationToken);
            return;
        }
        Sends++;
        client.Client.LingerState = new LingerOption(true, 0);   // a reset, not a clean close
    }
}
