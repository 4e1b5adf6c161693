using System.Globalization;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;

namespace Serverless.EndToEnd.Tests.Faults;

/// <summary>
/// What must hold on a cluster once it has converged after a fault, each read as a user or an
/// operator would read it (the ECS API, the docker CLI, the queues):
/// <list type="bullet">
/// <item>every ACTIVE service runs its desired count, in one deployment, and that many tasks are RUNNING;</item>
/// <item>every acknowledged task (an ARN the API returned) can still be described;</item>
/// <item>no running container without a RUNNING task, no RUNNING task without its running containers;</item>
/// <item>each instance's reserved memory equals the memory of the tasks on it that are not STOPPED;</item>
/// <item>no message in any poison queue.</item>
/// </list>
/// </summary>
public static class ClusterInvariants
{
    public static async Task<IReadOnlyList<string>> ViolationsAsync(ControlPlaneFixture plane, string cluster, IReadOnlyCollection<string> acknowledgedTasks)
    {
        var violations = new List<string>();
        var live = await plane.ListTaskArnsAsync(cluster);
        var stopping = await plane.ListTaskArnsAsync(cluster, desiredStatus: "STOPPED");
        var tasks = (await plane.DescribeTasksAsync(cluster, live.Concat(stopping).Distinct())).ToList();
        var byArn = tasks.ToDictionary(t => Str(t, "taskArn"), StringComparer.Ordinal);
        var notStopped = tasks.Where(t => Str(t, "lastStatus") != "STOPPED").ToList();

        // Services: desired equals running.
        var services = (await plane.Client.EcsOkAsync("ListServices", new() { ["cluster"] = cluster, ["maxResults"] = 100 }))["serviceArns"]!.AsArray()
            .Select(a => a!.GetValue<string>()).ToList();
        foreach (var chunk in services.Chunk(10))
        {
            var described = await plane.Client.EcsOkAsync("DescribeServices", new() { ["cluster"] = cluster, ["services"] = new JsonArray([.. chunk.Select(s => JsonValue.Create(s))]) });
            foreach (var service in described["services"]!.AsArray())
            {
                if (Str(service!, "status") != "ACTIVE") continue;
                var name = Str(service!, "serviceName");
                var desired = service!["desiredCount"]!.GetValue<int>();
                var running = service["runningCount"]!.GetValue<int>();
                var deployments = service["deployments"]!.AsArray().Count;
                var runningTasks = notStopped.Count(t => Str(t, "group") == $"service:{name}" && Str(t, "lastStatus") == "RUNNING" && Str(t, "desiredStatus") == "RUNNING");
                if (desired != running || deployments != 1 || runningTasks != desired)
                    violations.Add($"service {name}: desired {desired}, runningCount {running}, RUNNING tasks {runningTasks}, deployments {deployments}");
            }
        }

        // Acknowledged writes are still there.
        var missing = acknowledgedTasks.Where(a => !byArn.ContainsKey(a)).ToList();
        if (missing.Count > 0)
        {
            // Not listed (e.g. stopped): describe them directly; MISSING there is a lost write.
            var found = (await plane.DescribeTasksAsync(cluster, missing)).Select(t => Str(t, "taskArn")).ToHashSet(StringComparer.Ordinal);
            violations.AddRange(missing.Where(a => !found.Contains(a)).Select(a => $"acknowledged task lost: {a}"));
        }

        // Containers and tasks match one to one.
        var (_, ps) = await Docker.RunAsync("ps", "--no-trunc", "--format", "{{.ID}} {{.Label \"com.amazonaws.ecs.task-arn\"}}", "--filter", $"label=com.amazonaws.ecs.cluster={cluster}");
        var containers = ps.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal);
        foreach (var (id, taskArn) in containers)
        {
            if (!byArn.TryGetValue(taskArn, out var task) || Str(task, "lastStatus") != "RUNNING" || Str(task, "desiredStatus") != "RUNNING")
                violations.Add($"orphan container {id[..12]} of {(byArn.TryGetValue(taskArn, out var t) ? $"{Str(t, "lastStatus")}/{Str(t, "desiredStatus")}" : "no")} task {taskArn}");
        }
        foreach (var task in notStopped.Where(t => Str(t, "lastStatus") == "RUNNING"))
        {
            foreach (var container in task["containers"]!.AsArray())
            {
                var runtimeId = container!["runtimeId"]?.GetValue<string>();
                if (Str(container, "lastStatus") == "RUNNING" && (runtimeId is null || !containers.ContainsKey(runtimeId)))
                    violations.Add($"task {Str(task, "taskArn")} RUNNING without its container {Str(container, "name")}");
            }
        }
        foreach (var task in notStopped.Where(t => Str(t, "lastStatus") != "RUNNING"))
            violations.Add($"task {Str(task, "taskArn")} still {Str(task, "lastStatus")}/{Str(task, "desiredStatus")}");

        // Reservations equal the tasks that hold them.
        var instances = (await plane.Client.EcsOkAsync("ListContainerInstances", new() { ["cluster"] = cluster }))["containerInstanceArns"]!.AsArray()
            .Select(a => a!.GetValue<string>()).ToList();
        if (instances.Count > 0)
        {
            var described = await plane.Client.EcsOkAsync("DescribeContainerInstances", new() { ["cluster"] = cluster, ["containerInstances"] = new JsonArray([.. instances.Select(i => JsonValue.Create(i))]) });
            foreach (var instance in described["containerInstances"]!.AsArray())
            {
                var arn = Str(instance!, "containerInstanceArn");
                var reserved = Memory(instance!, "registeredResources") - Memory(instance!, "remainingResources");
                var held = notStopped.Where(t => t["containerInstanceArn"]?.GetValue<string>() == arn)
                    .Sum(t => int.Parse(t["memory"]?.GetValue<string>() ?? "0", CultureInfo.InvariantCulture));
                if (reserved != held)
                    violations.Add($"instance {arn[^8..]}: {reserved} MiB reserved, tasks on it hold {held} MiB"
                        + await UnreservedAsync(plane, cluster, arn, notStopped.Where(t => t["containerInstanceArn"]?.GetValue<string>() == arn)));
            }
        }

        // Nothing given up on.
        var queues = new QueueServiceClient(plane.StorageConnectionString);
        await foreach (var queue in queues.GetQueuesAsync())
        {
            if (!queue.Name.EndsWith("-poison", StringComparison.Ordinal)) continue;
            var peeked = await queues.GetQueueClient(queue.Name).PeekMessagesAsync(32);
            if (peeked.Value.Length > 0) violations.Add($"{peeked.Value.Length} message(s) in {queue.Name}");
        }
        return violations;
    }

    /// <summary>
    /// Waits until the invariants hold on two looks in a row, and returns how long that took; throws
    /// with the last violations when they do not hold within <paramref name="bound"/>.
    /// </summary>
    public static async Task<TimeSpan> ConvergeAsync(ControlPlaneFixture plane, string cluster, IReadOnlyCollection<string> acknowledgedTasks, TimeSpan bound)
    {
        var started = DateTime.UtcNow;
        TimeSpan? firstHeld = null;
        IReadOnlyList<string> last = [];
        while (DateTime.UtcNow - started < bound)
        {
            last = await ViolationsAsync(plane, cluster, acknowledgedTasks);
            if (last.Count == 0)
            {
                if (firstHeld is { } held) return held;
                firstHeld = DateTime.UtcNow - started;
            }
            else
            {
                firstHeld = null;
            }
            await Task.Delay(1000);
        }
        throw new TimeoutException($"Not converged within {bound.TotalSeconds:0} s:\n{string.Join('\n', last)}\n{Stories(plane, last)}\n{plane.WorkerLogTails()}");
    }

    /// <summary>What the control plane and the workers logged of each task a violation names: how it came to be there.</summary>
    private static string Stories(ControlPlaneFixture plane, IEnumerable<string> violations)
        => string.Join('\n', violations
            .SelectMany(v => System.Text.RegularExpressions.Regex.Matches(v, "task/[^/ ]+/([0-9a-f]{32})").Select(m => m.Groups[1].Value))
            .Distinct().Take(5)
            .Select(id => $"--- {id}, control plane:\n{plane.LogLinesMentioning(id, 40)}\n--- {id}, workers:\n{plane.WorkerLogLinesMentioning(id, 40)}"));

    /// <summary>For a failure message: which of the instance's live tasks its row holds no reservation for (read from storage: the API does not show reservations).</summary>
    private static async Task<string> UnreservedAsync(ControlPlaneFixture plane, string cluster, string instanceArn, IEnumerable<JsonNode> live)
    {
        var row = await new Azure.Data.Tables.TableClient(plane.StorageConnectionString, "ContainerInstances")
            .GetEntityIfExistsAsync<Azure.Data.Tables.TableEntity>(cluster, instanceArn[(instanceArn.LastIndexOf('/') + 1)..]);
        if (!row.HasValue) return " (its row is gone)";
        var reservations = string.Concat(row.Value!.Where(p => p.Key.StartsWith("Reservations", StringComparison.Ordinal)).Select(p => p.Value as string));
        var unreserved = live.Select(t => Str(t, "taskArn")).Where(a => !reservations.Contains(a[(a.LastIndexOf('/') + 1)..], StringComparison.Ordinal)).ToList();
        return unreserved.Count == 0 ? "" : $"; no reservation for {string.Join(", ", unreserved)}";
    }

    private static string Str(JsonNode node, string name) => node[name]?.GetValue<string>() ?? "";

    private static int Memory(JsonNode instance, string member)
        => instance[member]!.AsArray().First(r => Str(r!, "name") == "MEMORY")!["integerValue"]!.GetValue<int>();
}
