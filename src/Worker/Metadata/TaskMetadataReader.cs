using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.AspNetCore.Http;
using Serverless.Core;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Tasks;
using Serverless.Core.Secrets;
using Serverless.Worker.Docker;
using Serverless.Worker.Registration;

namespace Serverless.Worker.Metadata;

/// <summary>
/// The answers of the task metadata endpoint, with the field names of the ECS documentation's v4
/// examples: the task's state as this worker knows it (<see cref="TaskRunner"/>), the rest from
/// Docker (image id, times, labels, addresses, stats).
/// </summary>
public sealed class TaskMetadataReader(
    TaskRunner runner, IDockerClient docker, WorkerIdentity identity, WorkerOptions options, Arns arns, TaskStore tasks, ContainerInstanceStore instances)
{
    // Each task's container ids (for ContainerARN), from its row: they never change, so a task's row
    // is read once for them, at its first metadata request, not on every request (bounded).
    /// <summary>How long an answer waits for a task's loop to learn what Docker already says of a container.</summary>
    private static readonly TimeSpan CatchUp = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<string, IReadOnlyDictionary<string, string>> _containerIds = new(StringComparer.Ordinal);
    private const int MaxCachedTasks = 1024;

    public async Task<IResult> ContainerAsync(string id, CancellationToken cancellationToken)
    {
        if (await FindAsync(id, cancellationToken) is not var (loop, container)) return NotFound();
        return Results.Json(await ContainerJsonAsync(loop, container, await ContainerIdsAsync(loop.Managed, null, cancellationToken), cancellationToken));
    }

    public async Task<IResult> TaskAsync(string id, CancellationToken cancellationToken)
    {
        if (await FindAsync(id, cancellationToken) is not var (loop, _)) return NotFound();
        return Results.Json(await TaskJsonAsync(loop, null, cancellationToken));
    }

    /// <summary>
    /// <c>/taskWithTags</c>: the task, with its tags (<c>TaskTags</c>) and its container instance's
    /// (<c>ContainerInstanceTags</c>) as they are now, each left out when empty or unreadable, as the agent does.
    /// </summary>
    public async Task<IResult> TaskWithTagsAsync(string id, CancellationToken cancellationToken)
    {
        if (await FindAsync(id, cancellationToken) is not var (loop, _)) return NotFound();
        var row = await tasks.FindAsync(loop.Managed.Cluster, loop.Managed.TaskId, cancellationToken);
        var json = await TaskJsonAsync(loop, row, cancellationToken);
        if (row is { Tags.Count: > 0 }) json["TaskTags"] = TagMap(row.Tags);
        if (await instances.FindAsync(identity.Cluster, identity.InstanceId, cancellationToken) is { Tags.Count: > 0 } instance)
            json["ContainerInstanceTags"] = TagMap(instance.Tags);
        return Results.Json(json);
    }

    private static JsonObject TagMap(IEnumerable<Core.Tags.Tag> tags)
    {
        var map = new JsonObject();
        foreach (var tag in tags) map[tag.Key] = tag.Value;
        return map;
    }

    private async Task<JsonObject> TaskJsonAsync(TaskLoop loop, TaskRecord? row, CancellationToken cancellationToken)
    {
        var task = loop.Managed;
        var ids = await ContainerIdsAsync(task, row, cancellationToken);
        var containers = new JsonArray();
        foreach (var container in loop.View.Containers.Where(c => !c.Plan.Internal && c.DockerId is not null))
            containers.Add(await ContainerJsonAsync(loop, container, ids, cancellationToken));
        var view = loop.View;
        var json = new JsonObject
        {
            ["Cluster"] = arns.Cluster(task.Cluster),
            ["TaskARN"] = task.TaskArn,
            ["Family"] = task.Plan.Family,
            ["Revision"] = task.Plan.Revision.ToString(CultureInfo.InvariantCulture),
            ["DesiredStatus"] = view.DesiredStatus,
            ["KnownStatus"] = view.KnownStatus,
        };
        if (Limits(task.Plan.Limits) is { } limits) json["Limits"] = limits;
        if (view.Report.PullStartedAt is { } pullStarted) json["PullStartedAt"] = Time(pullStarted);
        if (view.Report.PullStoppedAt is { } pullStopped) json["PullStoppedAt"] = Time(pullStopped);
        // The report carries it only once the task is STOPPED.
        if (view.Report.ExecutionStoppedAt is { } stopped) json["ExecutionStoppedAt"] = Time(stopped);
        if (options.AvailabilityZone is { Length: > 0 } zone) json["AvailabilityZone"] = zone;
        json["LaunchType"] = options.CapacityProvider == "FARGATE" ? "FARGATE" : "EC2";
        json["Containers"] = containers;
        return json;
    }

    /// <summary>The task's container ids by name, from <paramref name="row"/> or the task's row; empty when it has none (yet).</summary>
    private async Task<IReadOnlyDictionary<string, string>> ContainerIdsAsync(ManagedTask task, TaskRecord? row, CancellationToken cancellationToken)
    {
        if (_containerIds.TryGetValue(task.TaskArn, out var known)) return known;
        row ??= await tasks.FindAsync(task.Cluster, task.TaskId, cancellationToken);
        if (row is null) return new Dictionary<string, string>();
        var ids = row.Containers.Where(c => c.Id is { Length: > 0 }).ToDictionary(c => c.Name, c => c.Id, StringComparer.Ordinal);
        if (_containerIds.Count >= MaxCachedTasks) _containerIds.Clear();
        _containerIds[task.TaskArn] = ids;
        return ids;
    }

    public async Task<IResult> ContainerStatsAsync(string id, CancellationToken cancellationToken)
    {
        if (await FindAsync(id, cancellationToken) is not var (_, container)) return NotFound();
        return Results.Text(await StatsAsync(container.DockerId!, cancellationToken), "application/json");
    }

    public async Task<IResult> TaskStatsAsync(string id, CancellationToken cancellationToken)
    {
        if (await FindAsync(id, cancellationToken) is not var (loop, _)) return NotFound();
        var json = new JsonObject();
        foreach (var container in loop.View.Containers.Where(c => !c.Plan.Internal && c.DockerId is not null))
            json[container.DockerId!] = JsonNode.Parse(await StatsAsync(container.DockerId!, cancellationToken));
        return Results.Json(json);
    }

    /// <summary>The task's limits as ECS shows them: CPU in vCPUs, memory in MiB; null when the definition sets neither.</summary>
    private static JsonObject? Limits(TaskLimits limits)
    {
        if (limits.Cpu is null && limits.Memory is null) return null;
        var json = new JsonObject();
        if (double.TryParse(limits.Cpu, CultureInfo.InvariantCulture, out var cpu)) json["CPU"] = cpu / 1024;
        if (long.TryParse(limits.Memory, CultureInfo.InvariantCulture, out var memory)) json["Memory"] = memory;
        return json;
    }

    private static IResult NotFound() => Results.Text("\"Unable to get task metadata: no container with that id\"", "application/json", statusCode: 404);

    /// <summary>The cluster, ARN and id of the task whose container carries the metadata id, on this instance; null for an unknown id.</summary>
    public async Task<(string Cluster, string TaskArn, string TaskId)?> TaskOfAsync(string id, CancellationToken cancellationToken)
        => await FindAsync(id, cancellationToken) is var (loop, _) ? (loop.Managed.Cluster, loop.Managed.TaskArn, loop.Managed.TaskId) : null;

    /// <summary>The managed task and container that carry the id, on this instance; null for an unknown id.</summary>
    private async Task<(TaskLoop Loop, ContainerView Container)?> FindAsync(string id, CancellationToken cancellationToken)
    {
        if (id.Length != 32) return null;
        var filter = DockerLabels.InstanceFilter(identity.InstanceId);
        filter["label"][$"{TaskMetadataEndpoint.IdLabel}={id}"] = true;
        var found = await docker.Containers.ListContainersAsync(new ContainersListParameters { All = true, Filters = filter }, cancellationToken);
        if (found.Count != 1) return null;
        var labels = found[0].Labels;
        if (DockerLabels.Get(labels, DockerLabels.TaskArn) is not { } taskArn || runner.Managed(taskArn) is not { } loop) return null;
        return loop.View.Containers.FirstOrDefault(c => c.DockerId == found[0].ID) is { } container ? (loop, container) : null;
    }

    private async Task<JsonObject> ContainerJsonAsync(
        TaskLoop loop, ContainerView container, IReadOnlyDictionary<string, string> containerIds, CancellationToken cancellationToken)
    {
        var task = loop.Managed;
        var inspected = await docker.Containers.InspectContainerAsync(container.DockerId!, cancellationToken);
        var labels = new JsonObject();
        foreach (var (name, value) in inspected.Config.Labels ?? new Dictionary<string, string>())
        {
            if (!name.StartsWith("ecs-worker.", StringComparison.Ordinal)) labels[name] = value;
        }
        var host = inspected.HostConfig;
        var json = new JsonObject
        {
            ["DockerId"] = inspected.ID,
            ["Name"] = container.Name,
            ["DockerName"] = inspected.Name.TrimStart('/'),
            ["Image"] = container.Plan.Image,
            ["ImageID"] = inspected.Image,
            ["Labels"] = labels,
        };
        if (containerIds.TryGetValue(container.Name, out var containerId)) json["ContainerARN"] = arns.Container(task.Cluster, task.TaskId, containerId);
        // As the task's loop knows it now (the inspect above took a while). A container Docker
        // already runs can still be CREATED there for a moment: its start's outcome is an input on
        // its way to the loop (a container reading its own metadata as it starts is this case).
        // The answer waits for the loop to catch up, a few seconds at most.
        var view = loop.View;
        for (var waited = System.Diagnostics.Stopwatch.StartNew();
             inspected.State.Running && view.Container(container.Name)!.Status < ContainerKnownStatus.Running && waited.Elapsed < CatchUp;
             view = loop.View)
        {
            try
            {
                await view.Superseded.WaitAsync(CatchUp - waited.Elapsed, cancellationToken);
            }
            catch (TimeoutException)
            {
                break;
            }
        }
        var now = view.Container(container.Name)!.State;
        json["DesiredStatus"] = view.DesiredStatus;
        json["KnownStatus"] = now.Status switch
        {
            ContainerKnownStatus.Created => "CREATED",
            ContainerKnownStatus.Running => EcsTaskStatus.Running,
            ContainerKnownStatus.Stopped => EcsTaskStatus.Stopped,
            _ => EcsTaskStatus.Pending,
        };
        if (now.ExitCode is { } exitCode) json["ExitCode"] = exitCode;
        json["Limits"] = new JsonObject
        {
            ["CPU"] = host.CPUShares,
            ["Memory"] = (host.Memory > 0 ? host.Memory : host.MemoryReservation) / (1024 * 1024),
        };
        json["CreatedAt"] = Time(inspected.Created);
        if (DockerTime(inspected.State.StartedAt) is { } started) json["StartedAt"] = started;
        if (now.Status == ContainerKnownStatus.Stopped && DockerTime(inspected.State.FinishedAt) is { } finished) json["FinishedAt"] = finished;
        json["Type"] = "NORMAL";
        if (host.LogConfig is { Type: { Length: > 0 } driver } log)
        {
            json["LogDriver"] = driver;
            // Values that came from secrets (secretOptions) are not metadata.
            var secret = task.Plan.Secrets.Where(s => s.Container == container.Name && s.Target != SecretTarget.Environment).Select(s => s.Name).ToHashSet();
            var logOptions = new JsonObject();
            foreach (var (name, value) in log.Config ?? new Dictionary<string, string>())
            {
                if (!secret.Contains(name)) logOptions[name] = value;
            }
            json["LogOptions"] = logOptions;
        }
        json["Networks"] = Networks(task, loop.View, inspected);
        return json;
    }

    /// <summary>The container's networks: Docker's for bridge mode, the task's interface for <c>awsvpc</c>, the host's mode alone for host.</summary>
    private static JsonArray Networks(ManagedTask task, TaskView view, ContainerInspectResponse inspected)
    {
        var mode = task.Plan.NetworkMode;
        if (mode == "awsvpc")
        {
            var ip = view.Report.NetworkInterface?.PrivateIpv4Address;
            return [new JsonObject { ["NetworkMode"] = mode, ["IPv4Addresses"] = ip is null ? new JsonArray() : new JsonArray(ip) }];
        }
        var networks = new JsonArray();
        foreach (var (_, network) in inspected.NetworkSettings?.Networks ?? new Dictionary<string, EndpointSettings>())
        {
            networks.Add(new JsonObject
            {
                ["NetworkMode"] = mode,
                ["IPv4Addresses"] = network.IPAddress is { Length: > 0 } ip ? new JsonArray(ip) : new JsonArray(),
            });
        }
        return networks;
    }

    /// <summary>Docker's stats JSON for one container, read once (no stream), in Docker's own field names.</summary>
    private async Task<string> StatsAsync(string dockerId, CancellationToken cancellationToken)
    {
        ContainerStatsResponse? stats = null;
        await docker.Containers.GetContainerStatsAsync(dockerId, new ContainerStatsParameters { Stream = false },
            new Progress(s => stats = s), cancellationToken);
        return Newtonsoft.Json.JsonConvert.SerializeObject(stats);
    }

    private sealed class Progress(Action<ContainerStatsResponse> report) : IProgress<ContainerStatsResponse>
    {
        public void Report(ContainerStatsResponse value) => report(value);
    }

    private static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static string Time(DateTime time) => Time(new DateTimeOffset(DateTime.SpecifyKind(time.ToUniversalTime(), DateTimeKind.Utc)));

    /// <summary>Docker's time as it gave it, or null for its zero time (never happened).</summary>
    private static string? DockerTime(string? time) => time is { Length: > 0 } && !time.StartsWith("0001-", StringComparison.Ordinal) ? time : null;
}
