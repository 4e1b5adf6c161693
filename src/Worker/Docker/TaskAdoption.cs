using Docker.DotNet;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Tasks;
using Serverless.Worker.Registration;

namespace Serverless.Worker.Docker;

/// <summary>
/// What a starting worker does before it takes commands (the agent's state restore): it matches
/// the containers Docker has for this instance with the control plane's task rows, and the rows
/// with the containers, so no container is left without a task and no task is lost.
/// <list type="bullet">
/// <item>Containers of a task whose row is gone, or whose desired status is STOPPED: stopped,
/// removed, and the task reported STOPPED (unless its row already says so).</item>
/// <item>Containers of a task that should run: adopted — watched again and their state reported
/// (an essential container that exited while the worker was down stops the task, with its exit code).</item>
/// <item>A task placed here with no containers: reported STOPPED if it should stop, or if it had
/// been RUNNING (its containers vanished while the worker was down); started if it never was.</item>
/// </list>
/// </summary>
public sealed class TaskAdoption(TaskRunner runner, TaskStore tasks, WorkerIdentity identity, Arns arns, ILogger<TaskAdoption> logger)
{
    public const string TaskNoLongerExists = "The task no longer exists in the control plane";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var containers = await runner.ListContainersFoundAtStartAsync(cancellationToken);
        // A task's pause container that was a spare carries no task label: it goes with the task
        // whose containers' names end with the same suffix (last, so the first container is the task's own).
        var spares = containers.Where(c => DockerLabels.Get(c.Labels, TaskRunner.SpareLabel) is not null).ToList();
        var byTask = containers
            .Where(c => c.Labels?.ContainsKey(DockerLabels.TaskArn) == true)
            .GroupBy(c => c.Labels[DockerLabels.TaskArn], StringComparer.Ordinal)
            .Select(g => g.Concat(Suffix(g) is { } suffix ? spares.Where(s => TaskRunner.SpareOf(s, suffix)) : []).GroupBy(_ => g.Key).Single())
            .ToList();
        logger.LogInformation("Found {Containers} container(s) of {Tasks} task(s) from before this start", containers.Count, byTask.Count);

        foreach (var group in byTask)
        {
            var taskArn = group.Key;
            var found = group.ToList();
            var cluster = DockerLabels.Get(found[0].Labels, DockerLabels.Cluster) ?? identity.Cluster;
            try
            {
                var row = await tasks.FindAsync(cluster, TaskRunner.TaskIdOf(taskArn), cancellationToken);
                if (row is null)
                    await runner.AdoptToStopAsync(cluster, taskArn, found, null, TaskNoLongerExists, report: true, cancellationToken);
                else if (row.IsStopped || row.ContainerInstanceId != identity.InstanceId)
                    await runner.AdoptToStopAsync(cluster, taskArn, found, null, row.StoppedReason, report: false, cancellationToken);
                else if (row.DesiredStatus == EcsTaskStatus.Stopped)
                    await runner.AdoptToStopAsync(cluster, taskArn, found, null, row.StoppedReason, report: true, cancellationToken);
                else
                    await runner.AdoptAsync(row, taskArn, found, cancellationToken);
            }
            catch (DockerApiException e)
            {
                logger.LogError(e, "Could not adopt the containers of {TaskArn}", taskArn);
            }
        }

        // Spares of the worker's earlier run that no adopted task took (its networks can go then).
        await runner.RemoveSparesAsync(null, keepReady: true, cancellationToken);
        // A network whose task has no container here and is not being taken over (a crash between
        // creating the network and its pause container, or a task gone while the worker was down).
        await runner.RemoveNetworksAsync(null, cancellationToken);

        var placed = await PlacedHereAsync(cancellationToken);
        var withContainers = byTask.Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var row in placed)
        {
            var taskArn = arns.Task(row.Cluster, row.Id);
            if (withContainers.Contains(taskArn) || runner.TaskArns.Contains(taskArn) || runner.HasFinished(taskArn)) continue;
            var names = row.Containers.Select(c => c.Name);
            if (row.DesiredStatus == EcsTaskStatus.Stopped)
            {
                await runner.ReportStoppedAsync(row.Cluster, taskArn, null, row.StoppedReason, names, null, cancellationToken);
            }
            else if (EcsTaskStatus.Rank(row.LastStatus) >= EcsTaskStatus.Rank(EcsTaskStatus.Running))
            {
                logger.LogWarning("{TaskArn} was {LastStatus} but its containers are gone", taskArn, row.LastStatus);
                await runner.ReportStoppedAsync(row.Cluster, taskArn, TaskRunner.EssentialContainerExited, TaskRunner.StoppedWhileWorkerWasDown,
                    names, TaskRunner.ContainerVanished, cancellationToken);
            }
            else
            {
                logger.LogInformation("{TaskArn} was placed here and never started; starting it", taskArn);
                _ = runner.StartPlacedAsync(row, cancellationToken).ContinueWith(
                    t => logger.LogError(t.Exception, "Starting {TaskArn} failed", taskArn),
                    CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
        }
    }

    /// <summary>The random suffix of a task's Docker names (<see cref="TaskTranslation.ContainerName"/>).</summary>
    private static string? Suffix(IEnumerable<global::Docker.DotNet.Models.ContainerListResponse> containers)
        => containers.Select(c => c.Names?.FirstOrDefault()).OfType<string>().Select(n => n[(n.LastIndexOf('-') + 1)..]).FirstOrDefault();

    /// <summary>
    /// The tasks placed on this instance that have not stopped: <see cref="TaskStore.ListForInstanceAsync"/>'s
    /// query, read a page at a time (that method asks for int.MaxValue rows in one page, which overflows
    /// the page size it sends; until that is fixed, the pages are walked here).
    /// </summary>
    private async Task<IReadOnlyList<TaskRecord>> PlacedHereAsync(CancellationToken cancellationToken)
    {
        var filter = new TaskFilter(ContainerInstanceId: identity.InstanceId, NotStopped: true);
        var placed = new List<TaskRecord>();
        string? after = null;
        while (true)
        {
            var (page, more) = await tasks.ListAsync(identity.Cluster, filter, 1000, after, cancellationToken);
            placed.AddRange(page);
            if (!more || page.Count == 0) return placed;
            after = TaskStore.PageKey(page[^1]);
        }
    }
}
