using Serverless.Worker.Commands;

namespace Serverless.Worker.Tests.Commands;

public sealed class PollDelayTests
{
    private static readonly TimeSpan Cap = TimeSpan.FromSeconds(2);

    [Fact]
    public void After_messages_the_queue_is_polled_again_at_once()
        => Assert.Equal(TimeSpan.Zero, PollDelay.Next(TimeSpan.FromSeconds(2), gotMessages: true, Cap));

    [Fact]
    public void An_idle_queue_is_polled_ever_less_often_up_to_the_cap()
    {
        var delays = new List<double>();
        var delay = TimeSpan.Zero;
        for (var i = 0; i < 8; i++)
        {
            delay = PollDelay.Next(delay, gotMessages: false, Cap);
            delays.Add(delay.TotalMilliseconds);
        }
        Assert.Equal([100, 200, 400, 800, 1600, 2000, 2000, 2000], delays);
    }
}
