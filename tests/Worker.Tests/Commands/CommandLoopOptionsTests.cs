using Serverless.Core.Storage;
using Serverless.Worker.Commands;

namespace Serverless.Worker.Tests.Commands;

public sealed class CommandLoopOptionsTests
{
    [Fact]
    public void A_worker_that_takes_wakes_polls_its_idle_queue_only_as_a_safety_net()
    {
        var options = new WorkerOptions { CommandPollMaxDelayMilliseconds = 2000, WakeFallbackPollSeconds = 30 };

        Assert.Equal(TimeSpan.FromSeconds(30), CommandLoop.Options(options, takesWakes: true).MaxPollingInterval);
        Assert.Equal(TimeSpan.FromSeconds(2), CommandLoop.Options(options, takesWakes: false).MaxPollingInterval);
        // Commands that no wake announced bring the plain ceiling back for a while.
        Assert.Equal(TimeSpan.FromSeconds(2), CommandLoop.Options(options, takesWakes: true).MissedWakePollingInterval);
        // A fallback below the plain ceiling never makes a woken worker poll more often.
        options.WakeFallbackPollSeconds = 1;
        Assert.Equal(TimeSpan.FromSeconds(2), CommandLoop.Options(options, takesWakes: true).MaxPollingInterval);
    }

    [Theory]
    [InlineData(64, 32, 63, 64)]
    [InlineData(8, 8, 7, 8)]
    [InlineData(1, 1, 0, 1)]
    public void As_many_commands_run_at_once_as_the_worker_allows_and_a_receive_comes_whenever_one_is_free(
        int concurrent, int batch, int threshold, int inFlight)
    {
        var options = CommandLoop.Options(new WorkerOptions { MaxConcurrentCommands = concurrent }, takesWakes: true);

        Assert.Equal(batch, options.BatchSize);
        Assert.Equal(threshold, options.NewBatchThreshold);
        Assert.Equal(inFlight, options.MaxInFlight);
        Assert.True(options.BatchSize <= QueueConsumerOptions.MaxBatchSize);
    }
}
