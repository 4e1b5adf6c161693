using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serverless.Core.Api;

namespace Serverless.Core.TaskDefinitions;

/// <summary>
/// What ECS does to a registered task definition before it describes it: task cpu/memory strings
/// become integers, container definitions get their documented defaults, and the launch types
/// and container-instance attributes the definition needs are derived. Pure functions over JSON.
/// </summary>
public static partial class TaskDefinitionDefaults
{
    public const string Bridge = "bridge";
    public const string Host = "host";
    public const string AwsVpc = "awsvpc";
    public const string None = "none";

    /// <summary>The members of <c>RegisterTaskDefinitionRequest</c> that describe the definition itself (all but <c>tags</c>).</summary>
    public static readonly IReadOnlyList<string> RequestMembers =
    [
        "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
        "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode",
        "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
    ];

    /// <summary>Member order of the model's <c>TaskDefinition</c> shape, which is also the order ECS writes them in.</summary>
    private static readonly string[] TaskDefinitionOrder =
    [
        "taskDefinitionArn", "containerDefinitions", "family", "taskRoleArn", "executionRoleArn", "networkMode",
        "revision", "volumes", "status", "requiresAttributes", "placementConstraints", "compatibilities",
        "runtimePlatform", "requiresCompatibilities", "cpu", "memory", "inferenceAccelerators", "pidMode", "ipcMode",
        "proxyConfiguration", "registeredAt", "deregisteredAt", "deleteRequestedAt", "registeredBy",
        "ephemeralStorage", "enableFaultInjection",
    ];

    /// <summary>Member order of the model's <c>ContainerDefinition</c> shape.</summary>
    private static readonly string[] ContainerDefinitionOrder =
    [
        "name", "image", "repositoryCredentials", "cpu", "memory", "memoryReservation", "links", "portMappings",
        "essential", "restartPolicy", "entryPoint", "command", "environment", "environmentFiles", "mountPoints",
        "volumesFrom", "linuxParameters", "secrets", "dependsOn", "startTimeout", "stopTimeout",
        "versionConsistency", "hostname", "user", "workingDirectory", "disableNetworking", "privileged",
        "readonlyRootFilesystem", "dnsServers", "dnsSearchDomains", "extraHosts", "dockerSecurityOptions",
        "interactive", "pseudoTerminal", "dockerLabels", "ulimits", "logConfiguration", "healthCheck",
        "systemControls", "resourceRequirements", "firelensConfiguration", "credentialSpecs",
    ];

    private static readonly string[] PortMappingOrder = ["containerPort", "hostPort", "protocol", "name", "appProtocol", "containerPortRange"];

    private static readonly string[] HealthCheckOrder = ["command", "interval", "timeout", "retries", "startPeriod"];

    /// <summary>Health check defaults ECS reports on describe when the request left them out (startPeriod stays off).</summary>
    public const int DefaultHealthCheckInterval = 30;
    public const int DefaultHealthCheckTimeout = 5;
    public const int DefaultHealthCheckRetries = 3;

    /// <summary>Task-level CPU units ECS accepts for EC2 and external capacity (0.125 to 192 vCPU).</summary>
    public const int MinTaskCpu = 128;
    public const int MaxTaskCpu = 196608;

    public const string InvalidTaskCpu = "Invalid 'cpu' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.";
    public const string InvalidTaskMemory = "Invalid 'memory' setting for task. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.";

    /// <summary>
    /// Task <c>cpu</c> as ECS stores it: CPU units, from either units (<c>"1024"</c>) or vCPUs
    /// (<c>"1 vCPU"</c>, <c>"0.25 vcpu"</c>). Null when absent; <see cref="ClientException"/> when not a valid amount.
    /// </summary>
    public static int? ParseTaskCpu(string? value)
    {
        if (value is null) return null;
        var match = CpuPattern().Match(value);
        if (!match.Success || !decimal.TryParse(match.Groups["amount"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
            throw new ClientException(InvalidTaskCpu);
        var units = match.Groups["vcpu"].Success ? amount * 1024 : amount;
        if (units != decimal.Truncate(units) || units < MinTaskCpu || units > MaxTaskCpu) throw new ClientException(InvalidTaskCpu);
        return (int)units;
    }

    /// <summary>
    /// Task <c>memory</c> as ECS stores it: MiB, from either MiB (<c>"512"</c>) or GB
    /// (<c>"2 GB"</c>, <c>"0.5GB"</c>, 1 GB = 1024 MiB). Null when absent; <see cref="ClientException"/> when not a valid amount.
    /// </summary>
    public static int? ParseTaskMemory(string? value)
    {
        if (value is null) return null;
        var match = MemoryPattern().Match(value);
        if (!match.Success || !decimal.TryParse(match.Groups["amount"].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
            throw new ClientException(InvalidTaskMemory);
        var mib = match.Groups["gb"].Success ? amount * 1024 : amount;
        if (mib != decimal.Truncate(mib) || mib < 1 || mib > int.MaxValue) throw new ClientException(InvalidTaskMemory);
        return (int)mib;
    }

    [GeneratedRegex(@"^\s*(?<amount>\d+(\.\d+)?|\.\d+)\s*(?<vcpu>vcpus?)?\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex CpuPattern();

    [GeneratedRegex(@"^\s*(?<amount>\d+(\.\d+)?|\.\d+)\s*((?<gb>gb|gib)|mib|mb)?\s*$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex MemoryPattern();

    /// <summary>The network mode in effect: <c>bridge</c> when the request names none (Linux's default).</summary>
    public static string NetworkMode(JsonObject request) => new TaskDefinitionView(request).NetworkMode;

    /// <summary>
    /// The host port a mapping gets when the request omits it: the container port in <c>host</c> and
    /// <c>awsvpc</c> mode (a static mapping), 0 in <c>bridge</c> mode (Docker picks an ephemeral port).
    /// Null for a <c>containerPortRange</c> mapping, which has no single host port.
    /// </summary>
    public static int? EffectiveHostPort(JsonObject portMapping, string networkMode)
        => new PortMappingView(portMapping).EffectiveHostPort(networkMode);

    /// <summary>
    /// The stored form of a registration: the request's definition members (not <c>tags</c>) with
    /// ECS's normalisation and defaults applied, plus <c>compatibilities</c>, <c>requiresAttributes</c>
    /// and <c>registeredBy</c>. The request must already have passed <see cref="TaskDefinitionValidation"/>.
    /// What changes per revision (ARN, revision, status, timestamps) is added by <see cref="Describe"/>.
    /// </summary>
    public static JsonObject Resolve(JsonObject request, string registeredBy)
    {
        var networkMode = NetworkMode(request);
        var body = new JsonObject();
        foreach (var member in RequestMembers)
        {
            if (request[member] is { } value) body[member] = value.DeepClone();
        }

        // ECS drops empty role ARNs (its own CLI example registers "taskRoleArn": "" and describes none).
        foreach (var role in (string[])["taskRoleArn", "executionRoleArn"])
        {
            if (body[role] is JsonValue v && v.GetValue<string>().Length == 0) body.Remove(role);
        }

        body["networkMode"] = networkMode;
        if (ParseTaskCpu(request.String("cpu")) is { } cpu) body["cpu"] = cpu.ToString(CultureInfo.InvariantCulture);
        if (ParseTaskMemory(request.String("memory")) is { } memory) body["memory"] = memory.ToString(CultureInfo.InvariantCulture);

        var containers = new JsonArray();
        foreach (var container in (JsonArray)body["containerDefinitions"]!)
            containers.Add(ContainerWithDefaults((JsonObject)container!, networkMode));
        body["containerDefinitions"] = containers;

        var volumes = new JsonArray();
        if (body["volumes"] is JsonArray given)
        {
            foreach (var volume in given) volumes.Add(VolumeWithDefaults((JsonObject)volume!));
        }
        body["volumes"] = volumes;
        body["placementConstraints"] ??= new JsonArray();

        body["compatibilities"] = Compatibilities(body).ToJsonArray();
        body["requiresAttributes"] = RequiredAttributes(body)
            .Select(name => (JsonNode?)new JsonObject { ["name"] = name })
            .ToJsonArray();
        body["registeredBy"] = registeredBy;
        return Ordered(body, TaskDefinitionOrder);
    }

    /// <summary>The DescribeTaskDefinition form of a stored definition: the stored body plus its identity, status and timestamps.</summary>
    public static JsonObject Describe(
        JsonObject body, string arn, int revision, string status,
        DateTimeOffset registeredAt, DateTimeOffset? deregisteredAt, DateTimeOffset? deleteRequestedAt)
    {
        var described = (JsonObject)body.DeepClone();
        described["taskDefinitionArn"] = arn;
        described["revision"] = revision;
        described["status"] = status;
        described["registeredAt"] = AwsJson.Timestamp(registeredAt);
        if (deregisteredAt is { } deregistered) described["deregisteredAt"] = AwsJson.Timestamp(deregistered);
        if (deleteRequestedAt is { } deleteRequested) described["deleteRequestedAt"] = AwsJson.Timestamp(deleteRequested);
        return Ordered(described, TaskDefinitionOrder);
    }

    /// <summary>
    /// A container definition as ECS describes it: <c>cpu</c> 0, <c>essential</c> true, empty
    /// <c>portMappings</c>, <c>environment</c>, <c>mountPoints</c>, <c>volumesFrom</c> and
    /// <c>systemControls</c>, port mappings with <c>protocol</c> tcp and the host port the network
    /// mode implies, and a health check's interval, timeout and retries filled in.
    /// </summary>
    public static JsonObject ContainerWithDefaults(JsonObject container, string networkMode)
    {
        var result = (JsonObject)container.DeepClone();
        result["cpu"] ??= 0;
        result["essential"] ??= true;
        result["environment"] ??= new JsonArray();
        result["mountPoints"] ??= new JsonArray();
        result["volumesFrom"] ??= new JsonArray();
        result["systemControls"] ??= new JsonArray();

        var mappings = new JsonArray();
        if (result["portMappings"] is JsonArray given)
        {
            foreach (var item in given)
            {
                var mapping = (JsonObject)item!.DeepClone();
                if (mapping["hostPort"] is null && EffectiveHostPort(mapping, networkMode) is { } hostPort) mapping["hostPort"] = hostPort;
                mapping["protocol"] ??= "tcp";
                mappings.Add(Ordered(mapping, PortMappingOrder));
            }
        }
        result["portMappings"] = mappings;

        if (result["healthCheck"] is JsonObject healthCheck)
        {
            healthCheck["interval"] ??= DefaultHealthCheckInterval;
            healthCheck["timeout"] ??= DefaultHealthCheckTimeout;
            healthCheck["retries"] ??= DefaultHealthCheckRetries;
            result["healthCheck"] = Ordered(healthCheck, HealthCheckOrder);
        }
        return Ordered(result, ContainerDefinitionOrder);
    }

    /// <summary>A volume with no source of its own is a bind mount on the host, which ECS describes as <c>"host": {}</c>.</summary>
    public static JsonObject VolumeWithDefaults(JsonObject volume)
    {
        var result = (JsonObject)volume.DeepClone();
        var hasSource = result["host"] is not null || result["dockerVolumeConfiguration"] is not null
            || result["efsVolumeConfiguration"] is not null || result["fsxWindowsFileServerVolumeConfiguration"] is not null
            || result["s3filesVolumeConfiguration"] is not null || result["configuredAtLaunch"]?.GetValue<bool>() == true;
        if (!hasSource) result["host"] = new JsonObject();
        // ECS describes an EFS volume without a root directory as mounting the file system's root.
        if (result["efsVolumeConfiguration"] is JsonObject efs && efs["rootDirectory"] is null)
            result["efsVolumeConfiguration"] = WithRootDirectory(efs);
        return result;
    }

    private static JsonObject WithRootDirectory(JsonObject efs)
    {
        // After fileSystemId, where ECS puts it (the model's member order).
        var ordered = new JsonObject();
        foreach (var (name, value) in efs)
        {
            ordered[name] = value?.DeepClone();
            if (name == "fileSystemId") ordered["rootDirectory"] = "/";
        }
        ordered["rootDirectory"] ??= "/";
        return ordered;
    }

    /// <summary>
    /// The launch types a definition validates against, in ECS's order (EXTERNAL, EC2, FARGATE):
    /// EC2 always; EXTERNAL unless it uses <c>awsvpc</c> (ECS Anywhere has no task ENIs); FARGATE
    /// when it uses <c>awsvpc</c>, has a Fargate cpu/memory size and nothing Fargate refuses;
    /// MANAGED_INSTANCES only when the request asks for it.
    /// </summary>
    public static IReadOnlyList<string> Compatibilities(JsonObject definition)
    {
        var networkMode = NetworkMode(definition);
        var result = new List<string>();
        if (networkMode != AwsVpc) result.Add("EXTERNAL");
        result.Add("EC2");
        if (FargateIncompatibility(definition) is null) result.Add("FARGATE");
        if (definition.Strings("requiresCompatibilities").Contains("MANAGED_INSTANCES")) result.Add("MANAGED_INSTANCES");
        return result;
    }

    /// <summary>
    /// Why a definition cannot run on Fargate, in ECS's words, or null when it can. Checked in
    /// the order ECS reports them: network mode, then task size, then unsupported features.
    /// </summary>
    public static string? FargateIncompatibility(JsonObject definition)
    {
        var view = new TaskDefinitionView(definition);
        if (view.NetworkMode != AwsVpc) return "Fargate only supports network mode \u2018awsvpc\u2019.";
        var cpuText = view.Cpu;
        if (cpuText is null) return "Fargate requires that 'cpu' be defined at the task level.";
        var memoryText = view.Memory;
        if (memoryText is null) return "Fargate requires that 'memory' be defined at the task level.";
        var cpu = ParseTaskCpu(cpuText)!.Value;
        var memory = ParseTaskMemory(memoryText)!.Value;
        if (!FargateMemoryChoices.TryGetValue(cpu, out var choice)) return InvalidTaskCpu;
        if (memory < choice.Min || memory > choice.Max || (memory - choice.Min) % choice.Step != 0)
            return "No Fargate configuration exists for given values.";
        if (view.IpcMode is not null) return "Tasks using the Fargate launch type do not support ipcMode.";
        if (view.PidMode is { } pidMode && pidMode != "task")
            return $"Tasks using the Fargate launch type do not support pidMode '{pidMode}'. The supported value for pidMode is 'task'.";
        return null;
    }

    /// <summary>Fargate's task sizes: for each cpu value, the memory range (MiB) and its increment.</summary>
    private static readonly Dictionary<int, (int Min, int Max, int Step)> FargateMemoryChoices = new()
    {
        [256] = (512, 2048, 512),
        [512] = (1024, 4096, 1024),
        [1024] = (2048, 8192, 1024),
        [2048] = (4096, 16384, 1024),
        [4096] = (8192, 30720, 1024),
        [8192] = (16384, 61440, 4096),
        [16384] = (32768, 122880, 8192),
    };

    /// <summary>
    /// The container-instance attributes a definition requires, as ECS derives them from the
    /// features it uses (sorted, so a definition always describes the same way). The mapping
    /// follows the ECS documentation's "requires version 1.x of the Docker Remote API" notes and
    /// the agent's capability names:
    /// <list type="bullet">
    /// <item><c>docker-remote-api.1.18</c>: dockerLabels, ulimits, logConfiguration, awsvpc;</item>
    /// <item><c>docker-remote-api.1.19</c> and <c>logging-driver.awslogs</c>: the awslogs driver (other drivers: <c>logging-driver.&lt;driver&gt;</c>);</item>
    /// <item><c>docker-remote-api.1.21</c>: memoryReservation; <c>docker-remote-api.1.24</c> and <c>container-health-check</c>: healthCheck;</item>
    /// <item><c>docker-remote-api.1.25</c>: initProcessEnabled, Docker volumes; <c>privileged-container</c>: privileged;</item>
    /// <item><c>task-iam-role</c>: taskRoleArn; <c>task-eni</c>: awsvpc; <c>container-ordering</c>: dependsOn;</item>
    /// <item><c>secrets.ssm/asm.environment-variables</c>: secrets; <c>env-files.s3</c>: environmentFiles;</item>
    /// <item><c>ecr-auth</c> and, with an execution role, <c>execution-role-ecr-pull</c>: images in ECR;
    /// <c>execution-role-awslogs</c>: awslogs with an execution role;
    /// <c>private-registry-authentication.secretsmanager</c>: repositoryCredentials;</item>
    /// <item><c>efs</c>/<c>efsAuth</c>: EFS volumes; <c>firelens.&lt;type&gt;</c>: firelensConfiguration.</item>
    /// </list>
    /// Plus this system's <see cref="HostAccessAttributes"/> for what reaches into the host (host
    /// network, PID and IPC modes, bind mounts, added capabilities, devices, volume driver options,
    /// security options: <c>label</c> also requires ECS's <c>selinux</c>, <c>apparmor</c> its <c>apparmor</c>),
    /// which a worker advertises only when its settings allow them.
    /// </summary>
    public static IReadOnlyList<string> RequiredAttributes(JsonObject definition)
    {
        const string Legacy = "com.amazonaws.ecs.capability.";
        const string Current = "ecs.capability.";
        var names = new SortedSet<string>(StringComparer.Ordinal);
        var view = new TaskDefinitionView(definition);
        var hasExecutionRole = view.ExecutionRoleArn is { Length: > 0 };

        if (view.TaskRoleArn is { Length: > 0 }) names.Add(Legacy + "task-iam-role");
        if (view.NetworkMode == AwsVpc)
        {
            names.Add(Current + "task-eni");
            names.Add(Legacy + "docker-remote-api.1.18");
        }
        if (view.NetworkMode == Host) names.Add(HostAccessAttributes.HostNetwork);
        if (view.PidMode == "host") names.Add(HostAccessAttributes.HostPidMode);
        if (view.IpcMode == "host") names.Add(HostAccessAttributes.HostIpcMode);

        foreach (var container in view.ContainerDefinitions)
        {
            if (container.DockerLabels.Count > 0 || container.Ulimits.Count > 0)
                names.Add(Legacy + "docker-remote-api.1.18");
            if (container.MemoryReservation is not null) names.Add(Legacy + "docker-remote-api.1.21");
            if (container.Privileged) names.Add(HostAccessAttributes.Privileged);
            if (container.LinuxParameters?.InitProcessEnabled == true) names.Add(Legacy + "docker-remote-api.1.25");
            if (container.LinuxParameters?.AddedCapabilities.Count > 0) names.Add(HostAccessAttributes.AddedCapabilities);
            if (container.LinuxParameters?.Devices.Count > 0) names.Add(HostAccessAttributes.Devices);
            foreach (var option in container.DockerSecurityOptions.Where(HostAccessAttributes.LoosensConfinement))
            {
                names.Add(HostAccessAttributes.SecurityOptions);
                if (option.StartsWith("label", StringComparison.Ordinal)) names.Add(HostAccessAttributes.SeLinux);
                if (option.StartsWith("apparmor", StringComparison.Ordinal)) names.Add(HostAccessAttributes.AppArmor);
            }
            if (container.DependsOn.Count > 0) names.Add(Current + "container-ordering");
            if (container.HasEnvironmentFiles) names.Add(Current + "env-files.s3");
            if (container.HasRepositoryCredentials) names.Add(Legacy + "private-registry-authentication.secretsmanager");
            if (container.HealthCheck is not null)
            {
                names.Add(Current + "container-health-check");
                names.Add(Legacy + "docker-remote-api.1.24");
            }

            if (container.LogConfiguration is { } log)
            {
                names.Add(Legacy + "docker-remote-api.1.18");
                var driver = log.LogDriver!;
                names.Add(Legacy + "logging-driver." + driver);
                if (driver == LogConfigurationView.AwsLogs)
                {
                    names.Add(Legacy + "docker-remote-api.1.19");
                    if (hasExecutionRole) names.Add(Current + "execution-role-awslogs");
                }
            }

            if (container.FirelensType is { } firelens) names.Add(Current + "firelens." + firelens);

            foreach (var secret in container.Secrets)
                names.Add(Current + SecretSource(secret.ValueFrom));

            if (EcrImage().IsMatch(container.Image))
            {
                names.Add(Legacy + "ecr-auth");
                if (hasExecutionRole) names.Add(Current + "execution-role-ecr-pull");
            }
        }

        foreach (var volume in view.Volumes)
        {
            if (volume.DockerVolumeConfiguration is { } docker)
            {
                names.Add(Legacy + "docker-remote-api.1.25");
                if (docker.NeedsDriverOptions) names.Add(HostAccessAttributes.VolumeDriverOptions);
            }
            if (volume.HostSourcePath is { Length: > 0 }) names.Add(HostAccessAttributes.HostPathMounts);
            if (volume.HasEfsVolumeConfiguration)
            {
                names.Add(Current + "efs");
                if (volume.HasEfsAuthorization) names.Add(Current + "efsAuth");
            }
        }
        return [.. names];
    }

    /// <summary>Secrets come from Secrets Manager (an <c>arn:…:secretsmanager:…</c>) or else Systems Manager Parameter Store.</summary>
    private static string SecretSource(string valueFrom)
        => valueFrom.Split(':') is [_, _, "secretsmanager", ..]
            ? "secrets.asm.environment-variables"
            : "secrets.ssm.environment-variables";

    [GeneratedRegex(@"^\d{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/", RegexOptions.CultureInvariant)]
    private static partial Regex EcrImage();

    /// <summary>A copy of <paramref name="source"/> with <paramref name="order"/>'s members first, in that order, then any others as they were.</summary>
    private static JsonObject Ordered(JsonObject source, IReadOnlyList<string> order)
    {
        var result = new JsonObject();
        foreach (var name in order)
        {
            if (source[name] is { } value) result[name] = value.DeepClone();
        }
        foreach (var (name, value) in source)
        {
            if (!result.ContainsKey(name) && value is not null) result[name] = value.DeepClone();
        }
        return result;
    }
}
