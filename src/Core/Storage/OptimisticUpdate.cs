using Serverless.Core.Api;

namespace Serverless.Core.Storage;

/// <summary>
/// The one way a read-change-conditional-write is retried when another writer wins (HTTP 412 on the
/// ETag, or 409 on an insert, surfaced by the store as <see cref="ConcurrentUpdateException"/>):
/// read again, decide again, write again, after one jittered back-off that grows with each attempt
/// so racing control planes fall out of step. After the last attempt the
/// <see cref="ConcurrentUpdateException"/> reaches the caller.
/// </summary>
public static class OptimisticUpdate
{
    /// <summary>Attempts before a lost race is the caller's problem, unless a call site says otherwise.</summary>
    public const int DefaultAttempts = 8;

    /// <summary>
    /// Runs <paramref name="attempt"/> (given its number, from 1) until it returns, retrying it
    /// after <see cref="BackoffAsync"/> each time it throws <see cref="ConcurrentUpdateException"/>.
    /// Each attempt must read afresh: it is the whole read-change-write.
    /// </summary>
    public static async Task<T> RetryAsync<T>(Func<int, Task<T>> attempt, CancellationToken cancellationToken, int maxAttempts = DefaultAttempts)
    {
        for (var number = 1; ; number++)
        {
            try
            {
                return await attempt(number);
            }
            catch (ConcurrentUpdateException) when (number < maxAttempts)
            {
                await BackoffAsync(number, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Reads with <paramref name="read"/> (null: there is nothing to change, and null is returned),
    /// applies the pure <paramref name="change"/> (null, or its argument unchanged: nothing is
    /// written and the read is returned), and writes with <paramref name="write"/>, which is
    /// conditional on what was read and throws <see cref="ConcurrentUpdateException"/> when the row
    /// changed since. Retried as <see cref="RetryAsync{T}"/>. Returns what was written.
    /// </summary>
    public static Task<T?> UpdateAsync<T>(
        Func<Task<T?>> read, Func<T, T?> change, Func<T, T, Task<T>> write, CancellationToken cancellationToken, int maxAttempts = DefaultAttempts)
        where T : class
        => RetryAsync<T?>(async _ =>
        {
            var current = await read();
            if (current is null) return null;
            var changed = change(current);
            if (changed is null || ReferenceEquals(changed, current)) return current;
            return await write(current, changed);
        }, cancellationToken, maxAttempts);

    /// <summary>
    /// The pause before attempt <paramref name="attempt"/> + 1: uniformly 5 ms to 10 + 15·attempt ms
    /// (capped at ten attempts), so contenders spread out instead of colliding again in step. Real
    /// time, not business time: this is a pause between storage calls.
    /// </summary>
    private static Task BackoffAsync(int attempt, CancellationToken cancellationToken)
        => Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 10 + 15 * Math.Min(attempt, 10))), cancellationToken);
}
