using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.Extensions.Logging;

namespace Serverless.Worker.Commands;

/// <summary>
/// Keeps a received message invisible while its command is being handled (a Stop may take a
/// container's whole stopTimeout), then deletes it, or lets it come back for a retry. Tracks the
/// pop receipt, which every visibility update replaces.
/// </summary>
internal sealed class MessageLease : IAsyncDisposable
{
    public static readonly TimeSpan VisibilityTimeout = TimeSpan.FromSeconds(60);

    private readonly QueueClient _queue;
    private readonly QueueMessage _message;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _renewal;
    private string _popReceipt;
    private bool _settled;

    public MessageLease(QueueClient queue, QueueMessage message, TimeProvider time, ILogger logger)
    {
        _queue = queue;
        _message = message;
        _logger = logger;
        _popReceipt = message.PopReceipt;
        _renewal = RenewAsync(time, _stop.Token);
    }

    /// <summary>The command is done with: the message goes.</summary>
    public async Task DeleteAsync(CancellationToken cancellationToken)
    {
        await SettleAsync(async receipt =>
        {
            try
            {
                await _queue.DeleteMessageAsync(_message.MessageId, receipt, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                // Already gone (deleted after a redelivery): nothing to do.
            }
        });
    }

    /// <summary>The command failed: the message comes back after <paramref name="delay"/> for another try.</summary>
    public async Task RetryAfterAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        await SettleAsync(async receipt =>
        {
            try
            {
                await _queue.UpdateMessageAsync(_message.MessageId, receipt, _message.Body.ToString(), delay, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
            }
        });
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _renewal.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
        _lock.Dispose();
    }

    private async Task SettleAsync(Func<string, Task> action)
    {
        _stop.Cancel();
        await _renewal.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _lock.WaitAsync();
        try
        {
            if (_settled) return;
            _settled = true;
            await action(_popReceipt);
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task RenewAsync(TimeProvider time, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(VisibilityTimeout / 2, time, cancellationToken);
            await _lock.WaitAsync(cancellationToken);
            try
            {
                if (_settled) return;
                var receipt = await _queue.UpdateMessageAsync(
                    _message.MessageId, _popReceipt, _message.Body.ToString(), VisibilityTimeout, cancellationToken);
                _popReceipt = receipt.Value.PopReceipt;
            }
            catch (RequestFailedException e)
            {
                _logger.LogWarning("Could not extend the lease of command message {MessageId}: {Error}", _message.MessageId, e.Message);
            }
            finally
            {
                _lock.Release();
            }
        }
    }
}
