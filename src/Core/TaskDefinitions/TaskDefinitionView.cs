using System.Text.Json;
using System.Text.Json.Nodes;
using Serverless.Core.ContainerInstances;

namespace Serverless.Core.TaskDefinitions;

/// <summary>
/// A read-only, typed view of a task definition's JSON (as DescribeTaskDefinition shows it, or as a
/// request gives it). The JSON stays the stored and passed-through form, so every field survives
/// untouched; what the system reads or acts on is read here, so each member name is written once.
/// A view reads its JSON on each access and never changes it.
/// </summary>
public sealed class TaskDefinitionView(JsonObject json)
{
    /// <summary>The task definition's JSON, as stored.</summary>
    public JsonObject Json { get; } = json;

    public string Family => Json["family"]!.GetValue<string>();
    public int Revision => Json["revision"]!.GetValue<int>();

    /// <summary>The network mode, as described (<c>bridge</c> when the definition gives none).</summary>
    public string NetworkMode => Json["networkMode"]?.GetValue<string>() ?? TaskDefinitionDefaults.Bridge;

    /// <summary>Task-level cpu units and MiB, as the wire carries them (strings; a number is read as its text); null when not set.</summary>
    public string? Cpu => Text(Json["cpu"]);
    public string? Memory => Text(Json["memory"]);

    public string? PidMode => Json["pidMode"]?.GetValue<string>();
    public string? IpcMode => Json["ipcMode"]?.GetValue<string>();
    public string? TaskRoleArn => Json["taskRoleArn"]?.GetValue<string>();
    public string? ExecutionRoleArn => Json["executionRoleArn"]?.GetValue<string>();

    /// <summary>The container definitions, in definition order.</summary>
    public IReadOnlyList<ContainerDefinitionView> ContainerDefinitions
        => (Json["containerDefinitions"] as JsonArray ?? []).Select(c => new ContainerDefinitionView((JsonObject)c!)).ToList();

    /// <summary>The <c>volumes</c>, in definition order.</summary>
    public IReadOnlyList<VolumeView> Volumes => (Json["volumes"] as JsonArray ?? []).Select(v => new VolumeView((JsonObject)v!)).ToList();

    /// <summary>The <c>requiresAttributes</c> placement must satisfy (name, and value when given).</summary>
    public IReadOnlyList<InstanceAttribute> RequiresAttributes
        => (Json["requiresAttributes"] as JsonArray ?? [])
            .Select(a => new InstanceAttribute(a!["name"]!.GetValue<string>(), a["value"]?.GetValue<string>()))
            .ToList();

    internal static string? Text(JsonNode? node)
        => node?.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : node?.ToJsonString();
}

/// <summary>
/// A read-only, typed view of one container definition's JSON. Defaults are ECS's where ECS has one
/// (<see cref="Essential"/> true, <see cref="Cpu"/> 0); absent lists are empty.
/// </summary>
public sealed class ContainerDefinitionView(JsonObject json)
{
    /// <summary>The container definition's JSON, as stored.</summary>
    public JsonObject Json { get; } = json;

    public string Name => Json["name"]!.GetValue<string>();
    public string Image => Json["image"]!.GetValue<string>();
    public bool Essential => Json["essential"]?.GetValue<bool>() ?? true;

    public int Cpu => Int("cpu") ?? 0;
    /// <summary>The hard memory limit in MiB, when set.</summary>
    public int? Memory => Int("memory");
    /// <summary>The soft memory reservation in MiB, when set.</summary>
    public int? MemoryReservation => Int("memoryReservation");
    /// <summary>Seconds, when set.</summary>
    public int? StopTimeout => Int("stopTimeout");
    public int? StartTimeout => Int("startTimeout");

    public IReadOnlyList<PortMappingView> PortMappings => Objects("portMappings").Select(m => new PortMappingView(m)).ToList();
    public HealthCheckView? HealthCheck => Json["healthCheck"] is JsonObject check ? new HealthCheckView(check) : null;
    /// <summary>The <c>secrets</c> given to the container as environment variables.</summary>
    public IReadOnlyList<SecretView> Secrets => Objects("secrets").Select(s => new SecretView(s)).ToList();
    public LogConfigurationView? LogConfiguration => Json["logConfiguration"] is JsonObject log ? new LogConfigurationView(log) : null;
    public IReadOnlyList<ContainerDependencyView> DependsOn => Objects("dependsOn").Select(d => new ContainerDependencyView(d)).ToList();

    /// <summary>The <c>environment</c> variables, in definition order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Environment => NameValues(Json["environment"] as JsonArray);
    public bool HasEnvironmentFiles => Json["environmentFiles"] is JsonArray { Count: > 0 };
    public bool HasRepositoryCredentials => Json["repositoryCredentials"] is not null;

    public IReadOnlyList<string> Command => Strings("command");
    public IReadOnlyList<string> EntryPoint => Strings("entryPoint");
    public string? WorkingDirectory => Json["workingDirectory"]?.GetValue<string>();
    public string? User => Json["user"]?.GetValue<string>();
    public string? Hostname => Json["hostname"]?.GetValue<string>();
    /// <summary>Legacy links, <c>name</c> or <c>name:alias</c>.</summary>
    public IReadOnlyList<string> Links => Strings("links");
    public IReadOnlyList<string> DnsServers => Strings("dnsServers");
    public IReadOnlyList<string> DnsSearchDomains => Strings("dnsSearchDomains");
    public IReadOnlyList<string> DockerSecurityOptions => Strings("dockerSecurityOptions");
    /// <summary><c>extraHosts</c> as <c>hostname:ipAddress</c>, Docker's form.</summary>
    public IReadOnlyList<string> ExtraHosts
        => Objects("extraHosts").Select(h => $"{h["hostname"]!.GetValue<string>()}:{h["ipAddress"]!.GetValue<string>()}").ToList();

    public bool Privileged => Json["privileged"]?.GetValue<bool>() ?? false;
    public bool ReadonlyRootFilesystem => Json["readonlyRootFilesystem"]?.GetValue<bool>() ?? false;
    public bool DisableNetworking => Json["disableNetworking"]?.GetValue<bool>() ?? false;
    public bool Interactive => Json["interactive"]?.GetValue<bool>() ?? false;
    public bool PseudoTerminal => Json["pseudoTerminal"]?.GetValue<bool>() ?? false;

    /// <summary><c>dockerLabels</c>; a null value reads as empty.</summary>
    public IReadOnlyDictionary<string, string> DockerLabels => StringMap(Json["dockerLabels"]);
    public IReadOnlyList<MountPointView> MountPoints => Objects("mountPoints").Select(m => new MountPointView(m)).ToList();
    public IReadOnlyList<VolumeFromView> VolumesFrom => Objects("volumesFrom").Select(v => new VolumeFromView(v)).ToList();
    public IReadOnlyList<UlimitView> Ulimits => Objects("ulimits").Select(u => new UlimitView(u)).ToList();
    /// <summary><c>systemControls</c> as namespace → value.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> SystemControls
        => Objects("systemControls").Select(s => new KeyValuePair<string, string>(s["namespace"]!.GetValue<string>(), s["value"]!.GetValue<string>())).ToList();
    public LinuxParametersView? LinuxParameters => Json["linuxParameters"] is JsonObject linux ? new LinuxParametersView(linux) : null;
    /// <summary>The FireLens router type (<c>fluentbit</c>, <c>fluentd</c>), when the container is one.</summary>
    public string? FirelensType => Json["firelensConfiguration"]?["type"]?.GetValue<string>();

    private int? Int(string name) => Json[name] is JsonValue value ? value.GetValue<int>() : null;
    private IEnumerable<JsonObject> Objects(string name) => (Json[name] as JsonArray ?? []).Select(o => (JsonObject)o!);
    private IReadOnlyList<string> Strings(string name) => ReadStrings(Json[name]);

    internal static IReadOnlyList<string> ReadStrings(JsonNode? node)
        => node is JsonArray array ? array.Select(s => s!.GetValue<string>()).ToList() : [];

    internal static IReadOnlyDictionary<string, string> StringMap(JsonNode? node)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (node is JsonObject map)
        {
            foreach (var (key, value) in map) result[key] = value?.GetValue<string>() ?? "";
        }
        return result;
    }

    /// <summary>ECS's <c>{"name", "value"}</c> pairs, in order; entries without a name are skipped, a missing value is empty.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> NameValues(JsonArray? array)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var node in array ?? [])
        {
            if (node is not JsonObject pair || pair["name"]?.GetValue<string>() is not { } name) continue;
            result.Add(new(name, pair["value"]?.GetValue<string>() ?? ""));
        }
        return result;
    }
}

/// <summary>One <c>portMappings</c> entry: a <see cref="ContainerPort"/>, or a <see cref="ContainerPortRange"/> (<c>low-high</c>).</summary>
public sealed class PortMappingView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public int? ContainerPort => Json["containerPort"]?.GetValue<int>();
    /// <summary>The host port as given; 0 or absent lets Docker pick one (bridge).</summary>
    public int? HostPort => Json["hostPort"]?.GetValue<int>();
    public string? ContainerPortRange => Json["containerPortRange"]?.GetValue<string>();
    /// <summary><c>tcp</c> unless the mapping says <c>udp</c>.</summary>
    public string Protocol => Json["protocol"]?.GetValue<string>() ?? "tcp";

    /// <summary>
    /// The host port the mapping binds: the given one; else the container port in <c>host</c> and
    /// <c>awsvpc</c> mode, 0 (ephemeral) in <c>bridge</c>; null for a port range.
    /// </summary>
    public int? EffectiveHostPort(string networkMode)
        => HostPort ?? (ContainerPort is { } containerPort
            ? networkMode is TaskDefinitionDefaults.Host or TaskDefinitionDefaults.AwsVpc ? containerPort : 0
            : null);
}

/// <summary>A container's <c>healthCheck</c>, with ECS's defaults (30 s interval, 5 s timeout, 3 retries, no start period).</summary>
public sealed class HealthCheckView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    /// <summary>The command (<c>CMD</c> or <c>CMD-SHELL</c> first); null when the check has none.</summary>
    public IReadOnlyList<string>? Command => Json["command"] is JsonArray command ? command.Select(c => c!.GetValue<string>()).ToList() : null;
    public int Interval => Json["interval"]?.GetValue<int>() ?? TaskDefinitionDefaults.DefaultHealthCheckInterval;
    public int Timeout => Json["timeout"]?.GetValue<int>() ?? TaskDefinitionDefaults.DefaultHealthCheckTimeout;
    public int Retries => Json["retries"]?.GetValue<int>() ?? TaskDefinitionDefaults.DefaultHealthCheckRetries;
    /// <summary>Seconds (an Integer in ECS's model, at most 300).</summary>
    public int StartPeriod => Json["startPeriod"]?.GetValue<int>() ?? 0;
}

/// <summary>One <c>secrets</c> or <c>secretOptions</c> entry: the name it is given under and the ARN or parameter it comes from.</summary>
public sealed class SecretView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public string Name => Json["name"]!.GetValue<string>();
    public string ValueFrom => Json["valueFrom"]!.GetValue<string>();
}

/// <summary>A container's <c>logConfiguration</c>.</summary>
public sealed class LogConfigurationView(JsonObject json)
{
    public const string AwsLogs = "awslogs";

    public JsonObject Json { get; } = json;
    public string? LogDriver => Json["logDriver"]?.GetValue<string>();
    /// <summary>The driver's <c>options</c>; a null value reads as empty.</summary>
    public IReadOnlyDictionary<string, string> Options => ContainerDefinitionView.StringMap(Json["options"]);
    /// <summary>One option, or null when not given.</summary>
    public string? Option(string name) => (Json["options"] as JsonObject)?[name]?.GetValue<string>();
    /// <summary>The <c>secretOptions</c>: secrets given to the log driver as options.</summary>
    public IReadOnlyList<SecretView> SecretOptions => (Json["secretOptions"] as JsonArray ?? []).Select(s => new SecretView((JsonObject)s!)).ToList();
}

/// <summary>One <c>dependsOn</c> entry: start after <see cref="ContainerName"/> meets <see cref="Condition"/> (START, COMPLETE, SUCCESS, HEALTHY).</summary>
public sealed class ContainerDependencyView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public string ContainerName => Json["containerName"]!.GetValue<string>();
    public string Condition => Json["condition"]!.GetValue<string>();
}

/// <summary>One <c>mountPoints</c> entry.</summary>
public sealed class MountPointView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public string? SourceVolume => Json["sourceVolume"]?.GetValue<string>();
    public string ContainerPath => Json["containerPath"]!.GetValue<string>();
    public bool ReadOnly => Json["readOnly"]?.GetValue<bool>() == true;
}

/// <summary>One <c>volumesFrom</c> entry.</summary>
public sealed class VolumeFromView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public string SourceContainer => Json["sourceContainer"]!.GetValue<string>();
    public bool ReadOnly => Json["readOnly"]?.GetValue<bool>() == true;
}

/// <summary>One <c>ulimits</c> entry.</summary>
public sealed class UlimitView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public string Name => Json["name"]!.GetValue<string>();
    public long SoftLimit => Json["softLimit"]!.GetValue<long>();
    public long HardLimit => Json["hardLimit"]!.GetValue<long>();
}

/// <summary>A container's <c>linuxParameters</c>.</summary>
public sealed class LinuxParametersView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public bool InitProcessEnabled => Json["initProcessEnabled"]?.GetValue<bool>() == true;
    public bool HasCapabilities => Json["capabilities"] is JsonObject;
    public IReadOnlyList<string> AddedCapabilities => ContainerDefinitionView.ReadStrings(Json["capabilities"]?["add"]);
    public IReadOnlyList<string> DroppedCapabilities => ContainerDefinitionView.ReadStrings(Json["capabilities"]?["drop"]);
    /// <summary>MiB, when set.</summary>
    public long? SharedMemorySize => Json["sharedMemorySize"]?.GetValue<long>();
    public IReadOnlyList<TmpfsView> Tmpfs => (Json["tmpfs"] as JsonArray ?? []).Select(t => new TmpfsView((JsonObject)t!)).ToList();
    public IReadOnlyList<DeviceView> Devices => (Json["devices"] as JsonArray ?? []).Select(d => new DeviceView((JsonObject)d!)).ToList();
    /// <summary>MiB of swap on top of the hard limit, when set.</summary>
    public long? MaxSwap => Json["maxSwap"]?.GetValue<long>();
    public long? Swappiness => Json["swappiness"]?.GetValue<long>();
}

/// <summary>One <c>linuxParameters.tmpfs</c> entry (size in MiB).</summary>
public sealed class TmpfsView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public string ContainerPath => Json["containerPath"]!.GetValue<string>();
    public long Size => Json["size"]!.GetValue<long>();
    public IReadOnlyList<string> MountOptions => ContainerDefinitionView.ReadStrings(Json["mountOptions"]);
}

/// <summary>One <c>linuxParameters.devices</c> entry.</summary>
public sealed class DeviceView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public string HostPath => Json["hostPath"]!.GetValue<string>();
    /// <summary>The path in the container; the host path when not given.</summary>
    public string ContainerPath => Json["containerPath"]?.GetValue<string>() ?? HostPath;
    /// <summary><c>read</c>, <c>write</c>, <c>mknod</c>; empty when not given.</summary>
    public IReadOnlyList<string> Permissions => ContainerDefinitionView.ReadStrings(Json["permissions"]);
}

/// <summary>One task definition <c>volumes</c> entry.</summary>
public sealed class VolumeView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    public string Name => Json["name"]!.GetValue<string>();
    /// <summary>A bind mount's host path; null (or empty) for Docker-managed space.</summary>
    public string? HostSourcePath => Json["host"]?["sourcePath"]?.GetValue<string>();
    public DockerVolumeConfigurationView? DockerVolumeConfiguration
        => Json["dockerVolumeConfiguration"] is JsonObject docker ? new DockerVolumeConfigurationView(docker) : null;
    public bool HasEfsVolumeConfiguration => Json["efsVolumeConfiguration"] is JsonObject;
    public bool HasEfsAuthorization => Json["efsVolumeConfiguration"]?["authorizationConfig"] is not null;
}

/// <summary>A volume's <c>dockerVolumeConfiguration</c>, with ECS's defaults (<c>task</c> scope, the <c>local</c> driver).</summary>
public sealed class DockerVolumeConfigurationView(JsonObject json)
{
    public JsonObject Json { get; } = json;
    /// <summary>Whether the volume lives and dies with the task (<c>task</c>, the default) rather than being <c>shared</c>.</summary>
    public bool TaskScoped => (Json["scope"]?.GetValue<string>() ?? "task") == "task";
    public bool Autoprovision => Json["autoprovision"]?.GetValue<bool>() == true;
    public string Driver => Json["driver"]?.GetValue<string>() ?? "local";
    public IReadOnlyDictionary<string, string> DriverOpts => ContainerDefinitionView.StringMap(Json["driverOpts"]);
    public IReadOnlyDictionary<string, string> Labels => ContainerDefinitionView.StringMap(Json["labels"]);
    /// <summary>A driver other than <c>local</c>, or driver options: what reaches beyond Docker's own scratch space.</summary>
    public bool NeedsDriverOptions => Driver != "local" || Json["driverOpts"] is JsonObject { Count: > 0 };
}
