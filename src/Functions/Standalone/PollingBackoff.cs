namespace Serverless.Functions.Standalone;

/// <summary>
/// The delay between polls of an empty queue: starts at <see cref="QueueTriggerOptions.MinimumPollingInterval"/>,
/// doubles (with ±20% jitter, so many listeners do not poll in step) up to the maximum, and starts over as
/// soon as a poll finds messages — the host's randomized exponential back-off.
/// </summary>
public sealed class PollingBackoff(TimeSpan minimum, TimeSpan maximum, Random? random = null)
{
    private readonly Random _random = random ?? Random.Shared;
    private TimeSpan _current = TimeSpan.Zero;

    /// <summary>The next delay after a poll that found nothing.</summary>
    public TimeSpan Next()
    {
        var doubled = _current == TimeSpan.Zero ? minimum : _current * 2;
        _current = doubled > maximum ? maximum : doubled;
        var jittered = _current * (0.8 + 0.4 * _random.NextDouble());
        return jittered > maximum ? maximum : jittered < minimum ? minimum : jittered;
    }

    /// <summary>A poll found messages: poll fast again.</summary>
    public void Reset() => _current = TimeSpan.Zero;
}
