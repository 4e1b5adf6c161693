using Serverless.Core.Services;

namespace Serverless.Core.Reconciliation;

/// <summary>Which service events ECS shows, as plain decisions over the events already recorded.</summary>
public static class ServiceEvents
{
    /// <summary>How long ECS keeps a repeated event out of the log while its cause lasts.</summary>
    public static readonly TimeSpan RepeatAfter = TimeSpan.FromHours(6);

    /// <summary>A new event's id: ECS's are GUIDs. The one source of randomness in a service's events.</summary>
    public static string NewId() => Guid.NewGuid().ToString();

    /// <summary>
    /// Whether <paramref name="message"/> repeats an event still standing: ECS omits a duplicate
    /// event message "until either the cause is resolved or six hours passes". It stands when the
    /// same message was recorded less than six hours ago and nothing since says the cause went away
    /// (the service started tasks or reached a steady state). <paramref name="events"/> are newest first.
    /// </summary>
    public static bool IsRepeat(IReadOnlyList<ServiceEvent> events, string message, DateTimeOffset now)
    {
        foreach (var recorded in events)
        {
            if (now - recorded.CreatedAt >= RepeatAfter) return false;
            if (recorded.Message == message) return true;
            if (IsResolution(recorded.Message)) return false;
        }
        return false;
    }

    private static bool IsResolution(string message)
        => message.Contains(") has started ", StringComparison.Ordinal)
           || message.EndsWith("has reached a steady state.", StringComparison.Ordinal);
}
