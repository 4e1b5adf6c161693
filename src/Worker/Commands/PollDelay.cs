namespace Serverless.Worker.Commands;

/// <summary>
/// How long to wait before polling the command queue again. Straight away after a batch (more
/// may be waiting), then doubling from <see cref="First"/> while the queue stays empty, up to a
/// cap: a busy worker reacts fast, an idle one costs one storage transaction every couple of seconds.
/// </summary>
public static class PollDelay
{
    public static readonly TimeSpan First = TimeSpan.FromMilliseconds(100);

    public static TimeSpan Next(TimeSpan current, bool gotMessages, TimeSpan cap)
    {
        if (gotMessages) return TimeSpan.Zero;
        if (current <= TimeSpan.Zero) return First < cap ? First : cap;
        var doubled = TimeSpan.FromTicks(current.Ticks * 2);
        return doubled < cap ? doubled : cap;
    }
}
