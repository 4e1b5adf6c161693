using System.Globalization;
using System.Text.Json.Nodes;
using Docker.DotNet.Models;

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
        var family = taskDefinition["family"]!.GetValue<string>();
        var revision = taskDefinition["revision"]!.GetValue<int>();
        var networkMode = taskDefinition["networkMode"]?.GetValue<string>() ?? "bridge";
        var definitions = (taskDefinition["containerDefinitions"] as JsonArray ?? []).Select(c => (JsonObject)c!).ToList();

        // A refused task is still translated, so its report names its containers.
        var refusal = Refusal(taskDefinition, definitions, networkMode) ?? defaults.Permissions.Refusal(taskDefinition);

        var volumes = new List<VolumePlan>();
        var sources = new Dictionary<string, string>(StringComparer.Ordinal); // ECS volume name → bind source
        foreach (var node in taskDefinition["volumes"] as JsonArray ?? [])
        {
            var volume = (JsonObject)node!;
            var name = volume["name"]!.GetValue<string>();
            if (volume["host"]?["sourcePath"]?.GetValue<string>() is { Length: > 0 } sourcePath)
            {
                sources[name] = sourcePath;
                continue;
            }
            var plan = volume["dockerVolumeConfiguration"] is JsonObject docker
                ? DockerVolume(name, docker, family, revision, context, suffix)
                // A volume with no source ("host": {}) is Docker-managed scratch space shared by the
                // task's containers and removed with the task, as the agent provides it.
                : new VolumePlan(name, VolumeName(family, revision, name, suffix), TaskScoped: true, Autoprovision: true, "local",
                    new Dictionary<string, string>(), VolumeLabels(context, taskScoped: true));
            volumes.Add(plan);
            sources[name] = plan.DockerName;
        }

        var containerOverrides = TaskOverrides.ContainerOverrides(overrides);
        var dockerNames = definitions.ToDictionary(d => Name(d), d => ContainerName(family, revision, Name(d), suffix), StringComparer.Ordinal);
        var containers = definitions
            .Select(d => Container(d, context, family, revision, networkMode, taskDefinition, containerOverrides.GetValueOrDefault(Name(d)), sources, dockerNames, defaults))
            .ToList();
        var secrets = Serverless.Core.Secrets.SecretReference.Of(taskDefinition);
        var limits = new TaskLimits(Text(overrides?["cpu"] ?? taskDefinition["cpu"]), Text(overrides?["memory"] ?? taskDefinition["memory"]));
        if (networkMode != AwsVpc) return new TaskPlan(family, revision, networkMode, containers, volumes, refusal) { Secrets = secrets, Limits = limits };

        // awsvpc, as the agent does it: a pause container joins the network of the task's subnet first,
        // and every container of the task shares its network namespace (one address, localhost between them).
        var network = TaskNetworkPlan.For(context.SubnetId, context.InstanceId);
        var pause = Pause(definitions, context, family, revision, network, suffix, defaults);
        var joined = containers.Select(c => Joined(c, pause)).Prepend(pause).ToList();
        return new TaskPlan(family, revision, networkMode, joined, volumes, refusal, network) { Secrets = secrets, Limits = limits };
    }

    private static string? Text(JsonNode? node) => node?.GetValueKind() == System.Text.Json.JsonValueKind.String ? node.GetValue<string>() : node?.ToJsonString();

    public const string AwsVpc = "awsvpc";

    /// <summary>The agent's name for the pause container of an <c>awsvpc</c> task (never reported).</summary>
    public const string PauseContainerName = "~internal~ecs~pause";

    /// <summary>
    /// The pause container: it sleeps, holds the task's network namespace on its subnet's network,
    /// and carries what Docker only takes on the namespace's owner (DNS servers, search domains, extra hosts).
    /// </summary>
    private static ContainerPlan Pause(List<JsonObject> definitions, TaskContext context, string family, int revision, TaskNetworkPlan network, string suffix, PlanDefaults defaults)
    {
        var labels = Labels(new JsonObject(), context, family, revision, PauseContainerName);
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
                DNS = definitions.SelectMany(d => Strings(d["dnsServers"]) ?? []).Distinct().ToList().NullIfEmpty(),
                DNSSearch = definitions.SelectMany(d => Strings(d["dnsSearchDomains"]) ?? []).Distinct().ToList().NullIfEmpty(),
                ExtraHosts = definitions.SelectMany(d => d["extraHosts"] as JsonArray ?? [])
                    .Select(h => $"{h!["hostname"]!.GetValue<string>()}:{h["ipAddress"]!.GetValue<string>()}").Distinct().ToList().NullIfEmpty(),
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
    private static string? Refusal(JsonObject taskDefinition, List<JsonObject> definitions, string networkMode)
    {
        foreach (var container in definitions)
        {
            if (container["repositoryCredentials"] is not null)
                return "ResourceInitializationError: unable to pull secrets or registry auth: private registry authentication (repositoryCredentials) is not supported by this worker";
            if (container["environmentFiles"] is JsonArray { Count: > 0 })
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

    private static VolumePlan DockerVolume(string name, JsonObject docker, string family, int revision, TaskContext context, string suffix)
    {
        var taskScoped = (docker["scope"]?.GetValue<string>() ?? "task") == "task";
        var labels = VolumeLabels(context, taskScoped);
        foreach (var (key, value) in StringMap(docker["labels"])) labels.TryAdd(key, value);
        return new VolumePlan(
            name,
            taskScoped ? VolumeName(family, revision, name, suffix) : name,
            taskScoped,
            // A task-scoped volume is always created; a shared one only when asked to (ECS's autoprovision).
            Autoprovision: taskScoped || docker["autoprovision"]?.GetValue<bool>() == true,
            docker["driver"]?.GetValue<string>() ?? "local",
            StringMap(docker["driverOpts"]),
            labels);
    }

    private static Dictionary<string, string> VolumeLabels(TaskContext context, bool taskScoped)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { [DockerLabels.InstanceId] = context.InstanceId };
        if (taskScoped) labels[DockerLabels.TaskArn] = context.TaskArn;
        return labels;
    }

    private static ContainerPlan Container(
        JsonObject definition, TaskContext context, string family, int revision, string networkMode, JsonObject taskDefinition,
        ContainerOverride? containerOverride, Dictionary<string, string> volumeSources, Dictionary<string, string> dockerNames, PlanDefaults defaults)
    {
        var name = Name(definition);
        var image = definition["image"]!.GetValue<string>();
        var cpu = containerOverride?.Cpu ?? Int(definition, "cpu") ?? 0;
        var memory = containerOverride?.Memory ?? Int(definition, "memory");
        var memoryReservation = containerOverride?.MemoryReservation ?? Int(definition, "memoryReservation");
        var stopTimeout = Int(definition, "stopTimeout") is { } stop ? TimeSpan.FromSeconds(stop) : defaults.StopTimeout;
        var startTimeout = Int(definition, "startTimeout") is { } start ? TimeSpan.FromSeconds(start) : defaults.StartTimeout;

        var host = new HostConfig
        {
            NetworkMode = networkMode,
            CPUShares = Math.Max(cpu, MinimumCpuShares),
            Memory = (memory ?? 0) * MiB,
            MemoryReservation = (memoryReservation ?? 0) * MiB,
            Privileged = definition["privileged"]?.GetValue<bool>() ?? false,
            ReadonlyRootfs = definition["readonlyRootFilesystem"]?.GetValue<bool>() ?? false,
            DNS = Strings(definition["dnsServers"]),
            DNSSearch = Strings(definition["dnsSearchDomains"]),
            SecurityOpt = Strings(definition["dockerSecurityOptions"]),
            ExtraHosts = (definition["extraHosts"] as JsonArray ?? [])
                .Select(h => $"{h!["hostname"]!.GetValue<string>()}:{h["ipAddress"]!.GetValue<string>()}").ToList().NullIfEmpty(),
        };
        if (taskDefinition["pidMode"]?.GetValue<string>() is { } pidMode) host.PidMode = pidMode;
        if (taskDefinition["ipcMode"]?.GetValue<string>() is { } ipcMode) host.IpcMode = ipcMode;

        var parameters = new CreateContainerParameters
        {
            Name = dockerNames[name],
            Image = image,
            Env = Environment(definition, containerOverride),
            Entrypoint = Strings(definition["entryPoint"]),
            Cmd = containerOverride?.Command is { } command ? [.. command] : Strings(definition["command"]),
            WorkingDir = definition["workingDirectory"]?.GetValue<string>(),
            User = definition["user"]?.GetValue<string>(),
            // Docker refuses a host name in host network mode; ECS validation refuses it too.
            Hostname = networkMode == "host" ? null : definition["hostname"]?.GetValue<string>(),
            NetworkDisabled = definition["disableNetworking"]?.GetValue<bool>() ?? false,
            OpenStdin = definition["interactive"]?.GetValue<bool>() ?? false,
            Tty = definition["pseudoTerminal"]?.GetValue<bool>() ?? false,
            Labels = Labels(definition, context, family, revision, name),
            StopTimeout = stopTimeout,
            Healthcheck = HealthCheck(definition["healthCheck"] as JsonObject),
            HostConfig = host,
        };
        Logs.AwsLogsConfig.AddLabel(definition, context.TaskArn, name, parameters.Labels);

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

        host.Binds = (definition["mountPoints"] as JsonArray ?? [])
            .Select(m => (JsonObject)m!)
            .Where(m => m["sourceVolume"]?.GetValue<string>() is { } source && volumeSources.ContainsKey(source))
            .Select(m => $"{volumeSources[m["sourceVolume"]!.GetValue<string>()]}:{m["containerPath"]!.GetValue<string>()}"
                         + (m["readOnly"]?.GetValue<bool>() == true ? ":ro" : ""))
            .ToList().NullIfEmpty();

        var volumesFrom = (definition["volumesFrom"] as JsonArray ?? []).Select(v => (JsonObject)v!)
            .Where(v => dockerNames.ContainsKey(v["sourceContainer"]!.GetValue<string>())).ToList();
        host.VolumesFrom = volumesFrom
            .Select(v => dockerNames[v["sourceContainer"]!.GetValue<string>()] + (v["readOnly"]?.GetValue<bool>() == true ? ":ro" : ""))
            .ToList().NullIfEmpty();

        // Links are legacy bridge networking: "name:alias" with the container's Docker name.
        var links = (definition["links"] as JsonArray ?? []).Select(l => l!.GetValue<string>()).ToList();
        if (networkMode == "bridge")
        {
            host.Links = links
                .Select(l => l.Split(':', 2))
                .Where(parts => dockerNames.ContainsKey(parts[0]))
                .Select(parts => $"{dockerNames[parts[0]]}:{(parts.Length == 2 ? parts[1] : parts[0])}")
                .ToList().NullIfEmpty();
        }

        host.Ulimits = (definition["ulimits"] as JsonArray ?? []).Select(u => new Ulimit
        {
            Name = u!["name"]!.GetValue<string>(),
            Soft = u["softLimit"]!.GetValue<long>(),
            Hard = u["hardLimit"]!.GetValue<long>(),
        }).ToList().NullIfEmpty();

        if (definition["logConfiguration"] is JsonObject log)
            host.LogConfig = Logs.AwsLogsConfig.DockerLogConfig(log) ?? new LogConfig { Type = log["logDriver"]!.GetValue<string>(), Config = StringMap(log["options"]) };

        var sysctls = (definition["systemControls"] as JsonArray ?? [])
            .ToDictionary(s => s!["namespace"]!.GetValue<string>(), s => s!["value"]!.GetValue<string>());
        if (sysctls.Count > 0) host.Sysctls = sysctls;

        if (definition["linuxParameters"] is JsonObject linux) ApplyLinuxParameters(linux, host);

        var dependsOn = (definition["dependsOn"] as JsonArray ?? [])
            .Select(d => new ContainerDependency(d!["containerName"]!.GetValue<string>(), d["condition"]!.GetValue<string>()))
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
            definition["essential"]?.GetValue<bool>() ?? true,
            stopTimeout,
            startTimeout,
            parameters.Healthcheck is not null,
            dependsOn,
            volumesFrom.Select(v => v["sourceContainer"]!.GetValue<string>()).Distinct().ToList(),
            mappings,
            parameters);
    }

    /// <summary>
    /// The container's environment: the definition's variables with the override's values for the
    /// same names, in the definition's order, then the override's new names (RunTask's merge).
    /// </summary>
    public static IList<string> Environment(JsonObject definition, ContainerOverride? containerOverride)
    {
        var merged = new List<KeyValuePair<string, string>>(TaskOverrides.Environment(definition["environment"] as JsonArray));
        foreach (var (name, value) in containerOverride?.Environment ?? [])
        {
            var index = merged.FindIndex(p => p.Key == name);
            if (index >= 0) merged[index] = new(name, value);
            else merged.Add(new(name, value));
        }
        return merged.Select(p => $"{p.Key}={p.Value}").ToList();
    }

    /// <summary>The agent's labels over the definition's <c>dockerLabels</c> (ours win a clash), plus the owning instance.</summary>
    private static Dictionary<string, string> Labels(JsonObject definition, TaskContext context, string family, int revision, string name)
    {
        var labels = StringMap(definition["dockerLabels"]);
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
    public static HealthConfig? HealthCheck(JsonObject? healthCheck)
    {
        if (healthCheck?["command"] is not JsonArray command) return null;
        return new HealthConfig
        {
            Test = [.. command.Select(c => c!.GetValue<string>())],
            Interval = TimeSpan.FromSeconds(healthCheck["interval"]?.GetValue<int>() ?? 30),
            Timeout = TimeSpan.FromSeconds(healthCheck["timeout"]?.GetValue<int>() ?? 5),
            Retries = healthCheck["retries"]?.GetValue<int>() ?? 3,
            // Docker's StartPeriod is in nanoseconds.
            StartPeriod = (healthCheck["startPeriod"]?.GetValue<long>() ?? 0) * 1_000_000_000L,
        };
    }

    /// <summary>
    /// The port mappings, one per port (a <c>containerPortRange</c> becomes one ephemeral mapping per
    /// port). In host mode the container's ports are the host's: the host port is the container port.
    /// </summary>
    public static IReadOnlyList<PortMappingPlan> PortMappings(JsonObject definition, string networkMode)
    {
        var result = new List<PortMappingPlan>();
        foreach (var node in definition["portMappings"] as JsonArray ?? [])
        {
            var mapping = (JsonObject)node!;
            var protocol = mapping["protocol"]?.GetValue<string>() ?? "tcp";
            if (mapping["containerPort"] is { } containerPortNode)
            {
                var containerPort = containerPortNode.GetValue<int>();
                var hostPort = networkMode == "host" ? containerPort : mapping["hostPort"]?.GetValue<int>() ?? 0;
                result.Add(new PortMappingPlan(containerPort, hostPort, protocol));
            }
            else if (mapping["containerPortRange"]?.GetValue<string>() is { } range && range.Split('-') is [var low, var high])
            {
                for (var port = int.Parse(low, CultureInfo.InvariantCulture); port <= int.Parse(high, CultureInfo.InvariantCulture); port++)
                    result.Add(new PortMappingPlan(port, networkMode == "host" ? port : 0, protocol));
            }
        }
        return result;
    }

    public static string PortKey(int containerPort, string protocol) => $"{containerPort.ToString(CultureInfo.InvariantCulture)}/{protocol}";

    private static void ApplyLinuxParameters(JsonObject linux, HostConfig host)
    {
        if (linux["initProcessEnabled"]?.GetValue<bool>() == true) host.Init = true;
        if (linux["capabilities"] is JsonObject capabilities)
        {
            host.CapAdd = Strings(capabilities["add"]);
            host.CapDrop = Strings(capabilities["drop"]);
        }
        if (linux["sharedMemorySize"]?.GetValue<long>() is { } shm) host.ShmSize = shm * MiB;
        var tmpfs = (linux["tmpfs"] as JsonArray ?? []).Select(t => (JsonObject)t!).ToDictionary(
            t => t["containerPath"]!.GetValue<string>(),
            t => string.Join(',', new[] { $"size={t["size"]!.GetValue<long>().ToString(CultureInfo.InvariantCulture)}m" }
                .Concat(Strings(t["mountOptions"]) ?? [])));
        if (tmpfs.Count > 0) host.Tmpfs = tmpfs;
        host.Devices = (linux["devices"] as JsonArray ?? []).Select(d => (JsonObject)d!).Select(d => new DeviceMapping
        {
            PathOnHost = d["hostPath"]!.GetValue<string>(),
            PathInContainer = d["containerPath"]?.GetValue<string>() ?? d["hostPath"]!.GetValue<string>(),
            CgroupPermissions = Strings(d["permissions"]) is { Count: > 0 } permissions
                ? string.Concat(permissions.Select(p => p switch { "read" => "r", "write" => "w", "mknod" => "m", _ => "" }))
                : "rwm",
        }).ToList().NullIfEmpty();
        // maxSwap is extra swap on top of the hard limit; Docker's MemorySwap is the sum (needs a limit).
        if (linux["maxSwap"]?.GetValue<long>() is { } maxSwap && host.Memory > 0) host.MemorySwap = host.Memory + maxSwap * MiB;
        if (linux["swappiness"]?.GetValue<long>() is { } swappiness) host.MemorySwappiness = swappiness;
    }

    private static string Name(JsonObject definition) => definition["name"]!.GetValue<string>();

    private static int? Int(JsonObject definition, string name) => definition[name] is JsonValue value ? value.GetValue<int>() : null;

    private static IList<string>? Strings(JsonNode? node)
        => node is JsonArray { Count: > 0 } array ? array.Select(s => s!.GetValue<string>()).ToList() : null;

    private static Dictionary<string, string> StringMap(JsonNode? node)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (node is JsonObject map)
        {
            foreach (var (key, value) in map) result[key] = value?.GetValue<string>() ?? "";
        }
        return result;
    }

    private static List<T>? NullIfEmpty<T>(this List<T> list) => list.Count == 0 ? null : list;
}
