namespace Serverless.Core;

/// <summary>Settings the control plane reads (section <c>Ecs</c>, or flat <c>Ecs__*</c> app settings).</summary>
public sealed class EcsOptions
{
    public string Region { get; set; } = "us-east-1";

    public string AccountId { get; set; } = "000000000000";

    /// <summary>
    /// SigV4 credentials as <c>ACCESS_KEY_ID:SECRET</c> pairs separated by <c>;</c>. The sample settings
    /// hold one local development pair; in Azure these come from Key Vault references.
    /// </summary>
    public string AccessKeys { get; set; } = "";

    /// <summary>Request bodies above this are refused before parsing.</summary>
    public int MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Prefix of every table name, so tests and tenants can share one account (queues keep their names).</summary>
    public string StoragePrefix { get; set; } = "";

    /// <summary>How often workers heartbeat.</summary>
    public int AgentHeartbeatSeconds { get; set; } = 20;

    /// <summary>A worker silent this long shows <c>agentConnected: false</c> and gets no new tasks.</summary>
    public int AgentDisconnectedAfterSeconds { get; set; } = 60;

    /// <summary>
    /// After this long without a heartbeat a worker's tasks are marked STOPPED and its services
    /// replace them elsewhere; a worker that comes back stops their containers.
    /// </summary>
    public int AgentLostAfterSeconds { get; set; } = 180;

    /// <summary>
    /// How long a STOPPED task stays describable (ECS: about an hour); after that the retention
    /// sweep deletes it, so reading a service's or a cluster's tasks costs what is alive, not history.
    /// </summary>
    public int StoppedTaskRetentionMinutes { get; set; } = 60;

    /// <summary>
    /// A task no worker has acknowledged this long after it was placed is recorded STOPPED and its
    /// reservation freed (<see cref="Tasks.TaskDeadlines"/>): its Start was lost.
    /// </summary>
    public int TaskStartDeadlineSeconds { get; set; } = (int)Tasks.TaskDeadlines.StartDeadline.TotalSeconds;

    /// <summary>
    /// How long a reconcile's lease on a service lasts (<see cref="Reconciliation.ServiceLease"/>); it
    /// is renewed while the reconcile works, so this only bounds how long a crashed holder blocks others.
    /// </summary>
    public int ServiceLeaseSeconds { get; set; } = (int)Reconciliation.ServiceLease.DefaultDuration.TotalSeconds;

    /// <summary>A reservation whose task row never appeared is released once it is this old.</summary>
    public int OrphanReservationGraceSeconds { get; set; } = (int)Tasks.TaskDeadlines.OrphanReservationGrace.TotalSeconds;

    /// <summary>
    /// UDP port on which the standalone host takes wakes for its queue triggers from workers
    /// (<see cref="Storage.QueueWake"/>): 0 any free port, negative none (the triggers then only poll).
    /// Under the Functions host the host polls, and this is not used.
    /// </summary>
    public int WakePort { get; set; }

    /// <summary>The address workers send wakes to; the one local IP address the wake port is bound to
    /// and advertised with; default loopback (one machine). Set it to an address the other side can reach when it runs elsewhere.</summary>
    public string? WakeAddress { get; set; }

    /// <summary>
    /// The longest wait between polls of a queue trigger that takes wakes (the standalone host listening on
    /// <see cref="WakePort"/>): every sender wakes it, so this poll only finds a message whose wake was lost,
    /// and bounds how late the first such message is taken. A trigger whose poll finds messages no wake announced
    /// polls on host.json's <c>maxPollingInterval</c> for the next 5 minutes (<see cref="Storage.QueueConsumerOptions.MissedWakePollingInterval"/>),
    /// so wakes that keep being lost cost that much each. Not below host.json's <c>maxPollingInterval</c>.
    /// </summary>
    public int WakeFallbackPollSeconds { get; set; } = 120;

    /// <summary>
    /// How often the resync timer re-enqueues a service whose row shows it steady (one COMPLETED deployment running
    /// what it wants): only a lost reconcile message needs it, and this bounds how long such a loss goes unnoticed.
    /// A service that is not steady is re-enqueued every minute.
    /// </summary>
    public int SteadyServiceResyncMinutes { get; set; } = 30;

    public IReadOnlyDictionary<string, string> ParseAccessKeys()
    {
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in AccessKeys.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = pair.IndexOf(':');
            if (colon > 0) keys[pair[..colon]] = pair[(colon + 1)..];
        }
        return keys;
    }
}
