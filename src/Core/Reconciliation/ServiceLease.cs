using Serverless.Core.Api;
using Serverless.Core.Services;

namespace Serverless.Core.Reconciliation;

/// <summary>
/// One reconcile's hold on a service row (<see cref="ServiceRecord.LeaseOwner"/>,
/// <see cref="ServiceRecord.LeaseExpiresAt"/>): taken with a conditional write on the ETag the
/// reconcile read, checked before every task it starts or stops, given back when it is done.
/// <para>
/// Contract: after <see cref="HoldAsync"/> answers true the lease is this reconcile's for at least
/// half its duration more, so a step that starts right then finishes before anyone else may
/// take the service; once it answers false it never answers true again, and the holder must write
/// nothing more for the service (its last record is stale: <see cref="Current"/> no longer matches
/// the row's ETag, so a conditional save of it fails). Nobody can take an unexpired lease, so
/// "still ours" needs no write while more than half of it is left; past that, renewing is a
/// conditional write that fails when another reconcile has taken it.
/// </para>
/// </summary>
public sealed class ServiceLease
{
    /// <summary>How long a lease lasts unless <c>Ecs__ServiceLeaseSeconds</c> says otherwise.</summary>
    public static readonly TimeSpan DefaultDuration = TimeSpan.FromSeconds(60);

    private readonly ServiceStore _services;
    private readonly TimeProvider _time;
    private readonly TimeSpan _duration;

    private ServiceLease(ServiceStore services, TimeProvider time, TimeSpan duration, ServiceRecord claimed, string owner)
    {
        _services = services;
        _time = time;
        _duration = duration;
        Current = claimed;
        Owner = owner;
    }

    /// <summary>Who holds it: one reconcile, not a process (one process may reconcile a service twice at once).</summary>
    public string Owner { get; }

    /// <summary>The service as last written by this lease: its ETag is what the final save must be conditional on.</summary>
    public ServiceRecord Current { get; private set; }

    /// <summary>True once another reconcile took the service (or it was deleted) while this one worked.</summary>
    public bool Lost { get; private set; }

    private bool _released;

    /// <summary>Whether a live lease held by someone else stops a reconcile of <paramref name="service"/> now.</summary>
    public static bool HeldByAnother(ServiceRecord service, DateTimeOffset now)
        => service.LeaseOwner is not null && service.LeaseExpiresAt > now;

    /// <summary>
    /// Takes the lease on <paramref name="read"/> (conditional on its ETag); null when the row
    /// changed since, so whoever changed it must be seen before anything is decided.
    /// </summary>
    public static async Task<ServiceLease?> TryClaimAsync(
        ServiceStore services, TimeProvider time, TimeSpan duration, ServiceRecord read, CancellationToken cancellationToken)
    {
        var owner = Guid.NewGuid().ToString("N");
        try
        {
            var claimed = await services.SaveAsync(read with { LeaseOwner = owner, LeaseExpiresAt = time.GetUtcNow() + duration }, cancellationToken);
            return new ServiceLease(services, time, duration, claimed, owner);
        }
        catch (ConcurrentUpdateException)
        {
            return null;
        }
    }

    /// <summary>
    /// The fence before each write step: true when the lease is still this reconcile's for at least
    /// half its duration (renewed when less is left). An API update of the service while we hold it
    /// does not take the lease (the store keeps the lease as read), so we renew on top of it.
    /// </summary>
    public async Task<bool> HoldAsync(CancellationToken cancellationToken)
    {
        if (Lost || _released) return false;
        var now = _time.GetUtcNow();
        if (Current.LeaseExpiresAt - now > _duration / 2) return true;
        var seen = Current;
        while (true)
        {
            if (seen.LeaseOwner != Owner)
            {
                Lost = true;
                return false;
            }
            try
            {
                Current = await _services.SaveAsync(seen with { LeaseExpiresAt = _time.GetUtcNow() + _duration }, cancellationToken);
                return true;
            }
            catch (ConcurrentUpdateException)
            {
                // Someone wrote the row: an API update keeps our lease (renew over it), a claim takes it.
                seen = await _services.FindAsync(Current.Cluster, Current.Name, cancellationToken) ?? Current with { LeaseOwner = null };
            }
        }
    }

    /// <summary>
    /// Gives the lease back if it is still ours, keeping every other column as it is now. Safe to
    /// call after the final save released it, after it was lost, and on a failed reconcile.
    /// </summary>
    public async Task ReleaseAsync(CancellationToken cancellationToken)
    {
        if (Lost || _released) return;
        try
        {
            await _services.UpdateAsync(Current.Cluster, Current.Name,
                s => s.LeaseOwner != Owner ? s : s with { LeaseOwner = null, LeaseExpiresAt = null }, cancellationToken);
        }
        catch (ServiceNotFoundException)
        {
            // Deleted while we held it: nothing left to release.
        }
        _released = true;
    }

    /// <summary>Records that the final save released the lease, so <see cref="ReleaseAsync"/> has nothing to do.</summary>
    public void Released() => _released = true;
}
