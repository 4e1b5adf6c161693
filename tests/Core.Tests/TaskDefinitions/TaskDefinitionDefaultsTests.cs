using System.Text.Json.Nodes;
using Serverless.Core.TaskDefinitions;
using static Serverless.Core.Tests.TaskDefinitions.TaskDefinitionRequests;

namespace Serverless.Core.Tests.TaskDefinitions;

public class TaskDefinitionDefaultsTests
{
    private const string Caller = "arn:aws:iam::000000000000:user/tester";

    private static JsonObject Resolve(JsonObject request) => TaskDefinitionDefaults.Resolve(request, Caller);

    private static string[] Names(JsonNode? attributes) => attributes!.AsArray().Select(a => a!["name"]!.GetValue<string>()).ToArray();

    [Theory]
    [InlineData("1024", 1024)]
    [InlineData("1 vCPU", 1024)]
    [InlineData("1 vcpu", 1024)]
    [InlineData("2vCPU", 2048)]
    [InlineData("0.25 vCPU", 256)]
    [InlineData(".5 vcpu", 512)]
    [InlineData(" 512 ", 512)]
    [InlineData("0.125 vCPU", 128)]
    [InlineData("192 vCPU", 196608)]
    public void Task_cpu_is_converted_to_cpu_units(string value, int units)
        => Assert.Equal(units, TaskDefinitionDefaults.ParseTaskCpu(value));

    [Theory]
    [InlineData("512", 512)]
    [InlineData("2 GB", 2048)]
    [InlineData("2GB", 2048)]
    [InlineData("1 gb", 1024)]
    [InlineData("0.5 GB", 512)]
    [InlineData("3 GiB", 3072)]
    [InlineData("300 MiB", 300)]
    public void Task_memory_is_converted_to_MiB(string value, int mib)
        => Assert.Equal(mib, TaskDefinitionDefaults.ParseTaskMemory(value));

    [Fact]
    public void An_efs_volume_without_a_root_directory_is_described_with_the_root()
    {
        var volume = TaskDefinitionDefaults.VolumeWithDefaults(JsonNode.Parse(
            """{"name":"data","efsVolumeConfiguration":{"fileSystemId":"fs-1","transitEncryption":"ENABLED"}}""")!.AsObject());

        Assert.Equal("""{"name":"data","efsVolumeConfiguration":{"fileSystemId":"fs-1","rootDirectory":"/","transitEncryption":"ENABLED"}}""",
            volume.ToJsonString());
    }

    [Fact]
    public void An_efs_volume_keeps_the_root_directory_it_was_given()
    {
        var volume = TaskDefinitionDefaults.VolumeWithDefaults(JsonNode.Parse(
            """{"name":"data","efsVolumeConfiguration":{"fileSystemId":"fs-1","rootDirectory":"/srv"}}""")!.AsObject());

        Assert.Equal("/srv", volume["efsVolumeConfiguration"]!["rootDirectory"]!.GetValue<string>());
    }

    [Fact]
    public void Registered_cpu_and_memory_are_described_as_integers_in_strings()
    {
        var body = Resolve(Minimal().With(r => { r["cpu"] = "1 vCPU"; r["memory"] = "2 GB"; }));
        Assert.Equal("1024", body["cpu"]!.GetValue<string>());
        Assert.Equal("2048", body["memory"]!.GetValue<string>());
    }

    [Fact]
    public void A_bare_container_gets_the_defaults_ECS_describes()
    {
        var container = Resolve(Minimal())["containerDefinitions"]![0]!;
        Assert.Equal(
            """{"name":"app","image":"local/busybox:latest","cpu":0,"memory":128,"portMappings":[],"essential":true,"environment":[],"mountPoints":[],"volumesFrom":[],"systemControls":[]}""",
            container.ToJsonString());
    }

    [Fact]
    public void Given_values_win_over_defaults()
    {
        var container = Resolve(Register("""
            {"family":"web","containerDefinitions":[
              {"name":"a","image":"i","memory":64,"cpu":10,"essential":false},
              {"name":"b","image":"i","memory":64,"environment":[{"name":"X","value":"1"}]}]}
            """))["containerDefinitions"]!;
        Assert.Equal(10, container[0]!["cpu"]!.GetValue<int>());
        Assert.False(container[0]!["essential"]!.GetValue<bool>());
        Assert.Equal("""[{"name":"X","value":"1"}]""", container[1]!["environment"]!.ToJsonString());
    }

    [Theory]
    [InlineData("bridge", """{"containerPort":80}""", """{"containerPort":80,"hostPort":0,"protocol":"tcp"}""")]
    [InlineData("bridge", """{"containerPort":80,"hostPort":8080}""", """{"containerPort":80,"hostPort":8080,"protocol":"tcp"}""")]
    [InlineData("awsvpc", """{"containerPort":80}""", """{"containerPort":80,"hostPort":80,"protocol":"tcp"}""")]
    [InlineData("host", """{"protocol":"udp","containerPort":53}""", """{"containerPort":53,"hostPort":53,"protocol":"udp"}""")]
    [InlineData("awsvpc", """{"name":"http","containerPort":80,"appProtocol":"http"}""", """{"containerPort":80,"hostPort":80,"protocol":"tcp","name":"http","appProtocol":"http"}""")]
    [InlineData("awsvpc", """{"containerPortRange":"9000-9010"}""", """{"protocol":"tcp","containerPortRange":"9000-9010"}""")]
    public void Port_mappings_get_tcp_and_the_host_port_the_network_mode_implies(string networkMode, string given, string described)
    {
        var request = Register($$"""{"family":"web","networkMode":"{{networkMode}}","containerDefinitions":[{"name":"a","image":"i","memory":64,"portMappings":[{{given}}]}]}""");
        Assert.Equal(described, Resolve(request)["containerDefinitions"]![0]!["portMappings"]![0]!.ToJsonString());
    }

    [Fact]
    public void A_health_check_gets_interval_timeout_and_retries_but_no_start_period()
    {
        var request = Register("""{"family":"web","containerDefinitions":[{"name":"a","image":"i","memory":64,"healthCheck":{"command":["CMD","true"]}}]}""");
        Assert.Equal("""{"command":["CMD","true"],"interval":30,"timeout":5,"retries":3}""",
            Resolve(request)["containerDefinitions"]![0]!["healthCheck"]!.ToJsonString());
    }

    [Fact]
    public void Task_level_defaults_are_bridge_no_volumes_and_no_placement_constraints()
    {
        var body = Resolve(Minimal());
        Assert.Equal("bridge", body["networkMode"]!.GetValue<string>());
        Assert.Empty(body["volumes"]!.AsArray());
        Assert.Empty(body["placementConstraints"]!.AsArray());
        Assert.Null(body["requiresCompatibilities"]);
        Assert.Null(body["cpu"]);
        Assert.Equal(Caller, body["registeredBy"]!.GetValue<string>());
    }

    [Fact]
    public void Empty_role_arns_are_dropped_as_ECS_does()
    {
        var body = Resolve(Minimal().With(r => r["taskRoleArn"] = ""));
        Assert.False(body.ContainsKey("taskRoleArn"));
    }

    [Fact]
    public void A_volume_without_a_source_is_a_host_bind_mount()
    {
        var body = Resolve(Minimal().With(r => r["volumes"] = JsonNode.Parse("""[{"name":"scratch"},{"name":"logs","host":{"sourcePath":"/var/log"}}]""")));
        Assert.Equal("""[{"name":"scratch","host":{}},{"name":"logs","host":{"sourcePath":"/var/log"}}]""", body["volumes"]!.ToJsonString());
    }

    [Theory]
    [InlineData(""" "networkMode":"bridge" """, "EXTERNAL,EC2")]
    [InlineData(""" "networkMode":"host" """, "EXTERNAL,EC2")]
    [InlineData(""" "networkMode":"none" """, "EXTERNAL,EC2")]
    [InlineData(""" "networkMode":"awsvpc" """, "EC2")]
    [InlineData(""" "networkMode":"awsvpc","cpu":"256","memory":"512" """, "EC2,FARGATE")]
    [InlineData(""" "networkMode":"awsvpc","cpu":"256","memory":"512","requiresCompatibilities":["FARGATE"] """, "EC2,FARGATE")]
    [InlineData(""" "networkMode":"awsvpc","cpu":"256","memory":"4096" """, "EC2")]
    [InlineData(""" "networkMode":"awsvpc","cpu":"256","memory":"512","ipcMode":"host" """, "EC2")]
    [InlineData(""" "networkMode":"awsvpc","requiresCompatibilities":["MANAGED_INSTANCES"] """, "EC2,MANAGED_INSTANCES")]
    public void Compatibilities_are_every_launch_type_the_definition_validates_against(string members, string expected)
    {
        var request = Register($$"""{"family":"web",{{members}},"containerDefinitions":[{"name":"a","image":"i","memory":64}]}""");
        Assert.Equal(expected, string.Join(",", Resolve(request)["compatibilities"]!.AsArray().Select(c => c!.GetValue<string>())));
    }

    [Fact]
    public void A_plain_definition_requires_no_attributes()
        => Assert.Empty(Resolve(Minimal())["requiresAttributes"]!.AsArray());

    [Fact]
    public void Required_attributes_follow_the_features_used()
    {
        var names = Names(Resolve(Register(Realistic))["requiresAttributes"]);
        Assert.Equal(
        [
            "com.amazonaws.ecs.capability.docker-remote-api.1.18",
            "com.amazonaws.ecs.capability.docker-remote-api.1.21",
            "com.amazonaws.ecs.capability.docker-remote-api.1.24",
            "com.amazonaws.ecs.capability.docker-remote-api.1.25",
            "com.amazonaws.ecs.capability.logging-driver.json-file",
            "com.amazonaws.ecs.capability.task-iam-role",
            // This system's own: the realistic definition bind-mounts a host path and adds a capability.
            "ecs-worker.host-path-mounts",
            "ecs-worker.linux-parameters.capabilities-add",
            "ecs.capability.container-health-check",
            "ecs.capability.container-ordering",
            "ecs.capability.secrets.asm.environment-variables",
            "ecs.capability.secrets.ssm.environment-variables",
        ], names);
    }

    [Fact]
    public void Awsvpc_awslogs_and_ECR_images_with_an_execution_role_require_their_capabilities()
    {
        var request = Register("""
            {"family":"web","networkMode":"awsvpc","executionRoleArn":"arn:aws:iam::000000000000:role/exec","containerDefinitions":[
              {"name":"a","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1","memory":64,
               "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g","awslogs-region":"us-east-1"}}}]}
            """);
        Assert.Equal(
        [
            "com.amazonaws.ecs.capability.docker-remote-api.1.18",
            "com.amazonaws.ecs.capability.docker-remote-api.1.19",
            "com.amazonaws.ecs.capability.ecr-auth",
            "com.amazonaws.ecs.capability.logging-driver.awslogs",
            "ecs.capability.execution-role-awslogs",
            "ecs.capability.execution-role-ecr-pull",
            "ecs.capability.task-eni",
        ], Names(Resolve(request)["requiresAttributes"]));
    }

    [Fact]
    public void What_reaches_into_the_host_requires_the_attributes_a_worker_advertises_only_when_allowed()
    {
        var request = Register("""
            {"family":"web","networkMode":"host","pidMode":"host","ipcMode":"host",
             "volumes":[{"name":"logs","host":{"sourcePath":"/var/log"}},
                        {"name":"etc","dockerVolumeConfiguration":{"scope":"task","driver":"local","driverOpts":{"type":"none","o":"bind","device":"/etc"}}}],
             "containerDefinitions":[{"name":"a","image":"i","memory":64,"privileged":true,
               "linuxParameters":{"capabilities":{"add":["SYS_ADMIN"]},"devices":[{"hostPath":"/dev/sda"}]}}]}
            """);
        Assert.Equal(
        [
            "com.amazonaws.ecs.capability.docker-remote-api.1.25",
            "com.amazonaws.ecs.capability.privileged-container",
            "ecs-worker.docker-volume-driver-options",
            "ecs-worker.host-path-mounts",
            "ecs-worker.ipc-mode.host",
            "ecs-worker.linux-parameters.capabilities-add",
            "ecs-worker.linux-parameters.devices",
            "ecs-worker.network-mode.host",
            "ecs-worker.pid-mode.host",
        ], Names(Resolve(request)["requiresAttributes"]));
    }

    [Fact]
    public void Security_options_require_ECS_selinux_and_apparmor_capabilities_and_no_new_privileges_nothing()
    {
        var request = Register("""
            {"family":"web","containerDefinitions":[
              {"name":"a","image":"i","memory":64,"dockerSecurityOptions":["no-new-privileges","label:type:svirt_apache_t","apparmor:unconfined"]},
              {"name":"b","image":"i","memory":64,"dockerSecurityOptions":["no-new-privileges"]}]}
            """);
        Assert.Equal(
        [
            "com.amazonaws.ecs.capability.apparmor",
            "com.amazonaws.ecs.capability.selinux",
            "ecs-worker.docker-security-options",
        ], Names(Resolve(request)["requiresAttributes"]));
    }

    [Fact]
    public void Scratch_volumes_plain_local_docker_volumes_and_dropped_capabilities_require_nothing_of_the_host()
    {
        var request = Register("""
            {"family":"web","volumes":[{"name":"scratch"},{"name":"data","dockerVolumeConfiguration":{"scope":"task","driver":"local"}}],
             "containerDefinitions":[{"name":"a","image":"i","memory":64,"linuxParameters":{"capabilities":{"drop":["MKNOD"]}}}]}
            """);
        Assert.Equal(["com.amazonaws.ecs.capability.docker-remote-api.1.25"], Names(Resolve(request)["requiresAttributes"]));
    }

    [Fact]
    public void The_described_form_adds_identity_status_and_timestamps_in_model_order()
    {
        var body = Resolve(Minimal());
        var registeredAt = DateTimeOffset.FromUnixTimeMilliseconds(1764043200123);
        var described = TaskDefinitionDefaults.Describe(body, "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3", 3, "INACTIVE",
            registeredAt, registeredAt.AddSeconds(1), null);

        Assert.Equal(
            ["taskDefinitionArn", "containerDefinitions", "family", "networkMode", "revision", "volumes", "status", "requiresAttributes",
             "placementConstraints", "compatibilities", "registeredAt", "deregisteredAt", "registeredBy"],
            described.Select(p => p.Key));
        Assert.Equal("1764043200.123", described["registeredAt"]!.ToJsonString());
        Assert.Equal(3, described["revision"]!.GetValue<int>());
    }

    [Fact]
    public void Container_members_come_out_in_model_order_whatever_order_they_came_in()
    {
        var request = Register("""{"family":"web","containerDefinitions":[{"memory":64,"command":["x"],"image":"i","name":"a"}]}""");
        Assert.Equal(["name", "image", "cpu", "memory", "portMappings", "essential", "command", "environment", "mountPoints", "volumesFrom", "systemControls"],
            Resolve(request)["containerDefinitions"]![0]!.AsObject().Select(p => p.Key));
    }
}
