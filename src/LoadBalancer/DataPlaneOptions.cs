namespace Serverless.LoadBalancer;

/// <summary>Settings of the load balancer data plane, section <c>LoadBalancer</c>.</summary>
public sealed class DataPlaneOptions
{
    /// <summary>The address every listener binds: loopback here, where clients and tests reach it.</summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// The address of an <c>instance</c> target that carries none: each target a service registers carries its
    /// container instance's host address (<c>Worker__HostAddress</c>); one registered through the API by instance id
    /// does not, and is reached here (default loopback: the Docker hosts publish task ports on this machine).
    /// </summary>
    public string InstanceAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// The fallback: how often the configuration's version row is read (one point read) when no wake came; a
    /// change reloads the configuration. Changes normally arrive by a wake at once; this bounds how late one
    /// whose wake was lost (or could not reach this host) is seen.
    /// </summary>
    public int RefreshMilliseconds { get; set; } = 30_000;

    /// <summary>UDP port this data plane takes configuration wakes on (<c>QueueWake</c>): 0 any free port, negative none (fallback reads alone).</summary>
    public int WakePort { get; set; }

    /// <summary>The one local IP address the wake port is bound to and registered with; default loopback (one machine).</summary>
    public string? WakeAddress { get; set; }

    /// <summary>How long a request may wait on a target without any data moving (ALB's idle timeout).</summary>
    public int IdleTimeoutSeconds { get; set; } = 60;
}
