using Serverless.Core.Reconciliation;
using Serverless.Core.Services;
using Serverless.Core.Tasks;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>Task scale-in protection as a rollout input: protected tasks are neither scaled in nor replaced until protection ends.</summary>
public sealed class TaskProtectionRolloutTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private const string V1 = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1";
    private const string V2 = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2";
    private static int _next;

    private static Deployment Deployment(string id, string status, string taskDefinition, string rollout) => new()
    {
        Id = id, Status = status, TaskDefinitionArn = taskDefinition, RolloutState = rollout, CreatedAt = Now.AddMinutes(-10),
    };

    private static ServiceRecord Service(int desired, params Deployment[] deployments) => new()
    {
        Cluster = "c", Name = "web", DesiredCount = desired, TaskDefinitionArn = deployments[0].TaskDefinitionArn, Deployments = deployments,
    };

    private static TaskRecord Task(string deployment, int ageSeconds, DateTimeOffset? protectedUntil = null) => new()
    {
        Cluster = "c",
        Id = TaskIds.New("service:web")[..24] + Interlocked.Increment(ref _next).ToString("x8"),
        Group = "service:web",
        TaskDefinitionArn = V1,
        Family = "web",
        ContainerInstanceId = "i1",
        StartedBy = deployment,
        LastStatus = EcsTaskStatus.Running,
        CreatedAt = Now.AddSeconds(-ageSeconds),
        StartedAt = Now.AddSeconds(-ageSeconds + 1),
        ProtectedUntil = protectedUntil,
    };

    private static RolloutStep Step(ServiceRecord service, IEnumerable<TaskRecord> tasks, DateTimeOffset? now = null)
        => Rollout.NextStep(new ServiceView { Service = service, Tasks = tasks.ToList(), Instances = [], Now = now ?? Now });

    [Fact]
    public void Scaling_in_skips_protected_tasks_and_stops_only_as_many_as_are_unprotected()
    {
        var service = Service(1, Deployment("d1", DeploymentStatus.Primary, V1, DeploymentRolloutState.Completed));
        // The newest task would go first; it is protected, so the next newest unprotected one goes.
        var newest = Task("d1", 10, Now.AddMinutes(30));
        var middle = Task("d1", 20);
        var oldest = Task("d1", 30, Now.AddMinutes(5));
        var step = Step(service, [newest, middle, oldest]);
        Assert.Equal([middle.Id], step.Stop.Select(s => s.TaskId));
        // Looked at again when the first protection ends.
        Assert.Equal(TimeSpan.FromMinutes(5), step.CheckAgainIn);

        // Once protection has expired the surplus goes.
        var later = Step(service, [newest, oldest], Now.AddMinutes(31));
        Assert.Single(later.Stop);
    }

    [Fact]
    public void A_deployment_does_not_replace_a_protected_task_until_protection_ends()
    {
        var service = Service(2,
            Deployment("d2", DeploymentStatus.Primary, V2, DeploymentRolloutState.InProgress),
            Deployment("d1", DeploymentStatus.Active, V1, DeploymentRolloutState.Completed));
        var guarded = Task("d1", 60, Now.AddMinutes(10));
        var free = Task("d1", 50);
        var step = Step(service, [guarded, free, Task("d2", 5), Task("d2", 5)]);
        Assert.Equal([free.Id], step.Stop.Select(s => s.TaskId));
        Assert.Equal(TimeSpan.FromMinutes(10), step.CheckAgainIn);

        var expired = Step(service, [guarded, Task("d2", 5), Task("d2", 5)], Now.AddMinutes(10));
        Assert.Equal([guarded.Id], expired.Stop.Select(s => s.TaskId));
    }
}
