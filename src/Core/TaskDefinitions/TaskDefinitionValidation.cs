using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Serverless.Core.Api;
using Serverless.Core.Tags;

namespace Serverless.Core.TaskDefinitions;

/// <summary>
/// The checks ECS makes on a RegisterTaskDefinition request beyond the model's types, required
/// members, enums and ranges (which <see cref="RequestValidator"/> has already enforced). Each
/// refusal is a <see cref="ClientException"/> in ECS's own words where they are known. Pure
/// functions over the validated request.
/// </summary>
public static partial class TaskDefinitionValidation
{
    public const int MaxContainers = 10;

    /// <summary>Docker 20.10 and later refuse a container limit below 6 MiB.</summary>
    public const int MinContainerMemory = 6;

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,255}$", RegexOptions.CultureInvariant)]
    public static partial Regex NamePattern();

    /// <summary>Runs every check, in the order ECS reports them, throwing on the first failure.</summary>
    public static void ValidateRegistration(JsonObject request)
    {
        ValidateFamily(request.String("family"));

        var networkMode = TaskDefinitionDefaults.NetworkMode(request);
        var taskCpu = TaskDefinitionDefaults.ParseTaskCpu(request.String("cpu"));
        var taskMemory = TaskDefinitionDefaults.ParseTaskMemory(request.String("memory"));
        var containers = Containers(request);
        var volumes = ValidateVolumes(request["volumes"] as JsonArray);

        ValidateContainerNames(containers);
        foreach (var container in containers)
        {
            ValidateImage(container);
            ValidateMemory(container, taskMemory);
            ValidateCpu(container);
            ValidatePortMappings(container, networkMode);
            ValidateMountPoints(container, volumes);
            ValidateVolumesFrom(container, containers);
            ValidateSecrets(container);
            ValidateHealthCheck(container);
            ValidateLogConfiguration(container);
            if (networkMode == TaskDefinitionDefaults.AwsVpc && container["hostname"] is not null)
                throw new ClientException("hostname is not supported on container when networkMode=awsvpc.");
        }
        ValidateHostPortsAreUnique(containers, networkMode);
        ValidateDependencies(containers);
        ValidateEssential(containers);
        ValidateTaskCpu(containers, taskCpu);
        ValidateTaskMemory(containers, taskMemory);
        ValidateEphemeralStorage(request);
        ValidateCompatibilities(request);
        Tag.FromRequest(request);
    }

    /// <summary>Up to 255 letters, numbers, hyphens and underscores.</summary>
    public static void ValidateFamily(string? family)
    {
        if (string.IsNullOrEmpty(family)) throw new ClientException("Family can not be blank.");
        if (!NamePattern().IsMatch(family)) throw new ClientException("Family contains invalid characters.");
    }

    /// <summary>1 to 10 container definitions.</summary>
    public static IReadOnlyList<JsonObject> Containers(JsonObject request)
    {
        var containers = (request["containerDefinitions"] as JsonArray ?? []).Select(c => (JsonObject)c!).ToList();
        if (containers.Count == 0) throw new ClientException("Container list cannot be empty.");
        if (containers.Count > MaxContainers)
            throw new ClientException($"Too many containers. A task definition can have at most {MaxContainers} container definitions.");
        return containers;
    }

    /// <summary>Every container is named, validly and uniquely within the task.</summary>
    public static void ValidateContainerNames(IReadOnlyList<JsonObject> containers)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var container in containers)
        {
            var name = container.String("name");
            if (string.IsNullOrEmpty(name)) throw new ClientException("Container.name should not be null or empty.");
            if (!NamePattern().IsMatch(name)) throw new ClientException("Container.name contains invalid characters.");
            if (!seen.Add(name)) throw new ClientException($"Container names must be unique within a task definition. '{name}' is used more than once.");
        }
    }

    public static void ValidateImage(JsonObject container)
    {
        if (string.IsNullOrWhiteSpace(container.String("image"))) throw new ClientException("Container.image should not be null or empty.");
    }

    /// <summary>
    /// Without a task-level memory every container needs a hard (<c>memory</c>) or soft
    /// (<c>memoryReservation</c>) limit; a limit is at least 6 MiB; the soft limit never exceeds
    /// the hard one; and no container's hard limit exceeds the task's memory.
    /// </summary>
    public static void ValidateMemory(JsonObject container, int? taskMemory)
    {
        var name = container.String("name");
        var memory = container.Int("memory");
        var reservation = container.Int("memoryReservation");
        if (taskMemory is null && memory is null or 0 && reservation is null or 0)
            throw new ClientException($"Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified.");
        if (memory is { } hard && hard < MinContainerMemory)
            throw new ClientException($"Invalid 'memory' setting for container '{name}'. The minimum is {MinContainerMemory} MiB.");
        if (reservation is { } soft && soft < MinContainerMemory)
            throw new ClientException($"Invalid 'memoryReservation' setting for container '{name}'. The minimum is {MinContainerMemory} MiB.");
        if (memory is { } limit && reservation is { } reserved && reserved > limit)
            throw new ClientException($"Invalid 'memoryReservation' setting for container '{name}'. 'memoryReservation' must be less than or equal to 'memory'.");
        if (memory is { } containerLimit && taskMemory is { } taskLimit && containerLimit > taskLimit)
            throw new ClientException($"Invalid 'memory' setting for container '{name}'. The container's 'memory' cannot be greater than the task's 'memory'.");
    }

    public static void ValidateCpu(JsonObject container)
    {
        if (container.Int("cpu") is < 0) throw new ClientException($"Invalid 'cpu' setting for container '{container.String("name")}'.");
    }

    /// <summary>
    /// Ports 1–65535 (host port 0 means "any ephemeral port" in bridge mode); in host and awsvpc
    /// mode the host port, when given, equals the container port; <c>none</c> mode has no ports.
    /// </summary>
    public static void ValidatePortMappings(JsonObject container, string networkMode)
    {
        var name = container.String("name");
        var mappings = container["portMappings"] as JsonArray ?? [];
        if (networkMode == TaskDefinitionDefaults.None && mappings.Count > 0)
            throw new ClientException($"Invalid 'portMappings' setting for container '{name}'. Port mappings are not supported when networkMode=none.");

        foreach (var item in mappings)
        {
            var mapping = (JsonObject)item!;
            var containerPort = mapping.Int("containerPort");
            var hostPort = mapping.Int("hostPort");
            if (mapping.String("containerPortRange") is { } range)
            {
                if (containerPort is not null || hostPort is not null || !IsPortRange(range))
                    throw new ClientException($"Invalid 'containerPortRange' setting for container '{name}'.");
                continue;
            }
            if (containerPort is not (>= 1 and <= 65535)) throw new ClientException($"Invalid 'containerPort' setting for container '{name}'.");
            if (hostPort is < 0 or > 65535) throw new ClientException($"Invalid 'hostPort' setting for container '{name}'.");
            if (networkMode is TaskDefinitionDefaults.Host or TaskDefinitionDefaults.AwsVpc && hostPort is { } host && host != containerPort)
                throw new ClientException($"When networkMode={networkMode}, the host ports and container ports in port mappings must match.");
        }
    }

    private static bool IsPortRange(string range)
    {
        var parts = range.Split('-');
        return parts.Length == 2
            && int.TryParse(parts[0], out var low) && int.TryParse(parts[1], out var high)
            && low is >= 1 and <= 65535 && high is >= 1 and <= 65535 && low < high;
    }

    /// <summary>A host port (per protocol) is bound by at most one mapping in the task.</summary>
    public static void ValidateHostPortsAreUnique(IReadOnlyList<JsonObject> containers, string networkMode)
    {
        var bound = new HashSet<(string, int)>();
        foreach (var container in containers)
        {
            foreach (var item in container["portMappings"] as JsonArray ?? [])
            {
                var mapping = (JsonObject)item!;
                if (TaskDefinitionDefaults.EffectiveHostPort(mapping, networkMode) is not ( > 0 and var hostPort)) continue;
                var protocol = mapping.String("protocol") ?? "tcp";
                if (!bound.Add((protocol, hostPort)))
                    throw new ClientException($"{protocol.ToUpperInvariant()} host port '{hostPort}' is mapped multiple times in task.");
            }
        }
    }

    /// <summary>Volume names are valid and unique; returns them.</summary>
    public static IReadOnlySet<string> ValidateVolumes(JsonArray? volumes)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in volumes ?? [])
        {
            var name = ((JsonObject)item!).String("name");
            if (string.IsNullOrEmpty(name) || !NamePattern().IsMatch(name))
                throw new ClientException("Volume.name contains invalid characters.");
            if (!names.Add(name)) throw new ClientException($"Duplicate volume name '{name}'.");
        }
        return names;
    }

    /// <summary>Each mount point names a volume of the task and a path in the container.</summary>
    public static void ValidateMountPoints(JsonObject container, IReadOnlySet<string> volumes)
    {
        foreach (var item in container["mountPoints"] as JsonArray ?? [])
        {
            var mountPoint = (JsonObject)item!;
            var source = mountPoint.String("sourceVolume");
            if (source is null || !volumes.Contains(source)) throw new ClientException($"Unknown volume '{source ?? "null"}'.");
            if (string.IsNullOrEmpty(mountPoint.String("containerPath")))
                throw new ClientException($"Invalid 'mountPoints' setting for container '{container.String("name")}'. 'containerPath' must be specified.");
        }
    }

    /// <summary><c>volumesFrom</c> names another container of the task.</summary>
    public static void ValidateVolumesFrom(JsonObject container, IReadOnlyList<JsonObject> containers)
    {
        foreach (var item in container["volumesFrom"] as JsonArray ?? [])
        {
            var source = ((JsonObject)item!).String("sourceContainer");
            if (source is null || source == container.String("name") || containers.All(c => c.String("name") != source))
                throw new ClientException($"Invalid 'volumesFrom' setting for container '{container.String("name")}'. Unknown container '{source ?? "null"}'.");
        }
    }

    /// <summary>Secrets (and log driver secret options) have a non-empty name and source.</summary>
    public static void ValidateSecrets(JsonObject container)
    {
        var secrets = (container["secrets"] as JsonArray ?? [])
            .Concat(container["logConfiguration"]?["secretOptions"] as JsonArray ?? []);
        foreach (var item in secrets)
        {
            var secret = (JsonObject)item!;
            if (string.IsNullOrEmpty(secret.String("name")) || string.IsNullOrEmpty(secret.String("valueFrom")))
                throw new ClientException($"Invalid 'secrets' setting for container '{container.String("name")}'. A secret must have a 'name' and a 'valueFrom'.");
        }
    }

    /// <summary>
    /// The command starts with <c>CMD</c> or <c>CMD-SHELL</c>; interval 5–300 s, timeout 2–60 s,
    /// retries 1–10, startPeriod 0–300 s (the ECS documentation's ranges).
    /// </summary>
    public static void ValidateHealthCheck(JsonObject container)
    {
        if (container["healthCheck"] is not JsonObject healthCheck) return;
        var name = container.String("name");
        var command = healthCheck.Strings("command").ToList();
        if (command.Count < 2 || command[0] is not ("CMD" or "CMD-SHELL"))
            throw new ClientException($"Invalid 'healthCheck' setting for container '{name}'. The command must start with CMD or CMD-SHELL followed by the command to run.");
        Range(healthCheck, "interval", 5, 300);
        Range(healthCheck, "timeout", 2, 60);
        Range(healthCheck, "retries", 1, 10);
        Range(healthCheck, "startPeriod", 0, 300);

        void Range(JsonObject check, string member, int min, int max)
        {
            if (check.Int(member) is { } value && (value < min || value > max))
                throw new ClientException($"Invalid 'healthCheck.{member}' setting for container '{name}'. It must be between {min} and {max}.");
        }
    }

    /// <summary>The awslogs driver needs a log group and a region to write to.</summary>
    public static void ValidateLogConfiguration(JsonObject container)
    {
        if (container["logConfiguration"] is not JsonObject log || log.String("logDriver") != "awslogs") return;
        var options = log["options"] as JsonObject ?? [];
        var missing = new[] { "awslogs-region", "awslogs-group" }.Where(o => options[o] is null).ToList();
        if (missing.Count > 0) throw new ClientException($"Log driver awslogs requires options: {string.Join(", ", missing)}");
    }

    /// <summary>
    /// Each <c>dependsOn</c> names another container of the task; a container waited on for
    /// SUCCESS or COMPLETE (so expected to exit) cannot be essential; dependencies have no cycle.
    /// </summary>
    public static void ValidateDependencies(IReadOnlyList<JsonObject> containers)
    {
        var byName = containers.ToDictionary(c => c.String("name")!, StringComparer.Ordinal);
        foreach (var container in containers)
        {
            foreach (var item in container["dependsOn"] as JsonArray ?? [])
            {
                var dependency = (JsonObject)item!;
                var target = dependency.String("containerName")!;
                // ECS's own message has the stray "+".
                if (!byName.TryGetValue(target, out var targetContainer))
                    throw new ClientException($"Cannot depend on container + '{target}' because it does not exist");
                if (dependency.String("condition") is "SUCCESS" or "COMPLETE" && IsEssential(targetContainer))
                    throw new ClientException("A dependency container with SUCCESS or COMPLETE condition cannot be an essential container");
            }
        }

        // Depth-first search for a cycle: a task whose containers wait on each other never starts.
        var state = new Dictionary<string, bool>(StringComparer.Ordinal); // false: on the path, true: done
        foreach (var name in byName.Keys) Visit(name);

        void Visit(string name)
        {
            if (state.TryGetValue(name, out var done))
            {
                if (!done) throw new ClientException($"Invalid container dependencies: a dependency cycle includes container '{name}'.");
                return;
            }
            state[name] = false;
            foreach (var item in byName[name]["dependsOn"] as JsonArray ?? []) Visit(item!["containerName"]!.GetValue<string>());
            state[name] = true;
        }
    }

    public static bool IsEssential(JsonObject container) => container.Bool("essential") ?? true;

    public static void ValidateEssential(IReadOnlyList<JsonObject> containers)
    {
        if (!containers.Any(IsEssential)) throw new ClientException("Task definition doesn't have any essential container.");
    }

    /// <summary>With a task-level cpu, the containers' cpu units fit in it.</summary>
    public static void ValidateTaskCpu(IReadOnlyList<JsonObject> containers, int? taskCpu)
    {
        if (taskCpu is { } limit && containers.Sum(c => (long)(c.Int("cpu") ?? 0)) > limit)
            throw new ClientException("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.");
    }

    /// <summary>With a task-level memory, the containers' reservations fit in it.</summary>
    public static void ValidateTaskMemory(IReadOnlyList<JsonObject> containers, int? taskMemory)
    {
        if (taskMemory is { } limit && containers.Sum(c => (long)(c.Int("memoryReservation") ?? c.Int("memory") ?? 0)) > limit)
            throw new ClientException("The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.");
    }

    /// <summary>The smallest and largest <c>ephemeralStorage.sizeInGiB</c> ECS accepts (Fargate's 20 GiB is what a task gets without the member).</summary>
    public const int MinEphemeralStorageGiB = 21, MaxEphemeralStorageGiB = 200;

    /// <summary>
    /// <c>ephemeralStorage.sizeInGiB</c> within 21..200 GiB, refused in ECS's words (a missing or
    /// mistyped size is the model validator's, before this runs).
    /// </summary>
    public static void ValidateEphemeralStorage(JsonObject request)
    {
        if (request["ephemeralStorage"] is not JsonObject storage || storage.Int("sizeInGiB") is not { } size) return;
        if (size < MinEphemeralStorageGiB) throw new ClientException($"EphemeralStorage size should be at least {MinEphemeralStorageGiB}");
        if (size > MaxEphemeralStorageGiB) throw new ClientException($"EphemeralStorage size should be at most {MaxEphemeralStorageGiB}");
    }

    /// <summary>
    /// Every launch type in <c>requiresCompatibilities</c> must accept the definition: FARGATE
    /// needs awsvpc and a Fargate task size; EXTERNAL (ECS Anywhere) has no awsvpc.
    /// </summary>
    public static void ValidateCompatibilities(JsonObject request)
    {
        var required = request.Strings("requiresCompatibilities").ToList();
        if (required.Contains("FARGATE") && TaskDefinitionDefaults.FargateIncompatibility(request) is { } reason)
            throw new ClientException(reason);
        if (required.Contains("EXTERNAL") && TaskDefinitionDefaults.NetworkMode(request) == TaskDefinitionDefaults.AwsVpc)
            throw new ClientException("Task definitions for the EXTERNAL launch type do not support network mode 'awsvpc'.");
    }
}
