using System.Globalization;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;
using Serverless.Core.Tasks;

namespace Serverless.Worker.Docker;

/// <summary>Taking over the containers found after a restart.</summary>
public sealed partial class TaskRunner
{
    /// <summary>
    /// Takes over a task whose containers exist from before a restart: its plan is made again from
    /// the task row (definition and overrides) with the Docker names it already has, each
    /// container's state is read from Docker, and the task carries on from there — RUNNING is
    /// reported again, an essential container that exited meanwhile stops it, containers not
    /// started yet are started.
    /// </summary>
    internal async Task AdoptAsync(TaskRecord row, string taskArn, IReadOnlyList<ContainerListResponse> containers, CancellationToken cancellationToken)
    {
        var suffix = containers.Select(c => c.Names?.FirstOrDefault()).OfType<string>().Select(n => n[(n.LastIndexOf('-') + 1)..]).FirstOrDefault();
        var plan = await PlanAsync(row.Cluster, taskArn, row.TaskDefinitionArn, row.Overrides, row.StartedBy, row.Group, row.Attachment?.SubnetId, suffix, cancellationToken);
        if (plan.Refusal is not null)
        {
            await AdoptToStopAsync(row.Cluster, taskArn, containers, null, plan.Refusal, report: true, cancellationToken);
            return;
        }

        var task = new ManagedTask(row.Cluster, taskArn, plan)
        {
            PullStartedAt = row.PullStartedAt,
            PullStoppedAt = row.PullStoppedAt,
            StartedAt = row.StartedAt,
        };
        if (Admit(task, out _) is not { } loop) return;
        _logger.LogInformation("Adopting {TaskArn} with {Containers} existing container(s)", taskArn, containers.Count);

        // Every container is matched first, then read: a decision taken on the first one read
        // (an essential container that exited) already knows all of them.
        var claim = new TaskInput.Claim(containers);
        await loop.SendAsync(claim);
        foreach (var (name, entry) in claim.Adopted)
        {
            // A restarted worker goes on shipping from after the last line stored.
            _logs.Follow(entry.ID, entry.Labels, task.Container(name)!.Plan.Parameters.Tty == true, _shutdown.Token);
        }
        foreach (var (container, _) in claim.Adopted) await loop.RefreshAsync(container, cancellationToken);
        foreach (var stray in claim.Strays)
        {
            _logger.LogWarning("Removing container {DockerId}, which {TaskArn} has no place for", stray, taskArn);
            await _docker.Containers.RemoveContainerAsync(stray, new ContainerRemoveParameters { Force = true }, cancellationToken);
        }

        await loop.SendAsync(new TaskInput.Resume());
    }

    /// <summary>
    /// Stops and removes containers of a task that must not run (its row is gone, or says STOPPED),
    /// reporting STOPPED unless <paramref name="report"/> is false (the row already shows it).
    /// </summary>
    internal async Task AdoptToStopAsync(
        string cluster, string taskArn, IReadOnlyList<ContainerListResponse> containers, string? stopCode, string? reason, bool report,
        CancellationToken cancellationToken)
    {
        var first = containers[0].Labels;
        var family = DockerLabels.Get(first, DockerLabels.TaskDefinitionFamily) ?? "unknown";
        var revision = int.TryParse(DockerLabels.Get(first, DockerLabels.TaskDefinitionVersion), NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : 0;
        var definition = await _definitions.FindAsync(_arns.TaskDefinition(family, revision), cancellationToken);
        var stopTimeouts = (definition?.Containers ?? []).ToDictionary(
            c => c.Name,
            c => c.StopTimeout is { } seconds ? TimeSpan.FromSeconds(seconds) : Defaults().StopTimeout);

        // A plan just good enough to stop: one entry per container found, named as Docker has it.
        var plans = containers
            .Select(c => (Entry: c, Name: DockerLabels.Get(c.Labels, DockerLabels.ContainerName) ?? c.ID))
            .GroupBy(c => c.Name)
            .SelectMany(g => g.Select((c, i) => (c.Entry, Name: i == 0 ? g.Key : $"{g.Key}#{i}")))
            .Select(c => (c.Entry, Plan: new ContainerPlan(
                c.Name, c.Entry.Names?.FirstOrDefault()?.TrimStart('/') ?? c.Entry.ID, c.Entry.Image, Essential: true,
                stopTimeouts.GetValueOrDefault(c.Name, c.Name == TaskTranslation.PauseContainerName ? TimeSpan.Zero : Defaults().StopTimeout), Defaults().StartTimeout, HasHealthCheck: false,
                [], [], [], new CreateContainerParameters())))
            .ToList();
        // An awsvpc task's pause container is on its subnet's network: the network is let go with the task.
        var network = containers.SelectMany(c => c.NetworkSettings?.Networks?.Keys ?? []).FirstOrDefault(TaskNetworkPlan.IsSubnetNetwork) is { } name
            ? new TaskNetworkPlan(name, "", new Dictionary<string, string>())
            : null;
        var task = new ManagedTask(cluster, taskArn, new TaskPlan(family, revision, "bridge", [.. plans.Select(p => p.Plan)], [], Network: network));
        if (Admit(task, out _) is not { } loop) return;
        _logger.LogInformation("Stopping {Count} container(s) of {TaskArn} found after a restart: {Reason}", containers.Count, taskArn, reason);
        foreach (var (entry, plan) in plans) await loop.SendAsync(new TaskInput.Created(plan.Name, entry.ID));
        foreach (var (entry, _) in plans) _logs.Follow(entry.ID, entry.Labels, tty: false, _shutdown.Token);
        // Not awaited: adoption goes on with the next task while this one's containers stop (each
        // is read from Docker first, so one that exited meanwhile keeps its exit code).
        _ = loop.SendAsync(new TaskInput.Stop(stopCode, reason, commanded: false, report));
    }

    /// <summary>Starts a task the control plane placed here and this worker never started (its Start was lost).</summary>
    internal Task StartPlacedAsync(TaskRecord row, CancellationToken cancellationToken)
        => StartAsync(new TaskCommand
        {
            Type = TaskCommand.Start,
            Cluster = row.Cluster,
            TaskArn = _arns.Task(row.Cluster, row.Id),
            TaskDefinitionArn = row.TaskDefinitionArn,
            Overrides = row.Overrides,
            StartedBy = row.StartedBy,
            Group = row.Group,
            SubnetId = row.Attachment?.SubnetId,
        }, redelivered: false, cancellationToken);
}
