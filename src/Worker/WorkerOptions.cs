namespace Serverless.Worker;

/// <summary>
/// The worker's settings: section <c>Worker</c> (environment variables <c>Worker__*</c>). Storage
/// comes from <c>AzureWebJobsStorage</c> and ARNs from section <c>Ecs</c>, as for the control plane.
/// The names follow the ECS agent's <c>ECS_*</c> settings where one exists.
/// </summary>
public sealed class WorkerOptions
{
    /// <summary>
    /// The image of an <c>awsvpc</c> task's pause container, which holds the task's network
    /// namespace (the agent's <c>amazon/amazon-ecs-pause</c>). It needs a <c>sleep</c> that takes
    /// seconds; it is never pulled when present. Default: the local test image.
    /// </summary>
    public string PauseImage { get; set; } = "local/busybox:latest";

    /// <summary>
    /// The capacity provider whose pool this worker is part of (the Auto Scaling group an EC2
    /// instance belongs to); <c>FARGATE</c> makes it a hidden host of the cluster's Fargate capacity.
    /// The pool agent sets it for the workers it starts.
    /// </summary>
    public string? CapacityProvider { get; set; }

    /// <summary>The cluster to register with (ECS_CLUSTER).</summary>
    public string Cluster { get; set; } = "default";

    /// <summary>
    /// The container instance id (32 hex digits). When unset, the id is read from
    /// <see cref="StateDirectory"/>, or made up and saved there, so a restarted worker keeps its identity.
    /// </summary>
    public string? InstanceId { get; set; }

    /// <summary>
    /// Where the worker keeps its identity (ECS_DATADIR). Default:
    /// <c>${XDG_STATE_HOME:-~/.local/state}/ecs-worker/&lt;cluster&gt;</c>. Two workers on one host
    /// for the same cluster need different directories (or explicit <see cref="InstanceId"/>s).
    /// </summary>
    public string? StateDirectory { get; set; }

    /// <summary>The host's own identifier, ECS's <c>ec2InstanceId</c>. Default: the machine's host name.</summary>
    public string? Ec2InstanceId { get; set; }

    /// <summary>MiB of the host's memory kept back from tasks (ECS_RESERVED_MEMORY).</summary>
    public int ReservedMemoryMiB { get; set; } = 256;

    /// <summary>Registered MEMORY in MiB; overrides total memory minus <see cref="ReservedMemoryMiB"/>.</summary>
    public int? MemoryMiB { get; set; }

    /// <summary>Registered CPU units; overrides 1024 per core.</summary>
    public int? Cpu { get; set; }

    /// <summary>Custom attributes, <c>name=value;name2=value2</c> (ECS_INSTANCE_ATTRIBUTES); a name alone has no value.</summary>
    public string? Attributes { get; set; }

    /// <summary>Advertised as <c>ecs.availability-zone</c> when set.</summary>
    public string? AvailabilityZone { get; set; }

    /// <summary>Advertised as <c>ecs.instance-type</c> when set.</summary>
    public string? InstanceType { get; set; }

    /// <summary>
    /// The container engine: <c>docker</c> (the default), the Docker Engine at <see cref="DockerEndpoint"/>;
    /// or <c>simulated</c>, an engine in memory whose containers run nothing, for scale runs only
    /// (<c>bench/scale-sim.sh</c>). Nothing chooses the simulated engine unless this says so.
    /// </summary>
    public string Engine { get; set; } = "docker";

    /// <summary>With the simulated engine: how long a container takes to start.</summary>
    public int SimulatedStartMilliseconds { get; set; } = 200;

    /// <summary>The Docker Engine API endpoint (DOCKER_HOST).</summary>
    public string DockerEndpoint { get; set; } = "unix:///var/run/docker.sock";

    /// <summary>Seconds between heartbeats; counts that change are also sent, at most once a second.</summary>
    public int HeartbeatSeconds { get; set; } = 20;

    /// <summary>
    /// How long one image pull may take before the task fails with CannotPullContainerError
    /// (ECS_IMAGE_PULL_TIMEOUT; the agent's default is far longer, but a pull here either works fast or never).
    /// </summary>
    public int ImagePullTimeoutSeconds { get; set; } = 300;

    /// <summary>A container's <c>stopTimeout</c> when its definition has none (ECS_CONTAINER_STOP_TIMEOUT).</summary>
    public int ContainerStopTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// How long a container waits for its <c>dependsOn</c> conditions when its definition has no
    /// <c>startTimeout</c> (ECS_CONTAINER_START_TIMEOUT, 3 minutes on Linux).
    /// </summary>
    public int ContainerStartTimeoutSeconds { get; set; } = 180;

    /// <summary>
    /// Seconds a stopped task's containers stay after STOPPED was reported (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION,
    /// 3 hours on ECS). 0 removes them right after the report. Task-scoped volumes go with them.
    /// </summary>
    public int TaskCleanupWaitSeconds { get; set; }

    /// <summary>
    /// Seconds the Docker network of an <c>awsvpc</c> subnet stays on this worker after its last task
    /// is cleaned up, for the next task of that subnet to join (making a network and a task's first
    /// endpoint on it is what a fresh network per task cost). 0 removes it right after its last task.
    /// A stopping worker removes the ones no task is on.
    /// </summary>
    public int AwsVpcNetworkIdleSeconds { get; set; } = 300;

    /// <summary>
    /// Keep one warm spare pause container running on each subnet network in use, made after a task of
    /// the subnet reaches RUNNING, so the subnet's next <c>awsvpc</c> task takes it instead of creating
    /// and starting its own on its launch path. Spares are labelled <c>ecs-worker.awsvpc-spare</c> and
    /// removed with their network, when the worker stops, and at its next start.
    /// </summary>
    public bool AwsVpcWarmSpare { get; set; } = true;

    /// <summary>
    /// UDP port on which the worker takes wakes for its command queue from the control plane
    /// (<c>QueueWake</c>): 0 any free port, negative none (commands are then found by polling alone).
    /// The endpoint is registered with the container instance.
    /// </summary>
    public int WakePort { get; set; }

    /// <summary>The address the control plane sends wakes to; the one local IP address the wake port is bound to
    /// and advertised with; default loopback (one machine). Set it to an address the other side can reach when it runs elsewhere.</summary>
    public string? WakeAddress { get; set; }

    /// <summary>
    /// The host's private IP address, registered with the container instance: where a load balancer reaches the
    /// host ports of this host's tasks (an <c>instance</c> target), as ALB reaches an EC2 instance by its primary
    /// private IPv4 (the agent's <c>HostPrivateIPv4Address</c>). Default: loopback (one machine, the balancer beside
    /// the workers). On a host the balancer reaches over a network, set it to the host's address there (the Azure
    /// worker hosts take it from IMDS).
    /// </summary>
    public string? HostAddress { get; set; }

    /// <summary>Longest pause between polls of an idle command queue when the worker takes no wakes.</summary>
    public int CommandPollMaxDelayMilliseconds { get; set; } = 2000;

    /// <summary>
    /// Longest pause between polls of an idle command queue when the worker takes wakes (<see cref="WakePort"/>):
    /// the control plane wakes it right after it sends a command, so this poll only finds a command whose wake was
    /// lost, and bounds how late that command starts. Not below <see cref="CommandPollMaxDelayMilliseconds"/>.
    /// </summary>
    public int WakeFallbackPollSeconds { get; set; } = 60;

    /// <summary>
    /// TCP port of the task metadata endpoint: 0 (the default) any free port, so that several
    /// workers share a host (the port is in each container's URI); negative none (containers then get
    /// no <c>ECS_CONTAINER_METADATA_URI*</c>).
    /// </summary>
    public int MetadataPort { get; set; }

    /// <summary>
    /// The one address the task metadata endpoint listens on. Default: the gateway of Docker's
    /// <c>bridge</c> network, which the host's containers reach and no outside interface carries.
    /// </summary>
    public string? MetadataAddress { get; set; }

    /// <summary>Seconds between two readings of the tasks' Docker stats (the ECS agent samples every 20 s).</summary>
    public int MetricsSampleSeconds { get; set; } = 20;

    /// <summary>Seconds of one metrics period: one report per instance per period (ECS publishes every 60 s).</summary>
    public int MetricsPeriodSeconds { get; set; } = 60;

    /// <summary>Commands handled at once.</summary>
    public int MaxConcurrentCommands { get; set; } = 64;

    /// <summary>Deliveries of one command before it is given up: the task is reported STOPPED and the message deleted.</summary>
    public int MaxCommandDequeueCount { get; set; } = 5;

    /// <summary>
    /// Seconds between two reads of this instance's containers from Docker, besides the event stream:
    /// an event lost in a way the stream cannot tell (an engine restart that dropped it) is caught
    /// within this period. Costs one Docker list call, no storage transaction; 0 turns it off.
    /// </summary>
    public int ContainerResyncSeconds { get; set; } = 30;

    /// <summary>
    /// A PENDING (or STOPPING) report is sent only when RUNNING (or STOPPED) is not reached within
    /// this delay: each report costs four storage transactions, and most tasks get there sooner.
    /// The ECS agent itself reports only RUNNING and STOPPED; a start that is slow for a reason
    /// (an image pull, a dependency, a busy engine) still shows PENDING after this long.
    /// </summary>
    public int TransitionReportDelayMilliseconds { get; set; } = 3000;

    /// <summary>
    /// How long a transitional report (PENDING, STOPPING) waits for other reports to share its
    /// queue message: a busy host reports many tasks per message. 0 sends each at once.
    /// </summary>
    public int TransitionReportBatchMilliseconds { get; set; } = 500;

    // What a task may do to its host. Safe by default: everything below is refused unless set, and
    // the worker advertises what it allows as attributes, so placement sends such tasks only here.

    /// <summary>
    /// Run <c>privileged</c> containers (the ECS agent's ECS_DISABLE_PRIVILEGED, inverted). Advertised as
    /// <c>com.amazonaws.ecs.capability.privileged-container</c>.
    /// </summary>
    public bool AllowPrivileged { get; set; }

    /// <summary>
    /// Run tasks in the <c>host</c> network mode. Advertised as <c>ecs-worker.network-mode.host</c>. Such
    /// containers share the host's network stack: the Docker-network block of the cloud metadata
    /// endpoint (169.254.169.254) does not cover them.
    /// </summary>
    public bool AllowHostNetwork { get; set; }

    /// <summary>Run tasks with <c>pidMode: host</c>. Advertised as <c>ecs-worker.pid-mode.host</c>.</summary>
    public bool AllowHostPidMode { get; set; }

    /// <summary>Run tasks with <c>ipcMode: host</c>. Advertised as <c>ecs-worker.ipc-mode.host</c>.</summary>
    public bool AllowHostIpcMode { get; set; }

    /// <summary>
    /// Host directories, <c>;</c>-separated, that bind mounts (<c>volumes[].host.sourcePath</c>) may name
    /// or lie below; <c>/</c> allows any. None by default. Advertised as <c>ecs-worker.host-path-mounts</c>
    /// when not empty (placement cannot match paths, so a path outside the list still stops the task).
    /// </summary>
    public string? AllowedHostPaths { get; set; }

    /// <summary>Containers with <c>linuxParameters.capabilities.add</c>. Advertised as <c>ecs-worker.linux-parameters.capabilities-add</c>.</summary>
    public bool AllowAddedCapabilities { get; set; }

    /// <summary>Containers with <c>linuxParameters.devices</c>. Advertised as <c>ecs-worker.linux-parameters.devices</c>.</summary>
    public bool AllowDevices { get; set; }

    /// <summary>
    /// Docker volumes (<c>dockerVolumeConfiguration</c>) with a driver other than <c>local</c> or with
    /// <c>driverOpts</c> (the local driver's options can bind any host path). Advertised as
    /// <c>ecs-worker.docker-volume-driver-options</c>; plain local volumes are always allowed.
    /// </summary>
    public bool AllowVolumeDriverOptions { get; set; }

    /// <summary>
    /// Containers with <c>dockerSecurityOptions</c> other than <c>no-new-privileges</c> (<c>label:</c>,
    /// <c>apparmor:</c>, <c>seccomp=unconfined</c>, ...: the ECS agent's ECS_SELINUX_CAPABLE and
    /// ECS_APPARMOR_CAPABLE). Advertised as <c>com.amazonaws.ecs.capability.selinux</c>,
    /// <c>com.amazonaws.ecs.capability.apparmor</c> and <c>ecs-worker.docker-security-options</c>.
    /// </summary>
    public bool AllowSecurityOptions { get; set; }
}
