using System.Text.Json.Nodes;
using Serverless.Core.Secrets;
using Serverless.Core.TaskDefinitions;
using Serverless.Worker.Docker;

namespace Serverless.Worker.Tests.Docker;

/// <summary>The task definition → Docker mapping, as the ECS agent does it; no Docker needed.</summary>
public sealed class TaskTranslationTests
{
    private const string TaskArn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef";
    private const long MiB = 1024 * 1024;

    private static readonly TaskContext Context = new("default", TaskArn, "11111111111111111111111111111111", "ci", "family:web");

    /// <summary>A definition as the control plane stores and describes it (ECS defaults filled in).</summary>
    private static JsonObject Described(string requestJson)
    {
        var request = JsonNode.Parse(requestJson)!.AsObject();
        request["family"] ??= "web";
        var body = TaskDefinitionDefaults.Resolve(request, "arn:aws:iam::000000000000:user/test");
        return TaskDefinitionDefaults.Describe(body, "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3", 3, "ACTIVE", DateTimeOffset.UnixEpoch, null, null);
    }

    private static TaskPlan Plan(string requestJson, string? overridesJson = null, PlanDefaults? defaults = null)
        => TaskTranslation.Plan(Described(requestJson), Context, overridesJson is null ? null : JsonNode.Parse(overridesJson)!.AsObject(), "cafe01", defaults ?? PlanDefaults.Agent);

    private static ContainerPlan Single(string containerJson, string? overridesJson = null, string networkMode = "bridge")
        => Plan($$"""{"networkMode": "{{networkMode}}", "containerDefinitions": [{{containerJson}}]}""", overridesJson).Containers.Single();

    [Fact]
    public void Containers_get_the_agents_docker_name()
    {
        var plan = Plan("""{"containerDefinitions": [{"name": "app", "image": "local/busybox:latest", "memory": 64}]}""");
        Assert.Equal("ecs-web-3-app-cafe01", plan.Containers[0].DockerName);
        Assert.Equal("ecs-web-3-app-cafe01", plan.Containers[0].Parameters.Name);
        Assert.Equal("local/busybox:latest", plan.Containers[0].Parameters.Image);
        Assert.Equal(("web", 3), (plan.Family, plan.Revision));
    }

    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 2)]
    [InlineData(2, 2)]
    [InlineData(256, 256)]
    [InlineData(1024, 1024)]
    public void Cpu_units_become_cpu_shares_with_the_agents_minimum_of_two(int cpu, long shares)
    {
        var container = Single($$"""{"name": "app", "image": "i", "cpu": {{cpu}}, "memory": 64}""");
        Assert.Equal(shares, container.Parameters.HostConfig.CPUShares);
    }

    [Fact]
    public void Memory_is_the_hard_limit_and_memory_reservation_the_soft_one_in_bytes()
    {
        var container = Single("""{"name": "app", "image": "i", "memory": 128, "memoryReservation": 64}""");
        Assert.Equal(128 * MiB, container.Parameters.HostConfig.Memory);
        Assert.Equal(64 * MiB, container.Parameters.HostConfig.MemoryReservation);
    }

    [Fact]
    public void Only_a_reservation_leaves_no_hard_limit()
    {
        var container = Single("""{"name": "app", "image": "i", "memoryReservation": 64}""");
        Assert.Equal(0, container.Parameters.HostConfig.Memory);
        Assert.Equal(64 * MiB, container.Parameters.HostConfig.MemoryReservation);
    }

    [Fact]
    public void Container_overrides_replace_cpu_memory_and_reservation()
    {
        var container = Single(
            """{"name": "app", "image": "i", "cpu": 128, "memory": 128, "memoryReservation": 64}""",
            """{"containerOverrides": [{"name": "app", "cpu": 512, "memory": 256, "memoryReservation": 200}]}""");
        Assert.Equal(512, container.Parameters.HostConfig.CPUShares);
        Assert.Equal(256 * MiB, container.Parameters.HostConfig.Memory);
        Assert.Equal(200 * MiB, container.Parameters.HostConfig.MemoryReservation);
    }

    [Fact]
    public void Environment_overrides_replace_by_name_and_add_new_names_after_the_definitions()
    {
        var container = Single(
            """{"name": "app", "image": "i", "memory": 64, "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}""",
            """{"containerOverrides": [{"name": "app", "environment": [{"name": "C", "value": "3"}, {"name": "A", "value": "one"}]}]}""");
        Assert.Equal(["A=one", "B=2", "C=3"], container.Parameters.Env);
    }

    [Fact]
    public void Overrides_of_another_container_change_nothing()
    {
        var container = Single(
            """{"name": "app", "image": "i", "memory": 64, "command": ["sleep", "1"], "environment": [{"name": "A", "value": "1"}]}""",
            """{"containerOverrides": [{"name": "other", "command": ["true"], "environment": [{"name": "A", "value": "2"}]}]}""");
        Assert.Equal(["sleep", "1"], container.Parameters.Cmd);
        Assert.Equal(["A=1"], container.Parameters.Env);
    }

    [Fact]
    public void Command_override_replaces_the_command_and_keeps_the_entry_point()
    {
        var container = Single(
            """{"name": "app", "image": "i", "memory": 64, "entryPoint": ["sh", "-c"], "command": ["echo hi"]}""",
            """{"containerOverrides": [{"name": "app", "command": ["echo bye"]}]}""");
        Assert.Equal(["sh", "-c"], container.Parameters.Entrypoint);
        Assert.Equal(["echo bye"], container.Parameters.Cmd);
    }

    [Fact]
    public void No_command_or_entry_point_leaves_the_images_own()
    {
        var container = Single("""{"name": "app", "image": "i", "memory": 64}""");
        Assert.Null(container.Parameters.Cmd);
        Assert.Null(container.Parameters.Entrypoint);
    }

    [Fact]
    public void User_working_directory_and_host_name_pass_through()
    {
        var container = Single("""{"name": "app", "image": "i", "memory": 64, "user": "1000:1000", "workingDirectory": "/srv", "hostname": "web1"}""");
        Assert.Equal("1000:1000", container.Parameters.User);
        Assert.Equal("/srv", container.Parameters.WorkingDir);
        Assert.Equal("web1", container.Parameters.Hostname);
    }

    [Fact]
    public void Bridge_mode_publishes_each_port_and_lets_docker_pick_for_host_port_zero()
    {
        var container = Single("""
            {"name": "app", "image": "i", "memory": 64, "portMappings": [
              {"containerPort": 80},
              {"containerPort": 443, "hostPort": 8443},
              {"containerPort": 53, "protocol": "udp"}]}
            """);
        var host = container.Parameters.HostConfig;
        Assert.Equal("bridge", host.NetworkMode);
        Assert.Equal(["80/tcp", "443/tcp", "53/udp"], container.Parameters.ExposedPorts.Keys);
        Assert.Equal("", host.PortBindings["80/tcp"].Single().HostPort);
        Assert.Equal("8443", host.PortBindings["443/tcp"].Single().HostPort);
        Assert.Equal("", host.PortBindings["53/udp"].Single().HostPort);
        Assert.Equal([new PortMappingPlan(80, 0, "tcp"), new PortMappingPlan(443, 8443, "tcp"), new PortMappingPlan(53, 0, "udp")], container.PortMappings);
    }

    [Fact]
    public void Host_mode_uses_the_hosts_ports_without_bindings()
    {
        var container = Single("""{"name": "app", "image": "i", "memory": 64, "portMappings": [{"containerPort": 8080}]}""", networkMode: "host");
        Assert.Equal("host", container.Parameters.HostConfig.NetworkMode);
        Assert.Null(container.Parameters.HostConfig.PortBindings);
        Assert.Equal([new PortMappingPlan(8080, 8080, "tcp")], container.PortMappings);
    }

    [Fact]
    public void None_mode_has_no_ports()
    {
        var container = Single("""{"name": "app", "image": "i", "memory": 64, "portMappings": [{"containerPort": 8080}]}""", networkMode: "none");
        Assert.Equal("none", container.Parameters.HostConfig.NetworkMode);
        Assert.Null(container.Parameters.ExposedPorts);
        Assert.Null(container.Parameters.HostConfig.PortBindings);
    }

    [Fact]
    public void A_container_port_range_maps_each_port_to_an_ephemeral_host_port()
    {
        var container = Single("""{"name": "app", "image": "i", "memory": 64, "portMappings": [{"containerPortRange": "9000-9002"}]}""");
        Assert.Equal(["9000/tcp", "9001/tcp", "9002/tcp"], container.Parameters.ExposedPorts.Keys);
        Assert.All(container.Parameters.HostConfig.PortBindings.Values, b => Assert.Equal("", b.Single().HostPort));
    }

    [Fact]
    public void Every_container_carries_the_agents_labels_and_its_instance()
    {
        var container = Single("""{"name": "app", "image": "i", "memory": 64, "dockerLabels": {"team": "blue", "com.amazonaws.ecs.cluster": "spoofed"}}""");
        var labels = container.Parameters.Labels;
        Assert.Equal("default", labels["com.amazonaws.ecs.cluster"]);
        Assert.Equal(TaskArn, labels["com.amazonaws.ecs.task-arn"]);
        Assert.Equal("app", labels["com.amazonaws.ecs.container-name"]);
        Assert.Equal("web", labels["com.amazonaws.ecs.task-definition-family"]);
        Assert.Equal("3", labels["com.amazonaws.ecs.task-definition-version"]);
        Assert.Equal(Context.InstanceId, labels["ecs-worker.instance-id"]);
        Assert.Equal("ci", labels["ecs-worker.started-by"]);
        Assert.Equal("family:web", labels["ecs-worker.group"]);
        Assert.Equal("blue", labels["team"]);
    }

    [Fact]
    public void A_health_check_becomes_dockers_with_seconds_as_durations()
    {
        var container = Single("""
            {"name": "app", "image": "i", "memory": 64,
             "healthCheck": {"command": ["CMD-SHELL", "wget -q localhost || exit 1"], "interval": 10, "timeout": 2, "retries": 4, "startPeriod": 15}}
            """);
        var check = container.Parameters.Healthcheck;
        Assert.Equal(["CMD-SHELL", "wget -q localhost || exit 1"], check.Test);
        Assert.Equal(TimeSpan.FromSeconds(10), check.Interval);
        Assert.Equal(TimeSpan.FromSeconds(2), check.Timeout);
        Assert.Equal(4, check.Retries);
        Assert.Equal(15_000_000_000L, check.StartPeriod);
        Assert.True(container.HasHealthCheck);
    }

    [Fact]
    public void A_health_check_without_timings_gets_ecs_defaults()
    {
        var check = Single("""{"name": "app", "image": "i", "memory": 64, "healthCheck": {"command": ["CMD", "true"]}}""").Parameters.Healthcheck;
        Assert.Equal(["CMD", "true"], check.Test);
        Assert.Equal(TimeSpan.FromSeconds(30), check.Interval);
        Assert.Equal(TimeSpan.FromSeconds(5), check.Timeout);
        Assert.Equal(3, check.Retries);
        Assert.Equal(0, check.StartPeriod);
    }

    [Fact]
    public void No_health_check_means_the_images_own()
    {
        var container = Single("""{"name": "app", "image": "i", "memory": 64}""");
        Assert.Null(container.Parameters.Healthcheck);
        Assert.False(container.HasHealthCheck);
    }

    [Fact]
    public void A_host_path_volume_is_a_bind_mount_read_only_when_asked()
    {
        var plan = Plan("""
            {"volumes": [{"name": "data", "host": {"sourcePath": "/srv/data"}}],
             "containerDefinitions": [{"name": "app", "image": "i", "memory": 64, "mountPoints": [
               {"sourceVolume": "data", "containerPath": "/data"},
               {"sourceVolume": "data", "containerPath": "/ro", "readOnly": true}]}]}
            """);
        Assert.Equal(["/srv/data:/data", "/srv/data:/ro:ro"], plan.Containers[0].Parameters.HostConfig.Binds);
        Assert.Empty(plan.Volumes);
    }

    [Fact]
    public void A_volume_without_a_source_is_a_task_scoped_docker_volume_shared_by_its_mount_points()
    {
        var plan = Plan("""
            {"volumes": [{"name": "scratch"}],
             "containerDefinitions": [
               {"name": "a", "image": "i", "memory": 64, "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/s"}]},
               {"name": "b", "image": "i", "memory": 64, "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/t", "readOnly": true}]}]}
            """);
        var volume = Assert.Single(plan.Volumes);
        Assert.Equal("ecs-web-3-scratch-cafe01", volume.DockerName);
        Assert.True(volume.TaskScoped);
        Assert.Equal("local", volume.Driver);
        Assert.Equal(TaskArn, volume.Labels["com.amazonaws.ecs.task-arn"]);
        Assert.Equal(Context.InstanceId, volume.Labels["ecs-worker.instance-id"]);
        Assert.Equal(["ecs-web-3-scratch-cafe01:/s"], plan.Containers[0].Parameters.HostConfig.Binds);
        Assert.Equal(["ecs-web-3-scratch-cafe01:/t:ro"], plan.Containers[1].Parameters.HostConfig.Binds);
    }

    [Fact]
    public void Docker_volume_configuration_is_per_task_by_default_and_kept_by_name_when_shared()
    {
        var plan = Plan("""
            {"volumes": [
               {"name": "cache", "dockerVolumeConfiguration": {"driver": "local", "driverOpts": {"type": "tmpfs", "device": "tmpfs"}, "labels": {"k": "v"}}},
               {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true}},
               {"name": "external", "dockerVolumeConfiguration": {"scope": "shared"}}],
             "containerDefinitions": [{"name": "app", "image": "i", "memory": 64, "mountPoints": [
               {"sourceVolume": "cache", "containerPath": "/c"}, {"sourceVolume": "shared", "containerPath": "/s"}]}]}
            """);
        var cache = plan.Volumes.Single(v => v.Name == "cache");
        Assert.Equal(("ecs-web-3-cache-cafe01", true, true), (cache.DockerName, cache.TaskScoped, cache.Autoprovision));
        Assert.Equal("tmpfs", cache.DriverOpts["type"]);
        Assert.Equal("v", cache.Labels["k"]);
        var shared = plan.Volumes.Single(v => v.Name == "shared");
        Assert.Equal(("shared", false, true), (shared.DockerName, shared.TaskScoped, shared.Autoprovision));
        Assert.False(shared.Labels.ContainsKey("com.amazonaws.ecs.task-arn"));
        Assert.False(plan.Volumes.Single(v => v.Name == "external").Autoprovision);
        Assert.Equal(["ecs-web-3-cache-cafe01:/c", "shared:/s"], plan.Containers[0].Parameters.HostConfig.Binds);
    }

    [Fact]
    public void Volumes_from_names_the_source_containers_docker_name_and_creates_it_first()
    {
        var plan = Plan("""
            {"containerDefinitions": [
               {"name": "app", "image": "i", "memory": 64, "volumesFrom": [{"sourceContainer": "data", "readOnly": true}]},
               {"name": "data", "image": "i", "memory": 64, "essential": false}]}
            """);
        var app = plan.Container("app")!;
        Assert.Equal(["ecs-web-3-data-cafe01:ro"], app.Parameters.HostConfig.VolumesFrom);
        Assert.Equal(["data"], app.CreateAfter);
        Assert.Equal(["data", "app"], TaskStatusRules.CreateOrder(plan.Containers).Select(c => c.Name));
    }

    [Fact]
    public void Links_use_docker_names_and_wait_for_the_target_to_start()
    {
        var plan = Plan("""
            {"containerDefinitions": [
               {"name": "app", "image": "i", "memory": 64, "links": ["db:database", "cache"]},
               {"name": "db", "image": "i", "memory": 64},
               {"name": "cache", "image": "i", "memory": 64}]}
            """);
        var app = plan.Container("app")!;
        Assert.Equal(["ecs-web-3-db-cafe01:database", "ecs-web-3-cache-cafe01:cache"], app.Parameters.HostConfig.Links);
        Assert.Equal([new ContainerDependency("db", "START"), new ContainerDependency("cache", "START")], app.DependsOn);
    }

    [Fact]
    public void Depends_on_is_carried_with_its_conditions()
    {
        var plan = Plan("""
            {"containerDefinitions": [
               {"name": "init", "image": "i", "memory": 64, "essential": false},
               {"name": "app", "image": "i", "memory": 64, "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]}]}
            """);
        Assert.Equal([new ContainerDependency("init", "SUCCESS")], plan.Container("app")!.DependsOn);
        Assert.False(plan.Container("init")!.Essential);
        Assert.True(plan.Container("app")!.Essential);
    }

    [Fact]
    public void Stop_and_start_timeouts_default_to_the_agents_and_follow_the_definition()
    {
        var plan = Plan("""
            {"containerDefinitions": [
               {"name": "a", "image": "i", "memory": 64},
               {"name": "b", "image": "i", "memory": 64, "stopTimeout": 5, "startTimeout": 60}]}
            """);
        Assert.Equal(TimeSpan.FromSeconds(30), plan.Container("a")!.StopTimeout);
        Assert.Equal(TimeSpan.FromMinutes(3), plan.Container("a")!.StartTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), plan.Container("a")!.Parameters.StopTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), plan.Container("b")!.StopTimeout);
        Assert.Equal(TimeSpan.FromSeconds(60), plan.Container("b")!.StartTimeout);
    }

    [Fact]
    public void Ulimits_logging_and_linux_parameters_map_to_the_host_config()
    {
        var host = Single("""
            {"name": "app", "image": "i", "memory": 64, "privileged": true, "readonlyRootFilesystem": true,
             "dnsServers": ["1.1.1.1"], "dnsSearchDomains": ["corp"], "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.5"}],
             "dockerSecurityOptions": ["no-new-privileges"],
             "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
             "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
             "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
             "linuxParameters": {"initProcessEnabled": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                                 "sharedMemorySize": 64, "tmpfs": [{"containerPath": "/run", "size": 16, "mountOptions": ["noexec"]}]}}
            """).Parameters.HostConfig;
        Assert.True(host.Privileged);
        Assert.True(host.ReadonlyRootfs);
        Assert.Equal(["1.1.1.1"], host.DNS);
        Assert.Equal(["corp"], host.DNSSearch);
        Assert.Equal(["db:10.0.0.5"], host.ExtraHosts);
        Assert.Equal(["no-new-privileges"], host.SecurityOpt);
        var ulimit = Assert.Single(host.Ulimits);
        Assert.Equal(("nofile", 1024L, 4096L), (ulimit.Name, ulimit.Soft, ulimit.Hard));
        Assert.Equal("json-file", host.LogConfig.Type);
        Assert.Equal("10m", host.LogConfig.Config["max-size"]);
        Assert.Equal("1024", host.Sysctls["net.core.somaxconn"]);
        Assert.True(host.Init);
        Assert.Equal(["NET_ADMIN"], host.CapAdd);
        Assert.Equal(["MKNOD"], host.CapDrop);
        Assert.Equal(64 * MiB, host.ShmSize);
        Assert.Equal("size=16m,noexec", host.Tmpfs["/run"]);
    }

    [Fact]
    public void Secrets_and_log_secret_options_are_planned_for_injection_at_start()
    {
        var plan = Plan("""
            {"containerDefinitions": [{"name": "app", "image": "i", "memory": 64,
              "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/db"}],
              "logConfiguration": {"logDriver": "json-file", "secretOptions": [{"name": "token", "valueFrom": "/log/token"}]}}]}
            """);
        Assert.Null(plan.Refusal);
        Assert.Equal(
            [new("app", "DB_PASSWORD", "arn:aws:ssm:us-east-1:000000000000:parameter/db", SecretTarget.Environment), new ContainerSecret("app", "token", "/log/token", SecretTarget.LogOption)],
            plan.Secrets);
    }

    [Theory]
    [InlineData("""{"volumes": [{"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}], "containerDefinitions": [{"name": "app", "image": "i", "memory": 64}]}""", "efsVolumeConfiguration")]
    [InlineData("""{"containerDefinitions": [{"name": "app", "image": "i", "memory": 64, "environmentFiles": [{"value": "arn:aws:s3:::b/e.env", "type": "s3"}]}]}""", "environment files")]
    public void What_the_worker_cannot_provide_is_refused_with_the_reason(string definition, string mentioned)
    {
        var refusal = Plan(definition).Refusal;
        Assert.NotNull(refusal);
        Assert.StartsWith("ResourceInitializationError: ", refusal);
        Assert.Contains(mentioned, refusal);
    }

    [Fact]
    public void A_plain_definition_is_not_refused()
        => Assert.Null(Plan("""{"containerDefinitions": [{"name": "app", "image": "i", "memory": 64}]}""").Refusal);
}
