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

        var view = new TaskDefinitionView(request);
        var networkMode = view.NetworkMode;
        var taskCpu = TaskDefinitionDefaults.ParseTaskCpu(view.Cpu);
        var taskMemory = TaskDefinitionDefaults.ParseTaskMemory(view.Memory);
        var containers = Containers(request);
        var views = containers.Select(c => new ContainerDefinitionView(c)).ToList();
        var volumes = ValidateVolumes(request["volumes"] as JsonArray);

        // Names first: every later message names its container through the view.
        ValidateContainerNames(containers);
        foreach (var container in views)
        {
            ValidateImage(container.Json);
            ValidateMemory(container, taskMemory);
            ValidateCpu(container);
            ValidatePortMappings(container, networkMode);
            ValidateMountPoints(container, volumes);
            ValidateVolumesFrom(container, views);
            ValidateSecrets(container);
            ValidateHealthCheck(container);
            ValidateLogConfiguration(container);
            if (networkMode == TaskDefinitionDefaults.AwsVpc && container.Hostname is not null)
                throw new ClientException("hostname is not supported on container when networkMode=awsvpc.");
        }
        ValidateHostPortsAreUnique(views, networkMode);
        ValidateDependencies(views);
        ValidateEssential(views);
        ValidateTaskCpu(views, taskCpu);
        ValidateTaskMemory(views, taskMemory);
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
    public static void ValidateMemory(ContainerDefinitionView container, int? taskMemory)
    {
        var name = container.Name;
        var memory = container.Memory;
        var reservation = container.MemoryReservation;
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

    public static void ValidateCpu(ContainerDefinitionView container)
    {
        if (container.Cpu < 0) throw new ClientException($"Invalid 'cpu' setting for container '{container.Name}'.");
    }

    /// <summary>
    /// Ports 1–65535 (host port 0 means "any ephemeral port" in bridge mode); in host and awsvpc
    /// mode the host port, when given, equals the container port; <c>none</c> mode has no ports.
    /// </summary>
    public static void ValidatePortMappings(ContainerDefinitionView container, string networkMode)
    {
        var name = container.Name;
        var mappings = container.PortMappings;
        if (networkMode == TaskDefinitionDefaults.None && mappings.Count > 0)
            throw new ClientException($"Invalid 'portMappings' setting for container '{name}'. Port mappings are not supported when networkMode=none.");

        foreach (var mapping in mappings)
        {
            var containerPort = mapping.ContainerPort;
            var hostPort = mapping.HostPort;
            if (mapping.ContainerPortRange is { } range)
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
    public static void ValidateHostPortsAreUnique(IReadOnlyList<ContainerDefinitionView> containers, string networkMode)
    {
        var bound = new HashSet<(string, int)>();
        foreach (var container in containers)
        {
            foreach (var mapping in container.PortMappings)
            {
                if (mapping.EffectiveHostPort(networkMode) is not ( > 0 and var hostPort)) continue;
                var protocol = mapping.Protocol;
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
    public static void ValidateMountPoints(ContainerDefinitionView container, IReadOnlySet<string> volumes)
    {
        foreach (var mountPoint in container.MountPoints)
        {
            var source = mountPoint.SourceVolume;
            if (source is null || !volumes.Contains(source)) throw new ClientException($"Unknown volume '{source ?? "null"}'.");
            if (string.IsNullOrEmpty(mountPoint.Json.String("containerPath")))
                throw new ClientException($"Invalid 'mountPoints' setting for container '{container.Name}'. 'containerPath' must be specified.");
        }
    }

    /// <summary><c>volumesFrom</c> names another container of the task.</summary>
    public static void ValidateVolumesFrom(ContainerDefinitionView container, IReadOnlyList<ContainerDefinitionView> containers)
    {
        foreach (var volumeFrom in container.VolumesFrom)
        {
            var source = volumeFrom.Json.String("sourceContainer");
            if (source is null || source == container.Name || containers.All(c => c.Name != source))
                throw new ClientException($"Invalid 'volumesFrom' setting for container '{container.Name}'. Unknown container '{source ?? "null"}'.");
        }
    }

    /// <summary>Secrets (and log driver secret options) have a non-empty name and source.</summary>
    public static void ValidateSecrets(ContainerDefinitionView container)
    {
        foreach (var secret in container.Secrets.Concat(container.LogConfiguration?.SecretOptions ?? []))
        {
            // The view's Name and ValueFrom assume both are there; this is the check that makes it so.
            if (string.IsNullOrEmpty(secret.Json.String("name")) || string.IsNullOrEmpty(secret.Json.String("valueFrom")))
                throw new ClientException($"Invalid 'secrets' setting for container '{container.Name}'. A secret must have a 'name' and a 'valueFrom'.");
        }
    }

    /// <summary>
    /// The command starts with <c>CMD</c> or <c>CMD-SHELL</c>; interval 5–300 s, timeout 2–60 s,
    /// retries 1–10, startPeriod 0–300 s (the ECS documentation's ranges).
    /// </summary>
    public static void ValidateHealthCheck(ContainerDefinitionView container)
    {
        if (container.HealthCheck is not { } healthCheck) return;
        var name = container.Name;
        var command = healthCheck.Command ?? [];
        if (command.Count < 2 || command[0] is not ("CMD" or "CMD-SHELL"))
            throw new ClientException($"Invalid 'healthCheck' setting for container '{name}'. The command must start with CMD or CMD-SHELL followed by the command to run.");
        // ECS's defaults (30, 5, 3, 0) lie inside these ranges, so an absent member always passes.
        Range(healthCheck.Interval, "interval", 5, 300);
        Range(healthCheck.Timeout, "timeout", 2, 60);
        Range(healthCheck.Retries, "retries", 1, 10);
        Range(healthCheck.StartPeriod, "startPeriod", 0, 300);

        void Range(long value, string member, int min, int max)
        {
            if (value < min || value > max)
                throw new ClientException($"Invalid 'healthCheck.{member}' setting for container '{name}'. It must be between {min} and {max}.");
        }
    }

    /// <summary>The awslogs driver needs a log group and a region to write to.</summary>
    public static void ValidateLogConfiguration(ContainerDefinitionView container)
    {
        if (container.LogConfiguration is not { LogDriver: LogConfigurationView.AwsLogs } log) return;
        var missing = new[] { "awslogs-region", "awslogs-group" }.Where(o => log.Option(o) is null).ToList();
        if (missing.Count > 0) throw new ClientException($"Log driver awslogs requires options: {string.Join(", ", missing)}");
    }

    /// <summary>
    /// Each <c>dependsOn</c> names another container of the task; a container waited on for
    /// SUCCESS or COMPLETE (so expected to exit) cannot be essential; dependencies have no cycle.
    /// </summary>
    public static void ValidateDependencies(IReadOnlyList<ContainerDefinitionView> containers)
    {
        var byName = containers.ToDictionary(c => c.Name, StringComparer.Ordinal);
        foreach (var container in containers)
        {
            foreach (var dependency in container.DependsOn)
            {
                var target = dependency.ContainerName;
                // ECS's own message has the stray "+".
                if (!byName.TryGetValue(target, out var targetContainer))
                    throw new ClientException($"Cannot depend on container + '{target}' because it does not exist");
                if (dependency.Condition is "SUCCESS" or "COMPLETE" && targetContainer.Essential)
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
            foreach (var dependency in byName[name].DependsOn) Visit(dependency.ContainerName);
            state[name] = true;
        }
    }

    public static void ValidateEssential(IReadOnlyList<ContainerDefinitionView> containers)
    {
        if (!containers.Any(c => c.Essential)) throw new ClientException("Task definition doesn't have any essential container.");
    }

    /// <summary>With a task-level cpu, the containers' cpu units fit in it.</summary>
    public static void ValidateTaskCpu(IReadOnlyList<ContainerDefinitionView> containers, int? taskCpu)
    {
        if (taskCpu is { } limit && containers.Sum(c => (long)c.Cpu) > limit)
            throw new ClientException("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.");
    }

    /// <summary>With a task-level memory, the containers' reservations fit in it.</summary>
    public static void ValidateTaskMemory(IReadOnlyList<ContainerDefinitionView> containers, int? taskMemory)
    {
        if (taskMemory is { } limit && containers.Sum(c => (long)(c.MemoryReservation ?? c.Memory ?? 0)) > limit)
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
