using Serverless.Core.ContainerInstances;
using Serverless.Worker.Registration;

namespace Serverless.Worker.Tests.Registration;

public sealed class InstanceAttributesTests
{
    [Fact]
    public void The_platform_and_real_capabilities_are_advertised()
    {
        var attributes = InstanceAttributes.Build(new WorkerOptions { AvailabilityZone = "az-1", InstanceType = "m5.large" }, "x86_64", "1.12", "1.41");
        var names = attributes.Select(a => a.Name).ToList();

        Assert.Contains(new InstanceAttribute("ecs.os-type", "linux"), attributes);
        Assert.Contains(new InstanceAttribute("ecs.cpu-architecture", "x86_64"), attributes);
        Assert.Contains(new InstanceAttribute("ecs.availability-zone", "az-1"), attributes);
        Assert.Contains(new InstanceAttribute("ecs.instance-type", "m5.large"), attributes);
        Assert.Contains("com.amazonaws.ecs.capability.docker-remote-api.1.17", names);
        Assert.Contains("com.amazonaws.ecs.capability.docker-remote-api.1.41", names);
        Assert.DoesNotContain("com.amazonaws.ecs.capability.docker-remote-api.1.42", names);
        Assert.Contains("com.amazonaws.ecs.capability.logging-driver.json-file", names);
        Assert.Contains("ecs.capability.container-health-check", names);
        Assert.Contains("ecs.capability.container-ordering", names);
        Assert.Contains("ecs.capability.secrets.asm.environment-variables", names);
        Assert.Contains("ecs.capability.secrets.ssm.environment-variables", names);
        // Task ENIs (awsvpc: a network per task), and nothing the worker cannot do: registry credentials, task roles, ECR auth.
        Assert.Contains("ecs.capability.task-eni", names);
        Assert.DoesNotContain(names, n => n.Contains("private-registry-authentication") || n.Contains("task-iam-role") || n.Contains("ecr-auth"));
    }

    [Fact]
    public void A_default_worker_advertises_nothing_that_reaches_into_the_host()
    {
        var names = InstanceAttributes.Build(new WorkerOptions(), "x86_64", "1.12", "1.41").Select(a => a.Name).ToList();
        Assert.DoesNotContain("com.amazonaws.ecs.capability.privileged-container", names);
        Assert.DoesNotContain("com.amazonaws.ecs.capability.selinux", names);
        Assert.DoesNotContain("com.amazonaws.ecs.capability.apparmor", names);
        Assert.DoesNotContain(names, n => n.StartsWith("ecs-worker.", StringComparison.Ordinal));
        // Plain local Docker volumes are always allowed.
        Assert.Contains("ecs.capability.docker-plugin.local", names);
    }

    [Fact]
    public void Each_allowed_host_feature_is_advertised_under_the_name_task_definitions_require()
    {
        var options = new WorkerOptions
        {
            AllowPrivileged = true, AllowHostNetwork = true, AllowHostPidMode = true, AllowHostIpcMode = true, AllowedHostPaths = "/data",
            AllowAddedCapabilities = true, AllowDevices = true, AllowVolumeDriverOptions = true, AllowSecurityOptions = true,
        };
        var names = InstanceAttributes.Build(options, "x86_64", "1.12", "1.41").Select(a => a.Name).ToList();
        Assert.Contains("com.amazonaws.ecs.capability.privileged-container", names);
        Assert.Contains("ecs-worker.network-mode.host", names);
        Assert.Contains("ecs-worker.pid-mode.host", names);
        Assert.Contains("ecs-worker.ipc-mode.host", names);
        Assert.Contains("ecs-worker.host-path-mounts", names);
        Assert.Contains("ecs-worker.linux-parameters.capabilities-add", names);
        Assert.Contains("ecs-worker.linux-parameters.devices", names);
        Assert.Contains("ecs-worker.docker-volume-driver-options", names);
        Assert.Contains("com.amazonaws.ecs.capability.selinux", names);
        Assert.Contains("com.amazonaws.ecs.capability.apparmor", names);
        Assert.Contains("ecs-worker.docker-security-options", names);
    }

    [Fact]
    public void Optional_platform_attributes_are_left_out_when_unset()
    {
        var names = InstanceAttributes.Build(new WorkerOptions(), "arm64", "1.12", "1.41").Select(a => a.Name).ToList();
        Assert.DoesNotContain("ecs.availability-zone", names);
        Assert.DoesNotContain("ecs.instance-type", names);
    }

    [Fact]
    public void Api_versions_start_at_the_agents_first_known_one_or_the_engines_minimum()
    {
        Assert.Equal(["1.17", "1.18", "1.19"], InstanceAttributes.ApiVersions("1.12", "1.19"));
        Assert.Equal(["1.24", "1.25"], InstanceAttributes.ApiVersions("1.24", "1.25"));
        Assert.Empty(InstanceAttributes.ApiVersions("1.12", "garbage"));
    }

    [Fact]
    public void Custom_attributes_are_name_value_pairs_and_may_replace_defaults()
    {
        Assert.Equal(
            [new InstanceAttribute("stack", "prod"), new InstanceAttribute("gpu", null), new InstanceAttribute("team", "a=b")],
            InstanceAttributes.ParseCustom(" stack=prod ; gpu;team=a=b;;"));
        var attributes = InstanceAttributes.Build(new WorkerOptions { Attributes = "ecs.os-type=custom;stack=prod" }, "x86_64", "1.12", "1.41");
        Assert.Equal("custom", Assert.Single(attributes, a => a.Name == "ecs.os-type").Value);
        Assert.Contains(new InstanceAttribute("stack", "prod"), attributes);
    }
}
