using Serverless.Core.Tasks;

namespace Serverless.Core.Tests.Tasks;

public class TaskStateMergeTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static TaskRecord Task(string lastStatus = EcsTaskStatus.Provisioning) => new()
    {
        Cluster = "c",
        Id = TaskIds.New("family:web"),
        Group = "family:web",
        TaskDefinitionArn = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        Family = "web",
        ContainerInstanceId = "0123456789abcdef0123456789abcdef",
        LastStatus = lastStatus,
        Containers = [new TaskContainer { Name = "app", Id = "c1", Image = "local/busybox" }],
        CreatedAt = T0,
    };

    private static TaskStateChange Report(string status, DateTimeOffset observed, int? exitCode = null, string? stopCode = null, string? health = null) => new()
    {
        Cluster = "c",
        TaskArn = "arn",
        ContainerInstanceArn = "arn",
        LastStatus = status,
        StartedAt = status == EcsTaskStatus.Running ? observed : null,
        StopCode = stopCode,
        StoppedReason = stopCode is null ? null : "Essential container in task exited",
        HealthStatus = health,
        ObservedAt = observed,
        Containers = [new ContainerStateChange
        {
            Name = "app",
            RuntimeId = "docker-id",
            LastStatus = status,
            ExitCode = exitCode,
            NetworkBindings = status == EcsTaskStatus.Running ? [new NetworkBinding("0.0.0.0", 8080, 32768, "tcp")] : [],
        }],
    };

    [Fact]
    public void Running_moves_a_provisioning_task_forward_with_its_container_details()
    {
        var merged = TaskStateApplier.Merge(Task(), Report(EcsTaskStatus.Running, T0.AddSeconds(1)), T0.AddSeconds(2))!;
        Assert.Equal(EcsTaskStatus.Running, merged.LastStatus);
        Assert.Equal(T0.AddSeconds(1), merged.StartedAt);
        var container = Assert.Single(merged.Containers);
        Assert.Equal(("docker-id", EcsTaskStatus.Running, 32768), (container.RuntimeId, container.LastStatus, container.NetworkBindings[0].HostPort));
    }

    [Fact]
    public void A_first_PENDING_report_on_a_task_placed_PENDING_is_recorded_as_the_workers_acknowledgement()
    {
        var placed = Task(EcsTaskStatus.Pending) with { Containers = [new TaskContainer { Name = "app", Id = "c1", Image = "local/busybox" }] };
        var bare = new TaskStateChange { Cluster = "c", TaskArn = "arn", ContainerInstanceArn = "arn", LastStatus = EcsTaskStatus.Pending, ObservedAt = T0.AddSeconds(1) };

        var acknowledged = TaskStateApplier.Merge(placed, bare, T0.AddSeconds(2))!;

        Assert.Equal((EcsTaskStatus.Pending, T0.AddSeconds(1)), (acknowledged.LastStatus, acknowledged.ObservedAt));
        Assert.True(TaskDeadlines.IsAcknowledged(acknowledged));
        Assert.Null(TaskStateApplier.Merge(acknowledged, bare with { ObservedAt = T0.AddSeconds(3) }, T0.AddSeconds(4)));
    }

    [Fact]
    public void A_running_report_after_stopped_changes_nothing()
    {
        var stopped = TaskStateApplier.Merge(Task(EcsTaskStatus.Running), Report(EcsTaskStatus.Stopped, T0.AddSeconds(5), exitCode: 1, stopCode: "EssentialContainerExited"), T0.AddSeconds(6))!;
        Assert.Null(TaskStateApplier.Merge(stopped, Report(EcsTaskStatus.Running, T0.AddSeconds(1)), T0.AddSeconds(7)));
    }

    [Fact]
    public void A_duplicated_report_changes_nothing()
    {
        var report = Report(EcsTaskStatus.Running, T0.AddSeconds(1));
        var once = TaskStateApplier.Merge(Task(), report, T0.AddSeconds(2))!;
        Assert.Null(TaskStateApplier.Merge(once, report, T0.AddSeconds(3)));
    }

    [Fact]
    public void Stopped_sets_desired_status_times_and_the_workers_reason()
    {
        var merged = TaskStateApplier.Merge(Task(EcsTaskStatus.Running), Report(EcsTaskStatus.Stopped, T0.AddSeconds(5), exitCode: 3, stopCode: "EssentialContainerExited"), T0.AddSeconds(6))!;
        Assert.Equal((EcsTaskStatus.Stopped, EcsTaskStatus.Stopped), (merged.LastStatus, merged.DesiredStatus));
        Assert.Equal(("EssentialContainerExited", "Essential container in task exited"), (merged.StopCode, merged.StoppedReason));
        Assert.Equal(T0.AddSeconds(6), merged.StoppedAt);
        Assert.Equal(3, merged.Containers[0].ExitCode);
        Assert.Equal(EcsTaskStatus.Stopped, merged.Containers[0].LastStatus);
    }

    [Fact]
    public void A_user_stop_keeps_its_own_stop_code_and_reason()
    {
        var stopping = Task(EcsTaskStatus.Running) with { DesiredStatus = EcsTaskStatus.Stopped, StopCode = "UserInitiated", StoppedReason = "Scaling down", StoppingAt = T0 };
        var merged = TaskStateApplier.Merge(stopping, Report(EcsTaskStatus.Stopped, T0.AddSeconds(5), exitCode: 143, stopCode: "EssentialContainerExited"), T0.AddSeconds(6))!;
        Assert.Equal(("UserInitiated", "Scaling down", T0), (merged.StopCode, merged.StoppedReason, merged.StoppingAt));
    }

    [Fact]
    public void Health_follows_the_newest_observation_only()
    {
        var healthy = TaskStateApplier.Merge(Task(EcsTaskStatus.Running), Report(EcsTaskStatus.Running, T0.AddSeconds(10), health: "HEALTHY"), T0.AddSeconds(11))!;
        Assert.Equal("HEALTHY", healthy.HealthStatus);
        Assert.Null(TaskStateApplier.Merge(healthy, Report(EcsTaskStatus.Running, T0.AddSeconds(5), health: "UNHEALTHY"), T0.AddSeconds(12)));
        Assert.Equal("UNHEALTHY", TaskStateApplier.Merge(healthy, Report(EcsTaskStatus.Running, T0.AddSeconds(20), health: "UNHEALTHY"), T0.AddSeconds(21))!.HealthStatus);
    }

    [Fact]
    public void Task_ids_name_their_group_partition()
    {
        var a = TaskIds.New("service:web");
        var b = TaskIds.New("service:web");
        Assert.NotEqual(a, b);
        Assert.True(TaskIds.IsValid(a));
        Assert.Equal(TaskIds.PartitionKey("c", a), TaskIds.GroupPartitionKey("c", "service:web"));
        Assert.NotEqual(TaskIds.GroupPartitionKey("c", "service:api"), TaskIds.GroupPartitionKey("c", "service:web"));
    }
}
