using System.Text.Json.Nodes;
using Serverless.Core.TaskDefinitions;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Tests.Docker;

/// <summary>What a worker refuses to run unless its settings allow it; no Docker needed.</summary>
public sealed class TaskPermissionsTests
{
    private static readonly TaskContext Context = new("default", "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef", "11111111111111111111111111111111");

    private static TaskPlan Plan(string requestJson, TaskPermissions permissions)
    {
        var request = JsonNode.Parse(requestJson)!.AsObject();
        request["family"] ??= "web";
        var body = TaskDefinitionDefaults.Resolve(request, "arn:aws:iam::000000000000:user/test");
        var described = TaskDefinitionDefaults.Describe(body, "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3", 3, "ACTIVE", DateTimeOffset.UnixEpoch, null, null);
        return TaskTranslation.Plan(described, Context, null, "cafe01", PlanDefaults.Agent with { Permissions = permissions });
    }

    private static string Task(string containerJson = "", string taskJson = "")
        => $$"""{{{taskJson}} "containerDefinitions": [{"name": "app", "image": "i", "memory": 64 {{containerJson}}}]}""";

    public static TheoryData<string, string, TaskPermissions> Features => new()
    {
        { Task(""", "privileged": true"""), "privileged containers are disabled on this worker (Worker__AllowPrivileged=false)", new(Privileged: true) },
        { Task(taskJson: """ "networkMode": "host", """), "the host network mode is disabled on this worker (Worker__AllowHostNetwork=false)", new(HostNetwork: true) },
        { Task(taskJson: """ "pidMode": "host", """), "pidMode host is disabled on this worker (Worker__AllowHostPidMode=false)", new(HostPidMode: true) },
        { Task(taskJson: """ "ipcMode": "host", """), "ipcMode host is disabled on this worker (Worker__AllowHostIpcMode=false)", new(HostIpcMode: true) },
        {
            Task(""", "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}"""),
            "added Linux capabilities (linuxParameters.capabilities.add) are disabled on this worker (Worker__AllowAddedCapabilities=false)",
            new(AddedCapabilities: true)
        },
        {
            Task(""", "linuxParameters": {"devices": [{"hostPath": "/dev/sda"}]}"""),
            "host devices (linuxParameters.devices) are disabled on this worker (Worker__AllowDevices=false)",
            new(Devices: true)
        },
        {
            Task(""", "mountPoints": [{"sourceVolume": "root", "containerPath": "/host"}]""", """ "volumes": [{"name": "root", "host": {"sourcePath": "/"}}], """),
            "volume root: host path / is not allowed on this worker (Worker__AllowedHostPaths=)",
            new(HostPaths: ["/"])
        },
        {
            Task(taskJson: """ "volumes": [{"name": "etc", "dockerVolumeConfiguration": {"driver": "local", "driverOpts": {"type": "none", "o": "bind", "device": "/etc"}}}], """),
            "volume etc: Docker volume drivers other than local, and driver options, are disabled on this worker (Worker__AllowVolumeDriverOptions=false)",
            new(VolumeDriverOptions: true)
        },
        {
            Task(taskJson: """ "volumes": [{"name": "nfs", "dockerVolumeConfiguration": {"driver": "rexray/ebs"}}], """),
            "volume nfs: Docker volume drivers other than local, and driver options, are disabled on this worker (Worker__AllowVolumeDriverOptions=false)",
            new(VolumeDriverOptions: true)
        },
        {
            Task(""", "dockerSecurityOptions": ["no-new-privileges", "seccomp=unconfined"]"""),
            "Docker security options other than no-new-privileges are disabled on this worker (Worker__AllowSecurityOptions=false)",
            new(SecurityOptions: true)
        },
        {
            Task(""", "dockerSecurityOptions": ["apparmor:unconfined"]"""),
            "Docker security options other than no-new-privileges are disabled on this worker (Worker__AllowSecurityOptions=false)",
            new(SecurityOptions: true)
        },
    };

    [Theory]
    [MemberData(nameof(Features))]
    public void A_default_worker_refuses_the_feature_naming_the_setting(string definition, string reason, TaskPermissions allowing)
    {
        _ = allowing;
        Assert.EndsWith(reason, Plan(definition, TaskPermissions.None).Refusal);
    }

    [Theory]
    [MemberData(nameof(Features))]
    public void A_worker_whose_setting_allows_the_feature_runs_it(string definition, string reason, TaskPermissions allowing)
    {
        _ = reason;
        Assert.Null(Plan(definition, allowing).Refusal);
    }

    [Fact]
    public void A_refused_privileged_container_is_still_translated_so_its_report_names_it()
    {
        var plan = Plan(Task(""", "privileged": true"""), TaskPermissions.None);
        Assert.Equal("CannotCreateContainerError: privileged containers are disabled on this worker (Worker__AllowPrivileged=false)", plan.Refusal);
        Assert.Equal("app", Assert.Single(plan.Containers).Name);
    }

    [Fact]
    public void Plain_tasks_local_volumes_scratch_volumes_dropped_capabilities_and_no_new_privileges_need_no_setting()
    {
        var plan = Plan(Task(
            """, "dockerSecurityOptions": ["no-new-privileges"], "linuxParameters": {"capabilities": {"drop": ["MKNOD"]}, "initProcessEnabled": true}, "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/s"}]""",
            """ "volumes": [{"name": "scratch", "host": {}}, {"name": "data", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}}], """), TaskPermissions.None);
        Assert.Null(plan.Refusal);
    }

    [Theory]
    [InlineData("/srv/data", true)]
    [InlineData("/srv/data/", true)]
    [InlineData("/srv/data/app/logs", true)]
    [InlineData("/srv/database", false)]
    [InlineData("/srv", false)]
    [InlineData("/srv/data/../../etc", false)]
    [InlineData("/srv/data/./../data2", false)]
    [InlineData("srv/data", false)]
    [InlineData("/var/log", true)]
    public void Bind_mounts_must_lie_in_an_allowed_host_path_after_normalising(string sourcePath, bool allowed)
    {
        var permissions = new TaskPermissions(HostPaths: ["/srv/data/", "/var/log"]);
        var plan = Plan(Task(
            """, "mountPoints": [{"sourceVolume": "v", "containerPath": "/v"}]""",
            $$$""" "volumes": [{"name": "v", "host": {"sourcePath": "{{{sourcePath}}}"}}], """), permissions);
        if (allowed) Assert.Null(plan.Refusal);
        else Assert.Equal($"CannotCreateContainerError: volume v: host path {sourcePath} is not allowed on this worker (Worker__AllowedHostPaths=/srv/data;/var/log)", plan.Refusal);
    }

    [Fact]
    public void The_permissions_come_from_the_worker_options()
    {
        var permissions = TaskPermissions.From(new WorkerOptions
        {
            AllowPrivileged = true, AllowHostNetwork = true, AllowHostPidMode = true, AllowHostIpcMode = true, AllowedHostPaths = " /data ; /logs/ ;",
            AllowAddedCapabilities = true, AllowDevices = true, AllowVolumeDriverOptions = true, AllowSecurityOptions = true,
        });
        Assert.Equal(["/data", "/logs"], permissions.AllowedHostPaths);
        Assert.Equal(TaskPermissions.All with { HostPaths = null }, permissions with { HostPaths = null, ResolveLinks = null });
        Assert.Equal(TaskPermissions.None, TaskPermissions.From(new WorkerOptions()) with { HostPaths = null, ResolveLinks = null });
        Assert.NotNull(permissions.ResolveLinks);
        Assert.Empty(TaskPermissions.From(new WorkerOptions()).AllowedHostPaths);
    }

    [Fact]
    public void A_link_inside_an_allowed_directory_does_not_lead_a_bind_mount_out_of_it()
    {
        var root = Directory.CreateTempSubdirectory("host-paths-").FullName;
        try
        {
            var allowed = Directory.CreateDirectory(Path.Combine(root, "allowed")).FullName;
            var secret = Directory.CreateDirectory(Path.Combine(root, "secret")).FullName;
            Directory.CreateDirectory(Path.Combine(allowed, "real"));
            File.CreateSymbolicLink(Path.Combine(allowed, "escape"), secret);
            File.CreateSymbolicLink(Path.Combine(allowed, "inside"), "real");
            var permissions = TaskPermissions.From(new WorkerOptions { AllowedHostPaths = allowed });

            Assert.False(permissions.MayMount(Path.Combine(allowed, "escape")));
            Assert.False(permissions.MayMount(Path.Combine(allowed, "escape", "deeper")));
            Assert.True(permissions.MayMount(Path.Combine(allowed, "inside")));
            Assert.True(permissions.MayMount(Path.Combine(allowed, "real", "not-yet-created")));
            // Judged as written, the link would have passed.
            Assert.True((permissions with { ResolveLinks = null }).MayMount(Path.Combine(allowed, "escape")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void An_allowed_directory_that_is_itself_a_link_allows_where_it_leads()
    {
        var root = Directory.CreateTempSubdirectory("host-paths-").FullName;
        try
        {
            var data = Directory.CreateDirectory(Path.Combine(root, "data")).FullName;
            var link = Path.Combine(root, "current");
            File.CreateSymbolicLink(link, data);
            var permissions = TaskPermissions.From(new WorkerOptions { AllowedHostPaths = link });

            Assert.True(permissions.MayMount(Path.Combine(link, "logs")));
            Assert.Equal(Path.Combine(data, "logs"), HostPathResolver.Resolve(Path.Combine(link, "logs")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
