namespace Serverless.TestSupport.Storage;

/// <summary>Which storage service a fault applies to.</summary>
public enum StorageService
{
    Table,
    Queue,
}

/// <summary>What the proxy does to a request a fault catches.</summary>
public enum StorageFaultKind
{
    /// <summary>503 ServerBusy: Azure's throttling ("The server is currently unable to receive requests").</summary>
    ServerBusy,

    /// <summary>500 OperationTimedOut: "The operation could not be completed within the permitted time."</summary>
    OperationTimedOut,

    /// <summary>Holds the request for <see cref="StorageFault.Delay"/>, then serves it (a slow or hung service).</summary>
    Delay,

    /// <summary>Drops the connection without an answer: the endpoint is down (or restarting).</summary>
    Down,
}

/// <summary>A fault to inject; see <see cref="StorageFaults.Inject"/>.</summary>
public sealed record StorageFault(StorageFaultKind Kind, TimeSpan Delay = default)
{
    public static StorageFault ServerBusy { get; } = new(StorageFaultKind.ServerBusy);

    public static StorageFault OperationTimedOut { get; } = new(StorageFaultKind.OperationTimedOut);

    public static StorageFault Down { get; } = new(StorageFaultKind.Down);

    public static StorageFault Slow(TimeSpan delay) => new(StorageFaultKind.Delay, delay);
}

/// <summary>
/// Faults the storage proxy injects into the requests it forwards. Each lasts for a number of
/// requests, for a while, or until disposed, whichever ends first, and may be limited to one service
/// and one table or queue name. The oldest active fault that matches a request applies to it.
/// </summary>
public sealed class StorageFaults
{
    private readonly List<InjectedFault> _faults = [];
    private readonly TimeProvider _time;

    public StorageFaults(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    /// <summary>
    /// Starts injecting <paramref name="fault"/>. <paramref name="resource"/> is a table or queue name
    /// as the service sees it (with any test prefix); null for every one. <paramref name="requests"/>
    /// ends it after that many requests, <paramref name="duration"/> after that long.
    /// </summary>
    public InjectedFault Inject(
        StorageFault fault, StorageService? service = null, string? resource = null, int? requests = null, TimeSpan? duration = null)
    {
        var injected = new InjectedFault(this, fault, service, resource, requests, duration is { } d ? _time.GetUtcNow() + d : null);
        lock (_faults) _faults.Add(injected);
        return injected;
    }

    /// <summary>Ends every fault.</summary>
    public void Clear()
    {
        lock (_faults) _faults.Clear();
    }

    /// <summary>
    /// The fault that takes this request, counted as a hit, or null. <paramref name="resource"/> null
    /// means the request names no table or queue (or is not yet read, at connection time): only faults
    /// for every resource match it.
    /// </summary>
    internal InjectedFault? Take(StorageService service, string? resource, bool connectionOnly = false)
    {
        var now = _time.GetUtcNow();
        lock (_faults)
        {
            _faults.RemoveAll(f => f.IsOver(now));
            foreach (var fault in _faults)
            {
                if (connectionOnly && (fault.Fault.Kind != StorageFaultKind.Down || fault.Resource is not null)) continue;
                if (fault.Service is { } s && s != service) continue;
                if (fault.Resource is { } r && !string.Equals(r, resource, StringComparison.OrdinalIgnoreCase)) continue;
                fault.Hit();
                return fault;
            }
        }
        return null;
    }

    internal void Remove(InjectedFault fault)
    {
        lock (_faults) _faults.Remove(fault);
    }
}

/// <summary>One injected fault: how often it struck; dispose to end it.</summary>
public sealed class InjectedFault : IDisposable
{
    private readonly StorageFaults _owner;
    private readonly DateTimeOffset? _until;
    private int _remaining;
    private int _hits;

    internal InjectedFault(StorageFaults owner, StorageFault fault, StorageService? service, string? resource, int? requests, DateTimeOffset? until)
    {
        _owner = owner;
        Fault = fault;
        Service = service;
        Resource = resource;
        _remaining = requests ?? int.MaxValue;
        _until = until;
    }

    public StorageFault Fault { get; }

    public StorageService? Service { get; }

    public string? Resource { get; }

    /// <summary>How many requests (or connections, for <see cref="StorageFaultKind.Down"/>) it has taken.</summary>
    public int Hits => Volatile.Read(ref _hits);

    internal bool IsOver(DateTimeOffset now) => Volatile.Read(ref _remaining) <= 0 || now >= _until;

    internal void Hit()
    {
        Interlocked.Increment(ref _hits);
        Interlocked.Decrement(ref _remaining);
    }

    public void Dispose() => _owner.Remove(this);
}
