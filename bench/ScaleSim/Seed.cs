using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Docker.DotNet.Models;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Services;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;
using Serverless.EndToEnd.Tests;
using Serverless.Worker.Docker;
using Serverless.Worker.Simulation;

namespace Serverless.ScaleSim;

/// <summary>
/// The seeded fill (<c>--seed</c>): the state a cluster that had launched its tasks through the API
/// would hold, written straight to storage through the product's own stores and records, and each
/// host's containers put on its engine, so that filling 50,000 tasks does not cost the ~22 storage
/// transactions per task of launching them.
/// <list type="number">
/// <item>Through the API: the services, with desiredCount 0, until each is steady.</item>
/// <item>The workers stop cleanly (each gives its instance up; its engine, the host, stays).</item>
/// <item>Written: each task's containers created and started on its host's engine through the Docker
/// interface, with the names and labels the worker's own translation gives them
/// (<see cref="TaskTranslation.Plan"/>); each task's row as a launch writes it (<see cref="TaskSizing"/>)
/// after its RUNNING report (<see cref="TaskStateApplier.Merge"/>), in entity-group batches of at most
/// 100 rows of one partition (<see cref="TaskStore.InsertManyAsync"/>); each instance's reservations
/// (<see cref="ContainerInstanceStore.UpdateAsync"/>, one write per instance).</item>
/// <item>Through the API: UpdateService to the services' desired counts, whose reconciles find their
/// tasks running and record the deployments' counts.</item>
/// <item>The workers start again, in waves, and adopt their containers as after any restart (<see cref="TaskAdoption"/>).</item>
/// </list>
/// Tasks are dealt to instances in turn (a service's tasks over as many instances as it has tasks,
/// like the API fill's spread placement); each instance gets the same number of tasks, give or take one.
/// </summary>
public sealed class Seed(IServiceProvider probe, SignedClient api, Workers workers, string cluster, int instances)
{
    /// <summary>One seeded task: where it runs and its containers' ids on that host.</summary>
    public sealed record SeededTask(string Id, string Arn, int Worker, string InstanceId, string? Service, IReadOnlyList<string> ContainerIds);

    public IReadOnlyList<SeededTask> Tasks { get; private set; } = [];

    /// <summary>
    /// Services of <paramref name="perService"/> tasks, and <paramref name="standalone"/> RunTask-like
    /// tasks, all running on their hosts and recorded so, the workers stopped (<see cref="RestartAsync"/> starts them).
    /// </summary>
    public async Task WriteAsync(IReadOnlyList<string> services, int perService, int standalone, string family, CancellationToken cancellationToken)
    {
        var spread = new JsonArray(new JsonObject { ["type"] = "spread", ["field"] = "instanceId" });
        await Parallel.ForEachAsync(services, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken }, async (name, ct) =>
            await Retry.CallAsync(() => api.EcsOkAsync("CreateService", new JsonObject
            {
                ["cluster"] = cluster, ["serviceName"] = name, ["taskDefinition"] = family, ["desiredCount"] = 0,
                ["placementStrategy"] = spread.DeepClone(),
            }, ct)));
        await WaitAsync("services created and steady at 0", async () =>
        {
            var steady = 0;
            foreach (var chunk in services.Chunk(10))
            {
                var described = await Retry.CallAsync(() => api.EcsOkAsync("DescribeServices", new JsonObject
                {
                    ["cluster"] = cluster, ["services"] = new JsonArray(chunk.Select(n => (JsonNode)n).ToArray()),
                }, cancellationToken));
                steady += described["services"]!.AsArray().Count(s => s!["deployments"]!.AsArray() is [{ } only]
                    && only["rolloutState"]?.GetValue<string>() == DeploymentRolloutState.Completed);
            }
            return (steady == services.Count, $"{steady} of {services.Count}");
        }, TimeSpan.FromMinutes(10));

        // A clean stop, as an operator's restart of the workers: the instances are given up, the hosts keep running.
        await workers.StopAsync(TimeSpan.FromSeconds(60), keepEngines: true);
        Console.WriteLine($"  {services.Count} services steady at 0; {instances} workers stopped");

        var taskStore = probe.GetRequiredService<TaskStore>();
        var instanceStore = probe.GetRequiredService<ContainerInstanceStore>();
        var serviceStore = probe.GetRequiredService<ServiceStore>();
        var arns = probe.GetRequiredService<Arns>();
        var definition = await probe.GetRequiredService<TaskDefinitionStore>().FindAsync(family, 1, cancellationToken)
                         ?? throw new InvalidOperationException($"Task definition {family}:1 not found");
        var rows = (await instanceStore.ListAsync(cluster, cancellationToken)).ToDictionary(i => i.Id);
        var hosts = Enumerable.Range(0, instances).Select(i => rows.TryGetValue(workers.InstanceId(i), out var row)
            ? row : throw new InvalidOperationException($"Instance {workers.InstanceId(i)} has no row")).ToList();
        var deployments = new Dictionary<string, string>();
        foreach (var name in services)
        {
            var service = await serviceStore.FindAsync(cluster, name, cancellationToken) ?? throw new InvalidOperationException($"Service {name} not found");
            deployments[name] = service.Primary?.Id ?? throw new InvalidOperationException($"Service {name} has no primary deployment");
        }

        // Who runs where: every service's tasks first, then the standalone ones, dealt to instances in turn.
        var plan = services.SelectMany(name => Enumerable.Range(0, perService).Select(_ => (string?)name))
            .Concat(Enumerable.Repeat<string?>(null, standalone))
            .Select((service, n) => (Service: service, Worker: n % instances))
            .ToList();
        var need = TaskSizing.Need(definition, null);
        var now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

        var seeded = new List<SeededTask>();
        var records = new List<TaskRecord>();
        var reservations = new Dictionary<int, List<Reservation>>();
        // Each host's containers as its worker would create and start them, all of a host's at once.
        var byWorker = plan.GroupBy(p => p.Worker).ToList();
        var started = 0;
        await Parallel.ForEachAsync(byWorker, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (group, ct) =>
        {
            var worker = group.Key;
            var host = hosts[worker];
            var options = workers.Options(worker);
            using var docker = new SimulatedDockerClient(workers.StoppedEngine(worker));
            var defaults = new PlanDefaults(TimeSpan.FromSeconds(options.ContainerStopTimeoutSeconds), TimeSpan.FromSeconds(options.ContainerStartTimeoutSeconds))
            {
                Permissions = TaskPermissions.From(options),
                PauseImage = options.PauseImage,
            };
            var made = await Task.WhenAll(group.Select(async p =>
            {
                var taskGroup = p.Service is { } service ? $"{TaskRecord.ServiceGroupPrefix}{service}" : $"family:{definition.Family}";
                var startedBy = p.Service is { } s ? deployments[s] : null;
                var id = TaskIds.New(taskGroup);
                var arn = arns.Task(cluster, id);
                var taskPlan = TaskTranslation.Plan(definition.TaskDefinition,
                    new TaskContext(cluster, arn, host.Id, startedBy, taskGroup), null, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10)), defaults);
                if (taskPlan.Refusal is not null) throw new InvalidOperationException($"The worker would refuse {arn}: {taskPlan.Refusal}");
                var containers = new List<(string Name, string Id)>();
                foreach (var container in taskPlan.Containers)
                {
                    var created = await docker.Containers.CreateContainerAsync(container.Parameters, ct);
                    await docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), ct);
                    containers.Add((container.Name, created.ID));
                }
                var startedAt = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                // The row as the launch inserts it, then as the worker's RUNNING report leaves it.
                var placed = new TaskRecord
                {
                    Cluster = cluster,
                    Id = id,
                    Group = taskGroup,
                    TaskDefinitionArn = definition.Arn,
                    Family = definition.Family,
                    ContainerInstanceId = host.Id,
                    WakeEndpoint = host.WakeEndpoint,
                    StartedBy = startedBy,
                    Cpu = need.Cpu,
                    Memory = need.Memory,
                    Containers = TaskSizing.Containers(definition, null),
                    LastStatus = EcsTaskStatus.Pending,
                    CreatedAt = now,
                };
                var report = new TaskStateChange
                {
                    Cluster = cluster,
                    TaskArn = arn,
                    ContainerInstanceArn = arns.ContainerInstance(cluster, host.Id),
                    LastStatus = EcsTaskStatus.Running,
                    PullStartedAt = now,
                    PullStoppedAt = now,
                    StartedAt = startedAt,
                    HealthStatus = TaskStatusRules.TaskHealth([]),
                    Containers = containers.Select(c => new ContainerStateChange { Name = c.Name, RuntimeId = c.Id, LastStatus = EcsTaskStatus.Running }).ToList(),
                    ObservedAt = startedAt,
                };
                var running = TaskStateApplier.Merge(placed, report, startedAt)! with { Version = placed.Version + 1 };
                return (Task: new SeededTask(id, arn, worker, host.Id, p.Service, containers.Select(c => c.Id).ToList()), Record: running,
                    Reservation: need.ReservationFor(id, taskGroup) with { ReservedAt = now });
            }));
            lock (records)
            {
                seeded.AddRange(made.Select(m => m.Task));
                records.AddRange(made.Select(m => m.Record));
                reservations[worker] = made.Select(m => m.Reservation).ToList();
                if (++started % 100 == 0) Console.WriteLine($"  {started} hosts given their containers");
            }
        });
        Console.WriteLine($"  {seeded.Count} containers running on {instances} hosts");

        // The rows: entity-group batches of at most 100 rows of one partition (a service's tasks are one partition, the standalone tasks another).
        var batches = records.GroupBy(r => r.PartitionKey).SelectMany(p => p.Chunk(Serverless.Core.Storage.TableQueries.MaxBatchOperations)).ToList();
        await Parallel.ForEachAsync(batches, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (batch, ct) => await taskStore.InsertManyAsync(batch, ct));
        Console.WriteLine($"  {records.Count} task rows written in {batches.Count} batches");
        await Parallel.ForEachAsync(reservations, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (held, ct) =>
            await instanceStore.UpdateAsync(cluster, hosts[held.Key].Id, current => current with { Reservations = [.. current.Reservations, .. held.Value] }, ct));
        Console.WriteLine($"  reservations written on {reservations.Count} instances");
        Tasks = seeded;

        await Parallel.ForEachAsync(services, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken }, async (name, ct) =>
            await Retry.CallAsync(() => api.EcsOkAsync("UpdateService", new JsonObject { ["cluster"] = cluster, ["service"] = name, ["desiredCount"] = perService }, ct)));
        Console.WriteLine($"  {services.Count} services updated to {perService} desired");
    }

    /// <summary>Starts the workers again, in waves (below), each adopting what was seeded on its host.</summary>
    public async Task RestartAsync(int serviceTasks, CancellationToken cancellationToken)
    {
        // Started again in waves, each worked off before the next: every adopted service task's report
        // makes a reconcile of its service (25,000 at 1,000 × 50,000), and Azurite's queue service slows with
        // every message its account holds (a receive or delete first scans them all for expired ones):
        // 2,500 adopted at once held it at a core with the control plane starved, and 3,600 reconciles and
        // 520 reports still queued after three minutes (100 × 5,000). On Azure a queue takes 2,000 messages/s.
        var serviceTasksPerWorker = Math.Max(1, serviceTasks / instances);
        var wave = Math.Clamp(WaveServiceTasks / serviceTasksPerWorker, 1, instances);
        var storage = probe.GetRequiredService<Serverless.Core.Storage.StorageClients>();
        var queues = new[] { await storage.QueueAsync(TaskMessages.TaskEventsQueue, cancellationToken), await storage.QueueAsync(Serverless.Core.Reconciliation.ReconcileQueue.QueueName, cancellationToken) };
        var perInstance = Tasks.GroupBy(t => t.InstanceId).ToDictionary(g => g.Key, g => g.Count());
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (var indexes in Enumerable.Range(0, instances).Chunk(wave))
        {
            await workers.StartAsync(indexes, cancellationToken);
            // Adopted: each worker runs its seeded tasks as its own (what its heartbeats report is checked at the end).
            await WaitAsync($"workers {indexes[0]}..{indexes[^1]} to adopt their tasks", () =>
            {
                var adopted = indexes.Count(i => workers.RunningTasks(i) == perInstance.GetValueOrDefault(workers.InstanceId(i)));
                return Task.FromResult((adopted == indexes.Length, $"{adopted} of {indexes.Length}"));
            }, TimeSpan.FromMinutes(10), pause: TimeSpan.FromSeconds(1));
            await DrainedAsync(queues, looks: 2, TimeSpan.FromMinutes(10), cancellationToken);
            Console.WriteLine($"  workers {indexes[0]}..{indexes[^1]} started again, adopted, their reports and reconciles worked off ({clock.Elapsed.TotalSeconds:F0} s)");
        }
    }

    /// <summary>Service tasks adopted per wave of restarted workers.</summary>
    private const int WaveServiceTasks = 1000;

    /// <summary>Until no message is visible on <paramref name="queues"/> at <paramref name="looks"/> looks in a row.</summary>
    private static async Task DrainedAsync(IReadOnlyList<Azure.Storage.Queues.QueueClient> queues, int looks, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var empty = 0;
        await WaitAsync("the adoption's reports and reconciles worked off", async () =>
        {
            var visible = 0;
            foreach (var queue in queues) visible += (await queue.PeekMessagesAsync(32, cancellationToken)).Value.Length;
            empty = visible == 0 ? empty + 1 : 0;
            return (empty >= looks, $"{visible} messages visible");
        }, timeout, pause: TimeSpan.FromSeconds(2));
    }

    /// <summary>
    /// Waits until the cluster is what was seeded, steady, and says so through the API; throws,
    /// naming what differs, when it is not within <paramref name="timeout"/>: every worker has
    /// reported (by heartbeat) its seeded tasks running and none pending, and its instance's remaining
    /// resources are its registered ones less its tasks'; every service runs its desired count with
    /// one COMPLETED deployment and nothing pending; the cluster counts every task running; every
    /// seeded container still runs on its host, and no other; a sample of the tasks described shows
    /// each RUNNING, desired RUNNING, on its instance, with its container's id.
    /// </summary>
    public async Task VerifyAsync(IReadOnlyList<string> services, int perService, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var perInstance = Tasks.GroupBy(t => t.InstanceId).ToDictionary(g => g.Key, g => g.Count());
        var definition = await probe.GetRequiredService<TaskDefinitionStore>().FindAsync("sim", 1, cancellationToken);
        var need = TaskSizing.Need(definition!, null);
        var problems = new List<string>();

        async Task<List<string>> InstancesAsync()
        {
            var found = new List<string>();
            var arns = new List<string>();
            string? token = null;
            do
            {
                var request = new JsonObject { ["cluster"] = cluster, ["maxResults"] = 100 };
                if (token is not null) request["nextToken"] = token;
                var page = await Retry.CallAsync(() => api.EcsOkAsync("ListContainerInstances", request, cancellationToken));
                arns.AddRange(page["containerInstanceArns"]!.AsArray().Select(a => a!.GetValue<string>()));
                token = page["nextToken"]?.GetValue<string>();
            } while (token is not null);
            if (arns.Count != instances) found.Add($"{arns.Count} container instances listed, not {instances}");
            foreach (var chunk in arns.Chunk(100))
            {
                var described = await Retry.CallAsync(() => api.EcsOkAsync("DescribeContainerInstances", new JsonObject
                {
                    ["cluster"] = cluster, ["containerInstances"] = new JsonArray(chunk.Select(a => (JsonNode)a).ToArray()),
                }, cancellationToken));
                foreach (var instance in described["containerInstances"]!.AsArray())
                {
                    var arn = instance!["containerInstanceArn"]!.GetValue<string>();
                    var id = arn[(arn.LastIndexOf('/') + 1)..];
                    var tasks = perInstance.GetValueOrDefault(id);
                    int Resource(string list, string name) => instance[list]!.AsArray().First(r => r!["name"]!.GetValue<string>() == name)!["integerValue"]!.GetValue<int>();
                    var running = instance["runningTasksCount"]!.GetValue<int>();
                    var pending = instance["pendingTasksCount"]!.GetValue<int>();
                    var cpuLeft = Resource("registeredResources", "CPU") - tasks * need.Cpu;
                    var memoryLeft = Resource("registeredResources", "MEMORY") - tasks * need.Memory;
                    if (instance["status"]!.GetValue<string>() != ContainerInstanceRecord.Active || instance["agentConnected"]?.GetValue<bool>() != true)
                        found.Add($"{id}: {instance["status"]}, agentConnected {instance["agentConnected"]}");
                    if (running != tasks || pending != 0) found.Add($"{id}: {running} running and {pending} pending, not {tasks} and 0");
                    if (Resource("remainingResources", "CPU") != cpuLeft || Resource("remainingResources", "MEMORY") != memoryLeft)
                        found.Add($"{id}: remaining CPU {Resource("remainingResources", "CPU")} and MEMORY {Resource("remainingResources", "MEMORY")}, not {cpuLeft} and {memoryLeft}");
                }
            }
            return found;
        }

        async Task<List<string>> ServicesAsync()
        {
            var found = new List<string>();
            foreach (var chunk in services.Chunk(10))
            {
                var described = await Retry.CallAsync(() => api.EcsOkAsync("DescribeServices", new JsonObject
                {
                    ["cluster"] = cluster, ["services"] = new JsonArray(chunk.Select(n => (JsonNode)n).ToArray()),
                }, cancellationToken));
                foreach (var service in described["services"]!.AsArray())
                {
                    var name = service!["serviceName"]!.GetValue<string>();
                    var (desired, running, pending) = (service["desiredCount"]!.GetValue<int>(), service["runningCount"]!.GetValue<int>(), service["pendingCount"]!.GetValue<int>());
                    var deployments = service["deployments"]!.AsArray();
                    if (desired != perService || running != perService || pending != 0)
                        found.Add($"{name}: desired {desired}, running {running}, pending {pending}, not {perService}, {perService}, 0");
                    if (deployments is not [{ } only] || only["rolloutState"]?.GetValue<string>() != DeploymentRolloutState.Completed || only["runningCount"]!.GetValue<int>() != perService)
                        found.Add($"{name}: deployments {deployments.ToJsonString()}");
                }
            }
            return found;
        }

        async Task<List<string>> ClusterAndHostsAsync()
        {
            var found = new List<string>();
            var described = await Retry.CallAsync(() => api.EcsOkAsync("DescribeClusters", new JsonObject { ["clusters"] = new JsonArray(cluster) }, cancellationToken));
            var c = described["clusters"]![0]!;
            if (c["runningTasksCount"]!.GetValue<int>() != Tasks.Count || c["pendingTasksCount"]!.GetValue<int>() != 0
                || c["registeredContainerInstancesCount"]!.GetValue<int>() != instances || c["activeServicesCount"]!.GetValue<int>() != services.Count)
                found.Add($"cluster: {c["runningTasksCount"]} running, {c["pendingTasksCount"]} pending, {c["registeredContainerInstancesCount"]} instances, {c["activeServicesCount"]} services; seeded {Tasks.Count}, {instances}, {services.Count}");
            var engines = workers.Engines();
            foreach (var host in Tasks.GroupBy(t => t.Worker))
            {
                if (!engines.TryGetValue(host.Key, out var engine)) { found.Add($"worker {host.Key} is not running"); continue; }
                var ids = engine.RunningIds().ToHashSet(StringComparer.Ordinal);
                var wanted = host.SelectMany(t => t.ContainerIds).ToHashSet(StringComparer.Ordinal);
                if (!ids.SetEquals(wanted))
                    found.Add($"worker {host.Key}: {wanted.Except(ids).Count()} seeded containers not running, {ids.Except(wanted).Count()} others running");
            }
            return found;
        }

        async Task<List<string>> SampleAsync()
        {
            var found = new List<string>();
            var sample = Tasks.OrderBy(_ => Random.Shared.Next()).Take(1000).ToList();
            foreach (var chunk in sample.Chunk(100))
            {
                var described = await Retry.CallAsync(() => api.EcsOkAsync("DescribeTasks", new JsonObject
                {
                    ["cluster"] = cluster, ["tasks"] = new JsonArray(chunk.Select(t => (JsonNode)t.Arn).ToArray()),
                }, cancellationToken));
                var byArn = described["tasks"]!.AsArray().ToDictionary(t => t!["taskArn"]!.GetValue<string>());
                foreach (var task in chunk)
                {
                    if (!byArn.TryGetValue(task.Arn, out var t)) { found.Add($"{task.Arn}: not described"); continue; }
                    var container = t!["containers"]!.AsArray()[0]!;
                    if (t["lastStatus"]!.GetValue<string>() != EcsTaskStatus.Running || t["desiredStatus"]!.GetValue<string>() != EcsTaskStatus.Running
                        || !t["containerInstanceArn"]!.GetValue<string>().EndsWith("/" + task.InstanceId, StringComparison.Ordinal)
                        || container["runtimeId"]?.GetValue<string>() != task.ContainerIds[0] || container["lastStatus"]!.GetValue<string>() != EcsTaskStatus.Running)
                        found.Add($"{task.Arn}: {t.ToJsonString()}");
                }
            }
            return found;
        }

        // The counts come with each worker's heartbeat after its adoption, and the reconciles its reports
        // cause follow: looked at until all hold, then once more, fresh, for the verdict.
        await WaitAsync("the seeded cluster steady", async () =>
        {
            problems = [.. await InstancesAsync(), .. await ServicesAsync(), .. await ClusterAndHostsAsync()];
            return (problems.Count == 0, problems.Count == 0 ? "steady" : $"{problems.Count} differences, first: {problems[0]}");
        }, timeout, onTimeout: () => string.Join("\n", problems.Take(30)));
        // The workers' reports of what they adopted, and the reconciles those cause, are worked off
        // before anything is measured: no message visible on task-events or reconcile at three looks in a row.
        var storage = probe.GetRequiredService<Serverless.Core.Storage.StorageClients>();
        await DrainedAsync([await storage.QueueAsync(TaskMessages.TaskEventsQueue, cancellationToken), await storage.QueueAsync(Serverless.Core.Reconciliation.ReconcileQueue.QueueName, cancellationToken)],
            looks: 3, timeout, cancellationToken);
        problems = [.. await SampleAsync(), .. await InstancesAsync(), .. await ServicesAsync(), .. await ClusterAndHostsAsync()];
        if (problems.Count > 0)
            throw new InvalidOperationException($"The seeded cluster is not steady ({problems.Count} differences):\n{string.Join("\n", problems.Take(30))}");
        Console.WriteLine($"  verified: {instances} instances each running its seeded tasks with matching reservations, {services.Count} services at {perService}/{perService} with one COMPLETED deployment, the cluster counting {Tasks.Count} running and 0 pending, every seeded container running, {Math.Min(1000, Tasks.Count)} tasks described RUNNING on their instances");
    }

    private static async Task WaitAsync(string what, Func<Task<(bool Done, string Progress)>> check, TimeSpan timeout, Func<string>? onTimeout = null, TimeSpan? pause = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var lastPrint = TimeSpan.Zero;
        while (true)
        {
            var (done, progress) = await check();
            if (done) return;
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"{what}: not after {timeout.TotalSeconds:F0} s ({progress}){(onTimeout is null ? "" : "\n" + onTimeout())}");
            if (clock.Elapsed - lastPrint > TimeSpan.FromSeconds(15))
            {
                Console.WriteLine($"  waiting for {what}: {progress} after {clock.Elapsed.TotalSeconds:F0} s");
                lastPrint = clock.Elapsed;
            }
            // A look at the cluster is ~70 API calls at 1,000 instances: not more often than every 10 s.
            await Task.Delay(pause ?? TimeSpan.FromSeconds(10));
        }
    }
}
