using System.Text.Json.Nodes;
using Docker.DotNet.Models;
using Serverless.Core.TaskDefinitions;
using Serverless.Worker.Docker;
using Serverless.Worker.Registration;

namespace Serverless.Worker.Tests.Docker;

/// <summary>
/// A task's <c>ephemeralStorage</c> as the containers' writable layer size, and which engines can take one;
/// no Docker needed (<see cref="EphemeralStorageDockerTests"/> runs it on an engine that sizes).
/// </summary>
public sealed class EphemeralStorageTests
{
    private static readonly TaskContext Context = new("default", "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef",
        "11111111111111111111111111111111", SubnetId: "subnet-1");

    private static TaskPlan Plan(string requestJson, string? overridesJson, bool sizes)
    {
        var request = JsonNode.Parse(requestJson)!.AsObject();
        var body = TaskDefinitionDefaults.Resolve(request, "arn:aws:iam::000000000000:user/test");
        var described = TaskDefinitionDefaults.Describe(body, "arn:aws:ecs:us-east-1:000000000000:task-definition/scratch:1", 1, "ACTIVE", DateTimeOffset.UnixEpoch, null, null);
        return TaskTranslation.Plan(described, Context, overridesJson is null ? null : JsonNode.Parse(overridesJson)!.AsObject(), "cafe01",
            PlanDefaults.Agent with { SizeWritableLayers = sizes });
    }

    private const string TwoContainers = """
        {"family": "scratch", "ephemeralStorage": {"sizeInGiB": 30}, "containerDefinitions": [
          {"name": "app", "image": "local/busybox:latest", "memory": 64},
          {"name": "side", "image": "local/busybox:latest", "memory": 64}]}
        """;

    [Fact]
    public void On_an_engine_that_sizes_every_container_may_use_the_tasks_whole_ephemeral_storage()
    {
        var plan = Plan(TwoContainers, null, sizes: true);
        Assert.Equal(2, plan.Containers.Count);
        Assert.All(plan.Containers, c => Assert.Equal(new Dictionary<string, string> { ["size"] = "30G" }, c.Parameters.HostConfig.StorageOpt));
    }

    [Fact]
    public void RunTasks_ephemeralStorage_override_wins_over_the_definitions()
    {
        var plan = Plan(TwoContainers, """{"ephemeralStorage": {"sizeInGiB": 50}}""", sizes: true);
        Assert.All(plan.Containers, c => Assert.Equal("50G", c.Parameters.HostConfig.StorageOpt["size"]));
    }

    [Fact]
    public void Nothing_is_sized_on_an_engine_that_cannot_or_for_a_task_without_ephemeral_storage()
    {
        // The engine would refuse the create: the task runs unsized, as before.
        Assert.All(Plan(TwoContainers, null, sizes: false).Containers, c => Assert.Null(c.Parameters.HostConfig.StorageOpt));
        Assert.All(Plan("""{"family": "plain", "containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 64}]}""", null, sizes: true).Containers,
            c => Assert.Null(c.Parameters.HostConfig.StorageOpt));
    }

    [Fact]
    public void An_awsvpc_tasks_containers_are_sized_and_its_pause_container_is_not()
    {
        var plan = Plan("""
            {"family": "scratch", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
             "ephemeralStorage": {"sizeInGiB": 21}, "containerDefinitions": [{"name": "app", "image": "local/busybox:latest"}]}
            """, null, sizes: true);
        Assert.Equal("21G", plan.Container("app")!.Parameters.HostConfig.StorageOpt["size"]);
        Assert.Null(plan.Container(TaskTranslation.PauseContainerName)!.Parameters.HostConfig.StorageOpt);
    }

    private static SystemInfoResponse Info(string driver, string? backing = null, string root = "/var/lib/docker") => new()
    {
        Driver = driver,
        DockerRootDir = root,
        DriverStatus = backing is null ? [] : [["Backing Filesystem", backing], ["Supports d_type", "true"]],
    };

    private const string XfsWithPquota = """
        22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
        40 22 259:1 / /var/lib/docker rw,relatime shared:20 - xfs /dev/nvme1n1 rw,attr2,inode64,logbufs=8,logbsize=32k,prjquota
        41 40 0:50 / /var/lib/docker/overlay2/abc/merged rw,relatime - overlay overlay rw,lowerdir=x
        """;

    private const string XfsWithoutQuota = """
        22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
        40 22 259:1 / /var/lib/docker rw,relatime shared:20 - xfs /dev/nvme1n1 rw,attr2,inode64,logbufs=8,logbsize=32k,noquota
        """;

    [Fact]
    public void Overlay2_sizes_only_over_xfs_mounted_with_project_quotas()
    {
        Assert.True(EngineStorage.Decide(Info("overlay2", "xfs"), XfsWithPquota).Sizes);
        Assert.False(EngineStorage.Decide(Info("overlay2", "xfs"), XfsWithoutQuota).Sizes);
        // This machine's engine: overlay2 on ext4 (Docker refuses a size there).
        var (sizes, why) = EngineStorage.Decide(Info("overlay2", "extfs"), XfsWithPquota);
        Assert.False(sizes);
        Assert.Contains("extfs", why);
        // xfs, but the worker does not see the engine's mounts (another host, or the worker in a container).
        Assert.False(EngineStorage.Decide(Info("overlay2", "xfs"), null).Sizes);
        Assert.False(EngineStorage.Decide(Info("overlay2", "xfs", root: "/srv/docker"), XfsWithoutQuota).Sizes);
    }

    [Fact]
    public void Btrfs_zfs_and_devicemapper_size_and_other_drivers_do_not()
    {
        Assert.True(EngineStorage.Decide(Info("btrfs"), null).Sizes);
        Assert.True(EngineStorage.Decide(Info("zfs"), null).Sizes);
        Assert.True(EngineStorage.Decide(Info("devicemapper"), null).Sizes);
        Assert.False(EngineStorage.Decide(Info("vfs"), XfsWithPquota).Sizes);
        Assert.False(EngineStorage.Decide(Info("fuse-overlayfs"), XfsWithPquota).Sizes);
    }

    [Fact]
    public void The_data_roots_mount_is_the_longest_mount_point_above_it()
    {
        Assert.Equal(("/var/lib/docker", "xfs"), EngineStorage.MountOf(XfsWithPquota, "/var/lib/docker") is { } m ? (m.MountPoint, m.FileSystem) : default);
        Assert.Equal("/", EngineStorage.MountOf(XfsWithPquota, "/var/lib/dockerish")!.Value.MountPoint);
        Assert.Equal("/srv/my data", EngineStorage.MountOf("50 22 8:1 / /srv/my\\040data rw - xfs /dev/sdb rw,prjquota", "/srv/my data/docker")!.Value.MountPoint);
        Assert.True(EngineStorage.HasProjectQuota(EngineStorage.MountOf(XfsWithPquota, "/var/lib/docker")!.Value.Options));
        Assert.False(EngineStorage.HasProjectQuota("rw,relatime,rw,attr2,pqnoenforce"));
    }

    [Fact]
    public void Only_a_worker_whose_engine_sizes_advertises_it()
    {
        Assert.Contains(InstanceAttributes.Build(new WorkerOptions(), "x86_64", "1.12", "1.41", sizesWritableLayers: true), a => a.Name == EngineStorage.Attribute);
        Assert.DoesNotContain(InstanceAttributes.Build(new WorkerOptions(), "x86_64", "1.12", "1.41"), a => a.Name == EngineStorage.Attribute);
    }
}
