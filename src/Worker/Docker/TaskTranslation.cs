using System.Globalization;
using System.Text.Json.Nodes;
using Docker.DotNet.Models;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Docker;

/// <summary>
/// A task definition (as DescribeTaskDefinition shows it, defaults filled in) plus the task's
/// overrides, mapped to Docker the way the ECS agent maps them. A pure function: no Docker, no
/// clock, no randomness (the name suffix is an argument).
/// </summary>
public static class TaskTranslation
{
    /// <summary>The ECS agent never gives a container fewer CPU shares than this (the kernel's minimum).</summary>
    public const long MinimumCpuShares = 2;

    private const long MiB = 1024 * 1024;

    /// <param name="taskDefinition">The described task definition.</param>
    /// <param name="overrides">The task's <c>overrides</c> (ECS TaskOverride), or null.</param>
    /// <param name="suffix">Makes this task's Docker names unique: the agent's random hex.</param>
    public static TaskPlan Plan(JsonObject taskDefinition, TaskContext context, JsonObject? overrides, string suffix, PlanDefaults defaults)
    {
        var view = new TaskDefinitionView(taskDefinition);
        var family = view.Family;
        var revision = view.Revision;
        var networkMode = view.NetworkMode;
        var definitions = view.ContainerDefinitions;

        // A refused task is still translated, so its report names its containers.
        var refusal = Refusal(taskDefinition, definitions) ?? defaults.Permissions.Refusal(taskDefinition);

        var volumes = new List<VolumePlan>();
        var sources = new Dictionary<string, string>(StringComparer.Ordinal); // ECS volume name → bind source
        foreach (var volume in view.Volumes)
        {
            var name = volume.Name;
            if (volume.HostSourcePath is { Length: > 0 } sourcePath)
            {
                sources[name] = sourcePath;
                continue;
            }
            var plan = volume.DockerVolumeConfiguration is { } docker
                ? DockerVolume(name, docker, family, revision, context, suffix)
                // A volume with no source ("host": {}) is Docker-managed scratch space shared by the
                // task's containers and removed with the task, as the agent provides it.
                : new VolumePlan(name, VolumeName(family, revision, name, suffix), TaskScoped: true, Autoprovision: true, "local",
                    new Dictionary<string, string>(), VolumeLabels(context, taskScoped: true));
            volumes.Add(plan);
            sources[name] = plan.DockerName;
        }

        var containerOverrides = TaskOverrides.ContainerOverrides(overrides);
        var dockerNames = definitions.ToDictionary(d => d.Name, d => ContainerName(family, revision, d.Name, suffix), StringComparer.Ordinal);
        var containers = definitions
            .Select(d => Container(d, context, family, revision, networkMode, view, containerOverrides.GetValueOrDefault(d.Name), sources, dockerNames, defaults))
            .ToList();
        if (defaults.SizeWritableLayers && EphemeralStorageGiB(taskDefinition, overrides) is { } storage)
        {
            foreach (var container in containers) container.Parameters.HostConfig.StorageOpt = WritableLayerSize(storage);
        }
        var secrets = Serverless.Core.Secrets.SecretReference.Of(taskDefinition);
        var limits = new TaskLimits(TaskOverrides.Cpu(overrides) ?? view.Cpu, TaskOverrides.Memory(overrides) ?? view.Memory);
        if (networkMode != AwsVpc) return new TaskPlan(family, revision, networkMode, containers, volumes, refusal) { Secrets = secrets, Limits = limits };

        // awsvpc, as the agent does it: a pause container joins the network of the task's subnet first,
        // and every container of the task shares its network namespace (one address, localhost between them).
        var network = TaskNetworkPlan.For(context.SubnetId, context.InstanceId);
        var pause = Pause(definitions, context, family, revision, network, suffix, defaults);
        var joined = containers.Select(c => Joined(c, pause)).Prepend(pause).ToList();
        return new TaskPlan(family, revision, networkMode, joined, volumes, refusal, network) { Secrets = secrets, Limits = limits };
    }

    public const string AwsVpc = "awsvpc";

    /// <summary>
    /// The task's <c>ephemeralStorage.sizeInGiB</c>: RunTask's override (TaskOverride.ephemeralStorage) over the
    /// definition's; null when neither sets it (the task's containers are then not sized).
    /// </summary>
    public static int? EphemeralStorageGiB(JsonObject taskDefinition, JsonObject? overrides)
    {
        static int? Size(JsonNode? storage) => storage is JsonObject { } o && o["sizeInGiB"] is JsonValue v && v.TryGetValue<int>(out var size) && size > 0 ? size : null;
        return Size(overrides?["ephemeralStorage"]) ?? Size(taskDefinition["ephemeralStorage"]);
    }

    /// <summary>
    /// A container's writable layer limit for a task of <paramref name="sizeInGiB"/>: the whole size, on every
    /// container the definition names (not on an awsvpc task's pause container, which writes nothing). On Fargate the task's
    /// containers share one volume of that size, so any one of them may fill it; Docker can only limit
    /// each container, so each may use the task's size and their sum is not capped. Docker reads
    /// <c>G</c> as GiB (1024³ bytes).
    /// </summary>
    public static Dictionary<string, string> WritableLayerSize(int sizeInGiB)
        => new(StringComparer.Ordinal) { ["size"] = sizeInGiB.ToString(CultureInfo.InvariantCulture) + "G" };

    /// <summary>The agent's name for the pause container of an <c>awsvpc</c> task (never reported).</summary>
    public const string PauseContainerName = "~internal~ecs~pause";

    /// <summary>
    /// The pause container: it sleeps, holds the task's network namespace on its subnet's network,
    /// and carries what Docker only takes on the namespace's owner (DNS servers, search domains, extra hosts).
    /// </summary>
    private static ContainerPlan Pause(IReadOnlyList<ContainerDefinitionView> definitions, TaskContext context, string family, int revision, TaskNetworkPlan network, string suffix, PlanDefaults defaults)
    {
        var labels = Labels(new Dictionary<string, string>(), context, family, revision, PauseContainerName);
        var dockerName = ContainerName(family, revision, "internalecspause", suffix);
        var parameters = new CreateContainerParameters
        {
            Name = dockerName,
            Image = defaults.PauseImage,
            Cmd = ["sleep", "2147483647"],
            Labels = labels,
            HostConfig = new HostConfig
            {
                NetworkMode = network.Name,
                DNS = definitions.SelectMany(d => d.DnsServers).Distinct().ToList().NullIfEmpty(),
                DNSSearch = definitions.SelectMany(d => d.DnsSearchDomains).Distinct().ToList().NullIfEmpty(),
                ExtraHosts = definitions.SelectMany(d => d.ExtraHosts).Distinct().ToList().NullIfEmpty(),
            },
        };
        // Essential: without it the task has no network. Killed at once on stop (sleep ignores SIGTERM as PID 1).
        return new ContainerPlan(PauseContainerName, dockerName, defaults.PauseImage, Essential: true, TimeSpan.Zero, defaults.StartTimeout,
            HasHealthCheck: false, [], [], [], parameters, Internal: true);
    }

    /// <summary>A container of an <c>awsvpc</c> task: in the pause container's network namespace, created and started after it.</summary>
    private static ContainerPlan Joined(ContainerPlan container, ContainerPlan pause)
    {
        var host = container.Parameters.HostConfig;
        host.NetworkMode = $"container:{pause.DockerName}";
        // Docker refuses these beside a shared namespace; the pause container carries them.
        host.DNS = null;
        host.DNSSearch = null;
        host.ExtraHosts = null;
        container.Parameters.ExposedPorts = null;
        return container with
        {
            DependsOn = [.. container.DependsOn, new ContainerDependency(pause.Name, DependencyConditions.Start)],
            CreateAfter = [.. container.CreateAfter, pause.Name],
        };
    }

    /// <summary>The agent's Docker container name: <c>ecs-&lt;family&gt;-&lt;revision&gt;-&lt;container&gt;-&lt;random&gt;</c>.</summary>
    public static string ContainerName(string family, int revision, string container, string suffix)
        => $"ecs-{family}-{revision.ToString(CultureInfo.InvariantCulture)}-{container}-{suffix}";

    /// <summary>A task-scoped volume's Docker name, in the agent's pattern.</summary>
    public static string VolumeName(string family, int revision, string volume, string suffix)
        => $"ecs-{family}-{revision.ToString(CultureInfo.InvariantCulture)}-{volume}-{suffix}";

    /// <summary>
    /// Why this worker cannot run the task at all, or null. Every reason is honest: the worker has no
    /// registry credentials, no S3 access, no task ENIs and no EFS/FSx client.
    /// </summary>
    private static string? Refusal(JsonObject taskDefinition, IReadOnlyList<ContainerDefinitionView> definitions)
    {
        foreach (var container in definitions)
        {
            if (container.HasRepositoryCredentials)
                return "ResourceInitializationError: unable to pull secrets or registry auth: private registry authentication (repositoryCredentials) is not supported by this worker";
            if (container.HasEnvironmentFiles)
                return "ResourceInitializationError: unable to retrieve environment files: no S3 access is configured on this worker";
        }
        foreach (var node in taskDefinition["volumes"] as JsonArray ?? [])
        {
            var volume = (JsonObject)node!;
            foreach (var kind in (string[])["efsVolumeConfiguration", "fsxWindowsFileServerVolumeConfiguration", "s3filesVolumeConfiguration"])
            {
                if (volume[kind] is not null)
                    return $"ResourceInitializationError: volume {volume["name"]} uses {kind}, which this worker does not support";
            }
            if (volume["configuredAtLaunch"]?.GetValue<bool>() == true)
                return $"ResourceInitializationError: volume {volume["name"]} is configured at launch, which this worker does not support";
        }
        foreach (var mode in (string[])["pidMode", "ipcMode"])
        {
            if (taskDefinition[mode]?.GetValue<string>() == "task")
                return $"ResourceInitializationError: {mode} 'task' is not supported by this worker";
        }
        return null;
    }

    private static VolumePlan DockerVolume(string name, DockerVolumeConfigurationView docker, string family, int revision, TaskContext context, string suffix)
    {
        var taskScoped = docker.TaskScoped;
        var labels = VolumeLabels(context, taskScoped);
        foreach (var (key, value) in docker.Labels) labels.TryAdd(key, value);
        return new VolumePlan(
            name,
            taskScoped ? VolumeName(family, revision, name, suffix) : name,
            taskScoped,
            // A task-scoped volume is always created; a shared one only when asked to (ECS's autoprovision).
            Autoprovision: taskScoped || docker.Autoprovision,
            docker.Driver,
            new Dictionary<string, string>(docker.DriverOpts, StringComparer.Ordinal),
            labels);
    }

    private static Dictionary<string, string> VolumeLabels(TaskContext context, bool taskScoped)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { [DockerLabels.InstanceId] = context.InstanceId };
        if (taskScoped) labels[DockerLabels.TaskArn] = context.TaskArn;
        return labels;
    }

    private static ContainerPlan Container(
        ContainerDefinitionView definition, TaskContext context, string family, int revision, string networkMode, TaskDefinitionView taskDefinition,
        ContainerOverride? containerOverride, Dictionary<string, string> volumeSources, Dictionary<string, string> dockerNames, PlanDefaults defaults)
    {
        var name = definition.Name;
        var image = definition.Image;
        var cpu = containerOverride?.Cpu ?? definition.Cpu;
        var memory = containerOverride?.Memory ?? definition.Memory;
        var memoryReservation = containerOverride?.MemoryReservation ?? definition.MemoryReservation;
        var stopTimeout = definition.StopTimeout is { } stop ? TimeSpan.FromSeconds(stop) : defaults.StopTimeout;
        var startTimeout = definition.StartTimeout is { } start ? TimeSpan.FromSeconds(start) : defaults.StartTimeout;

        var host = new HostConfig
        {
            NetworkMode = networkMode,
            CPUShares = Math.Max(cpu, MinimumCpuShares),
            Memory = (memory ?? 0) * MiB,
            MemoryReservation = (memoryReservation ?? 0) * MiB,
            Privileged = definition.Privileged,
            ReadonlyRootfs = definition.ReadonlyRootFilesystem,
            DNS = Strings(definition.DnsServers),
            DNSSearch = Strings(definition.DnsSearchDomains),
            SecurityOpt = Strings(definition.DockerSecurityOptions),
            ExtraHosts = Strings(definition.ExtraHosts),
        };
        if (taskDefinition.PidMode is { } pidMode) host.PidMode = pidMode;
        if (taskDefinition.IpcMode is { } ipcMode) host.IpcMode = ipcMode;

        var parameters = new CreateContainerParameters
        {
            Name = dockerNames[name],
            Image = image,
            Env = Environment(definition, containerOverride),
            Entrypoint = Strings(definition.EntryPoint),
            Cmd = containerOverride?.Command is { } command ? [.. command] : Strings(definition.Command),
            WorkingDir = definition.WorkingDirectory,
            User = definition.User,
            // Docker refuses a host name in host network mode; ECS validation refuses it too.
            Hostname = networkMode == "host" ? null : definition.Hostname,
            NetworkDisabled = definition.DisableNetworking,
            OpenStdin = definition.Interactive,
            Tty = definition.PseudoTerminal,
            Labels = Labels(definition.DockerLabels, context, family, revision, name),
            StopTimeout = stopTimeout,
            Healthcheck = HealthCheck(definition.HealthCheck),
            HostConfig = host,
        };
        Logs.AwsLogsConfig.AddLabel(definition.LogConfiguration, context.TaskArn, name, parameters.Labels);

        var mappings = PortMappings(definition, networkMode);
        if (networkMode != "none" && mappings.Count > 0)
        {
            parameters.ExposedPorts = mappings.ToDictionary(m => PortKey(m.ContainerPort, m.Protocol), _ => new EmptyStruct());
            if (networkMode == "bridge")
            {
                host.PortBindings = mappings.ToDictionary(
                    m => PortKey(m.ContainerPort, m.Protocol),
                    // An empty host port lets Docker pick an ephemeral one (hostPort 0 in ECS).
                    m => (IList<PortBinding>)[new PortBinding { HostPort = m.HostPort == 0 ? "" : m.HostPort.ToString(CultureInfo.InvariantCulture) }]);
            }
        }

        host.Binds = definition.MountPoints
            .Where(m => m.SourceVolume is { } source && volumeSources.ContainsKey(source))
            .Select(m => $"{volumeSources[m.SourceVolume!]}:{m.ContainerPath}" + (m.ReadOnly ? ":ro" : ""))
            .ToList().NullIfEmpty();

        var volumesFrom = definition.VolumesFrom.Where(v => dockerNames.ContainsKey(v.SourceContainer)).ToList();
        host.VolumesFrom = volumesFrom
            .Select(v => dockerNames[v.SourceContainer] + (v.ReadOnly ? ":ro" : ""))
            .ToList().NullIfEmpty();

        // Links are legacy bridge networking: "name:alias" with the container's Docker name.
        var links = definition.Links;
        if (networkMode == "bridge")
        {
            host.Links = links
                .Select(l => l.Split(':', 2))
                .Where(parts => dockerNames.ContainsKey(parts[0]))
                .Select(parts => $"{dockerNames[parts[0]]}:{(parts.Length == 2 ? parts[1] : parts[0])}")
                .ToList().NullIfEmpty();
        }

        host.Ulimits = definition.Ulimits.Select(u => new Ulimit
        {
            Name = u.Name,
            Soft = u.SoftLimit,
            Hard = u.HardLimit,
        }).ToList().NullIfEmpty();

        if (definition.LogConfiguration is { } log)
            host.LogConfig = Logs.AwsLogsConfig.DockerLogConfig(log) ?? new LogConfig { Type = log.LogDriver!, Config = new Dictionary<string, string>(log.Options) };

        var sysctls = definition.SystemControls.ToDictionary(s => s.Key, s => s.Value);
        if (sysctls.Count > 0) host.Sysctls = sysctls;

        if (definition.LinuxParameters is { } linux) ApplyLinuxParameters(linux, host);

        var dependsOn = definition.DependsOn
            .Select(d => new ContainerDependency(d.ContainerName, d.Condition))
            .ToList();
        // A link needs its target running, so the agent treats it as an implicit START dependency.
        foreach (var target in links.Select(l => l.Split(':', 2)[0]).Where(dockerNames.ContainsKey))
        {
            if (!dependsOn.Any(d => d.ContainerName == target)) dependsOn.Add(new ContainerDependency(target, DependencyConditions.Start));
        }

        return new ContainerPlan(
            name,
            dockerNames[name],
            image,
            definition.Essential,
            stopTimeout,
            startTimeout,
            parameters.Healthcheck is not null,
            dependsOn,
            volumesFrom.Select(v => v.SourceContainer).Distinct().ToList(),
            mappings,
            parameters);
    }

    /// <summary>
    /// The container's environment: the definition's variables with the override's values for the
    /// same names, in the definition's order, then the override's new names (RunTask's merge).
    /// </summary>
    public static IList<string> Environment(ContainerDefinitionView definition, ContainerOverride? containerOverride)
    {
        var merged = new List<KeyValuePair<string, string>>(definition.Environment);
        foreach (var (name, value) in containerOverride?.Environment ?? [])
        {
            var index = merged.FindIndex(p => p.Key == name);
            if (index >= 0) merged[index] = new(name, value);
            else merged.Add(new(name, value));
        }
        return merged.Select(p => $"{p.Key}={p.Value}").ToList();
    }

    /// <summary>The agent's labels over the definition's <c>dockerLabels</c> (ours win a clash), plus the owning instance.</summary>
    private static Dictionary<string, string> Labels(IReadOnlyDictionary<string, string> dockerLabels, TaskContext context, string family, int revision, string name)
    {
        var labels = new Dictionary<string, string>(dockerLabels, StringComparer.Ordinal);
        labels[DockerLabels.Cluster] = context.Cluster;
        labels[DockerLabels.TaskArn] = context.TaskArn;
        labels[DockerLabels.ContainerName] = name;
        labels[DockerLabels.TaskDefinitionFamily] = family;
        labels[DockerLabels.TaskDefinitionVersion] = revision.ToString(CultureInfo.InvariantCulture);
        labels[DockerLabels.InstanceId] = context.InstanceId;
        if (context.StartedBy is { Length: > 0 } startedBy) labels[DockerLabels.StartedBy] = startedBy;
        if (context.Group is { Length: > 0 } group) labels[DockerLabels.Group] = group;
        return labels;
    }

    /// <summary>ECS's health check in Docker's terms: the command as the test, seconds as durations.</summary>
    public static HealthConfig? HealthCheck(HealthCheckView? healthCheck)
    {
        if (healthCheck?.Command is not { } command) return null;
        return new HealthConfig
        {
            Test = [.. command],
            Interval = TimeSpan.FromSeconds(healthCheck.Interval),
            Timeout = TimeSpan.FromSeconds(healthCheck.Timeout),
            Retries = healthCheck.Retries,
            // Docker's StartPeriod is in nanoseconds.
            StartPeriod = healthCheck.StartPeriod * 1_000_000_000L,
        };
    }

    /// <summary>
    /// The port mappings, one per port (a <c>containerPortRange</c> becomes one ephemeral mapping per
    /// port). In host mode the container's ports are the host's: the host port is the container port.
    /// </summary>
    public static IReadOnlyList<PortMappingPlan> PortMappings(ContainerDefinitionView definition, string networkMode)
    {
        var result = new List<PortMappingPlan>();
        foreach (var mapping in definition.PortMappings)
        {
            var protocol = mapping.Protocol;
            if (mapping.ContainerPort is { } containerPort)
            {
                var hostPort = networkMode == "host" ? containerPort : mapping.HostPort ?? 0;
                result.Add(new PortMappingPlan(containerPort, hostPort, protocol));
            }
            else if (mapping.ContainerPortRange is { } range && range.Split('-') is [var low, var high])
            {
                for (var port = int.Parse(low, CultureInfo.InvariantCulture); port <= int.Parse(high, CultureInfo.InvariantCulture); port++)
                    result.Add(new PortMappingPlan(port, networkMode == "host" ? port : 0, protocol));
            }
        }
        return result;
    }

    public static string PortKey(int containerPort, string protocol) => $"{containerPort.ToString(CultureInfo.InvariantCulture)}/{protocol}";

    private static void ApplyLinuxParameters(LinuxParametersView linux, HostConfig host)
    {
        if (linux.InitProcessEnabled) host.Init = true;
        if (linux.HasCapabilities)
        {
            host.CapAdd = Strings(linux.AddedCapabilities);
            host.CapDrop = Strings(linux.DroppedCapabilities);
        }
        if (linux.SharedMemorySize is { } shm) host.ShmSize = shm * MiB;
        var tmpfs = linux.Tmpfs.ToDictionary(
            t => t.ContainerPath,
            t => string.Join(',', new[] { $"size={t.Size.ToString(CultureInfo.InvariantCulture)}m" }.Concat(t.MountOptions)));
        if (tmpfs.Count > 0) host.Tmpfs = tmpfs;
        host.Devices = linux.Devices.Select(d => new DeviceMapping
        {
            PathOnHost = d.HostPath,
            PathInContainer = d.ContainerPath,
            CgroupPermissions = d.Permissions is { Count: > 0 } permissions
                ? string.Concat(permissions.Select(p => p switch { "read" => "r", "write" => "w", "mknod" => "m", _ => "" }))
                : "rwm",
        }).ToList().NullIfEmpty();
        // maxSwap is extra swap on top of the hard limit; Docker's MemorySwap is the sum (needs a limit).
        if (linux.MaxSwap is { } maxSwap && host.Memory > 0) host.MemorySwap = host.Memory + maxSwap * MiB;
        if (linux.Swappiness is { } swappiness) host.MemorySwappiness = swappiness;
    }

    /// <summary>Docker's form of a list: null when empty, so Docker keeps the image's own value.</summary>
    private static IList<string>? Strings(IReadOnlyList<string> values) => values.Count > 0 ? values.ToList() : null;

    private static List<T>? NullIfEmpty<T>(this List<T> list) => list.Count == 0 ? null : list;
}
