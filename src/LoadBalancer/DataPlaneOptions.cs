namespace Serverless.LoadBalancer;

/// <summary>Settings of the load balancer data plane, section <c>LoadBalancer</c>.</summary>
public sealed class DataPlaneOptions
{
    /// <summary>The address every listener binds: loopback here, where clients and tests reach it.</summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>The address of an <c>instance</c> target: the Docker hosts here publish task ports on this machine.</summary>
    public string InstanceAddress { get; set; } = "127.0.0.1";

    /// <summary>How often the configuration's version row is read (one point read); a change reloads the configuration.</summary>
    public int RefreshMilliseconds { get; set; } = 500;

    /// <summary>How long a request may wait on a target without any data moving (ALB's idle timeout).</summary>
    public int IdleTimeoutSeconds { get; set; } = 60;
}
