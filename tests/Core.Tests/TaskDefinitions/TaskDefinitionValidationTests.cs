using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.TaskDefinitions;
using static Serverless.Core.Tests.TaskDefinitions.TaskDefinitionRequests;

namespace Serverless.Core.Tests.TaskDefinitions;

public class TaskDefinitionValidationTests
{
    private static ClientException Refused(JsonObject request)
        => Assert.Throws<ClientException>(() => TaskDefinitionValidation.ValidateRegistration(request));

    private static JsonObject WithContainer(string containerJson, string extra = "")
        => Register($$"""{"family":"web"{{extra}},"containerDefinitions":[{{containerJson}}]}""");

    [Fact]
    public void The_minimal_definition_is_accepted()
        => TaskDefinitionValidation.ValidateRegistration(Minimal());

    [Fact]
    public void A_realistic_multi_container_definition_is_accepted()
        => TaskDefinitionValidation.ValidateRegistration(Register(Realistic));

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("dots.are.out")]
    [InlineData("colon:1")]
    [InlineData("slash/x")]
    [InlineData("ümlaut")]
    public void A_family_outside_letters_digits_hyphens_and_underscores_is_refused(string family)
    {
        var error = Refused(Minimal().With(r => r["family"] = family));
        Assert.Equal(family.Length == 0 ? "Family can not be blank." : "Family contains invalid characters.", error.Message);
    }

    [Fact]
    public void A_family_of_255_characters_is_accepted_and_256_is_refused()
    {
        TaskDefinitionValidation.ValidateRegistration(Minimal().With(r => r["family"] = new string('a', 255)));
        Assert.Equal("Family contains invalid characters.", Refused(Minimal().With(r => r["family"] = new string('a', 256))).Message);
    }

    [Theory]
    [InlineData("Web_App-2")]
    [InlineData("a")]
    [InlineData("_-_")]
    public void Families_of_letters_digits_hyphens_and_underscores_are_accepted(string family)
        => TaskDefinitionValidation.ValidateRegistration(Minimal().With(r => r["family"] = family));

    [Theory]
    [InlineData(21)]
    [InlineData(100)]
    [InlineData(200)]
    public void Ephemeral_storage_of_21_to_200_GiB_is_accepted(int size)
        => TaskDefinitionValidation.ValidateRegistration(Fargate().With(r => r["ephemeralStorage"] = new JsonObject { ["sizeInGiB"] = size }));

    [Theory]
    [InlineData(20, "EphemeralStorage size should be at least 21")]
    [InlineData(0, "EphemeralStorage size should be at least 21")]
    [InlineData(-1, "EphemeralStorage size should be at least 21")]
    [InlineData(201, "EphemeralStorage size should be at most 200")]
    [InlineData(1000, "EphemeralStorage size should be at most 200")]
    public void Ephemeral_storage_outside_21_to_200_GiB_is_refused_in_ECS_words(int size, string message)
        => Assert.Equal(message, Refused(Fargate().With(r => r["ephemeralStorage"] = new JsonObject { ["sizeInGiB"] = size })).Message);

    [Fact]
    public void Ephemeral_storage_is_checked_on_an_EC2_definition_too()
        => Assert.Equal("EphemeralStorage size should be at least 21",
            Refused(Minimal().With(r => r["ephemeralStorage"] = new JsonObject { ["sizeInGiB"] = 20 })).Message);

    private static JsonObject Fargate() => Register("""
        {"family":"web","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512",
         "containerDefinitions":[{"name":"app","image":"busybox"}]}
        """);

    [Fact]
    public void An_empty_container_list_is_refused()
        => Assert.Equal("Container list cannot be empty.", Refused(Register("""{"family":"web","containerDefinitions":[]}""")).Message);

    [Fact]
    public void Ten_containers_are_accepted_and_eleven_are_refused()
    {
        static JsonObject WithContainers(int count) => Register($$"""
            {"family":"web","containerDefinitions":[{{string.Join(",", Enumerable.Range(0, count).Select(i => $$"""{"name":"c{{i}}","image":"i","memory":16}"""))}}]}
            """);
        TaskDefinitionValidation.ValidateRegistration(WithContainers(10));
        Assert.StartsWith("Too many containers.", Refused(WithContainers(11)).Message);
    }

    [Theory]
    [InlineData("""{"image":"i","memory":64}""", "Container.name should not be null or empty.")]
    [InlineData("""{"name":"","image":"i","memory":64}""", "Container.name should not be null or empty.")]
    [InlineData("""{"name":"web app","image":"i","memory":64}""", "Container.name contains invalid characters.")]
    [InlineData("""{"name":"web.app","image":"i","memory":64}""", "Container.name contains invalid characters.")]
    [InlineData("""{"name":"web","memory":64}""", "Container.image should not be null or empty.")]
    [InlineData("""{"name":"web","image":" ","memory":64}""", "Container.image should not be null or empty.")]
    public void Containers_need_a_valid_name_and_an_image(string container, string message)
        => Assert.Equal(message, Refused(WithContainer(container)).Message);

    [Fact]
    public void Container_names_are_unique_within_the_task()
    {
        var error = Refused(Register("""{"family":"web","containerDefinitions":[{"name":"a","image":"i","memory":64},{"name":"a","image":"j","memory":64}]}"""));
        Assert.StartsWith("Container names must be unique", error.Message);
    }

    [Theory]
    [InlineData("""{"name":"web","image":"i"}""", "")]
    [InlineData("""{"name":"web","image":"i","memory":0}""", "")]
    [InlineData("""{"name":"web","image":"i"}""", ""","requiresCompatibilities":["EC2"]""")]
    public void Without_task_memory_a_container_needs_memory_or_a_reservation(string container, string extra)
    {
        var error = Refused(WithContainer(container, extra));
        Assert.Equal("Invalid setting for container 'web'. At least one of 'memory' or 'memoryReservation' must be specified.", error.Message);
    }

    [Theory]
    [InlineData("""{"name":"web","image":"i","memory":64}""", "")]
    [InlineData("""{"name":"web","image":"i","memoryReservation":64}""", "")]
    [InlineData("""{"name":"web","image":"i"}""", ""","memory":"512" """)]
    [InlineData("""{"name":"web","image":"i"}""", ""","memory":"1 GB" """)]
    public void Memory_may_come_from_the_container_or_the_task(string container, string extra)
        => TaskDefinitionValidation.ValidateRegistration(WithContainer(container, extra));

    [Theory]
    [InlineData("""{"name":"web","image":"i","memory":5}""", "Invalid 'memory' setting for container 'web'.")]
    [InlineData("""{"name":"web","image":"i","memoryReservation":5}""", "Invalid 'memoryReservation' setting for container 'web'.")]
    [InlineData("""{"name":"web","image":"i","memory":64,"memoryReservation":65}""", "Invalid 'memoryReservation' setting for container 'web'. 'memoryReservation' must be less than or equal to 'memory'.")]
    [InlineData("""{"name":"web","image":"i","cpu":-1,"memory":64}""", "Invalid 'cpu' setting for container 'web'.")]
    public void Container_memory_is_at_least_6_MiB_and_the_reservation_within_the_limit(string container, string message)
        => Assert.StartsWith(message, Refused(WithContainer(container)).Message);

    [Fact]
    public void A_reservation_equal_to_the_limit_and_6_MiB_are_accepted()
        => TaskDefinitionValidation.ValidateRegistration(WithContainer("""{"name":"web","image":"i","memory":6,"memoryReservation":6}"""));

    [Fact]
    public void A_container_limit_above_the_task_memory_is_refused()
        => Assert.StartsWith("Invalid 'memory' setting for container 'web'.",
            Refused(WithContainer("""{"name":"web","image":"i","memory":1024}""", ""","memory":"512" """)).Message);

    [Fact]
    public void Container_reservations_must_fit_in_the_task_memory()
    {
        var request = Register("""
            {"family":"web","memory":"256","containerDefinitions":[
              {"name":"a","image":"i","memoryReservation":200},{"name":"b","image":"i","memoryReservation":100}]}
            """);
        Assert.Equal("The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.", Refused(request).Message);
    }

    [Fact]
    public void Container_cpu_must_fit_in_the_task_cpu()
    {
        var request = Register("""
            {"family":"web","cpu":"256","containerDefinitions":[
              {"name":"a","image":"i","cpu":200,"memory":64},{"name":"b","image":"i","cpu":100,"memory":64}]}
            """);
        Assert.Equal("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.", Refused(request).Message);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("1 core")]
    [InlineData("-256")]
    [InlineData("127")]
    [InlineData("196609")]
    [InlineData("0.1 vCPU")]
    public void An_invalid_task_cpu_is_refused(string cpu)
        => Assert.Equal(TaskDefinitionDefaults.InvalidTaskCpu, Refused(Minimal().With(r => r["cpu"] = cpu)).Message);

    [Theory]
    [InlineData("lots")]
    [InlineData("0")]
    [InlineData("1.5")]
    [InlineData("2 TB")]
    public void An_invalid_task_memory_is_refused(string memory)
        => Assert.Equal(TaskDefinitionDefaults.InvalidTaskMemory, Refused(Minimal().With(r => r["memory"] = memory)).Message);

    [Theory]
    [InlineData("""{"containerPort":0}""", "bridge", "Invalid 'containerPort' setting for container 'web'.")]
    [InlineData("""{"containerPort":65536}""", "bridge", "Invalid 'containerPort' setting for container 'web'.")]
    [InlineData("""{"hostPort":8080}""", "bridge", "Invalid 'containerPort' setting for container 'web'.")]
    [InlineData("""{"containerPort":80,"hostPort":-1}""", "bridge", "Invalid 'hostPort' setting for container 'web'.")]
    [InlineData("""{"containerPort":80,"hostPort":65536}""", "bridge", "Invalid 'hostPort' setting for container 'web'.")]
    [InlineData("""{"containerPort":80,"hostPort":8080}""", "awsvpc", "When networkMode=awsvpc, the host ports and container ports in port mappings must match.")]
    [InlineData("""{"containerPort":80,"hostPort":8080}""", "host", "When networkMode=host, the host ports and container ports in port mappings must match.")]
    [InlineData("""{"containerPort":80}""", "none", "Invalid 'portMappings' setting for container 'web'. Port mappings are not supported when networkMode=none.")]
    [InlineData("""{"containerPortRange":"9000"}""", "bridge", "Invalid 'containerPortRange' setting for container 'web'.")]
    [InlineData("""{"containerPortRange":"9010-9000"}""", "bridge", "Invalid 'containerPortRange' setting for container 'web'.")]
    [InlineData("""{"containerPort":80,"containerPortRange":"9000-9010"}""", "bridge", "Invalid 'containerPortRange' setting for container 'web'.")]
    public void Port_mappings_follow_the_network_mode_rules(string mapping, string networkMode, string message)
    {
        var request = WithContainer($$"""{"name":"web","image":"i","memory":64,"portMappings":[{{mapping}}]}""", $$""","networkMode":"{{networkMode}}" """);
        Assert.Equal(message, Refused(request).Message);
    }

    [Theory]
    [InlineData("""{"containerPort":80,"hostPort":8080}""", "bridge")]
    [InlineData("""{"containerPort":80,"hostPort":0}""", "bridge")]
    [InlineData("""{"containerPort":80}""", "bridge")]
    [InlineData("""{"containerPort":80}""", "awsvpc")]
    [InlineData("""{"containerPort":80,"hostPort":80}""", "host")]
    [InlineData("""{"containerPort":65535,"hostPort":65535,"protocol":"udp"}""", "awsvpc")]
    [InlineData("""{"containerPortRange":"9000-9010"}""", "awsvpc")]
    public void Valid_port_mappings_are_accepted(string mapping, string networkMode)
        => TaskDefinitionValidation.ValidateRegistration(
            WithContainer($$"""{"name":"web","image":"i","memory":64,"portMappings":[{{mapping}}]}""", $$""","networkMode":"{{networkMode}}" """));

    [Theory]
    [InlineData("bridge", """{"containerPort":80,"hostPort":8080}""", """{"containerPort":81,"hostPort":8080}""", "TCP host port '8080' is mapped multiple times in task.")]
    [InlineData("awsvpc", """{"containerPort":80}""", """{"containerPort":80}""", "TCP host port '80' is mapped multiple times in task.")]
    [InlineData("host", """{"containerPort":53,"protocol":"udp"}""", """{"containerPort":53,"hostPort":53,"protocol":"udp"}""", "UDP host port '53' is mapped multiple times in task.")]
    public void A_host_port_is_mapped_at_most_once_per_protocol(string networkMode, string first, string second, string message)
    {
        var request = Register($$"""
            {"family":"web","networkMode":"{{networkMode}}","containerDefinitions":[
              {"name":"a","image":"i","memory":64,"portMappings":[{{first}}]},
              {"name":"b","image":"i","memory":64,"portMappings":[{{second}}]}]}
            """);
        Assert.Equal(message, Refused(request).Message);
    }

    [Theory]
    [InlineData("""{"containerPort":80},{"containerPort":81}""")]
    [InlineData("""{"containerPort":80,"hostPort":0},{"containerPort":80,"hostPort":0}""")]
    [InlineData("""{"containerPort":53,"hostPort":53},{"containerPort":53,"hostPort":53,"protocol":"udp"}""")]
    public void Dynamic_host_ports_and_different_protocols_do_not_conflict(string mappings)
        => TaskDefinitionValidation.ValidateRegistration(WithContainer($$"""{"name":"web","image":"i","memory":64,"portMappings":[{{mappings}}]}"""));

    [Fact]
    public void A_hostname_is_refused_in_awsvpc_mode()
    {
        var request = WithContainer("""{"name":"web","image":"i","memory":64,"hostname":"web"}""", ""","networkMode":"awsvpc" """);
        Assert.Equal("hostname is not supported on container when networkMode=awsvpc.", Refused(request).Message);
    }

    [Fact]
    public void Depending_on_a_container_that_is_not_in_the_task_is_refused()
    {
        var request = WithContainer("""{"name":"web","image":"i","memory":64,"dependsOn":[{"containerName":"db","condition":"START"}]}""");
        Assert.Equal("Cannot depend on container + 'db' because it does not exist", Refused(request).Message);
    }

    [Theory]
    [InlineData("SUCCESS")]
    [InlineData("COMPLETE")]
    public void A_container_waited_on_to_exit_cannot_be_essential(string condition)
    {
        var request = Register($$"""
            {"family":"web","containerDefinitions":[
              {"name":"web","image":"i","memory":64,"dependsOn":[{"containerName":"init","condition":"{{condition}}"}]},
              {"name":"init","image":"i","memory":64}]}
            """);
        Assert.Equal("A dependency container with SUCCESS or COMPLETE condition cannot be an essential container", Refused(request).Message);
    }

    [Theory]
    [InlineData("START", true)]
    [InlineData("HEALTHY", true)]
    [InlineData("SUCCESS", false)]
    [InlineData("COMPLETE", false)]
    public void Valid_dependencies_are_accepted(string condition, bool essential)
        => TaskDefinitionValidation.ValidateRegistration(Register($$"""
            {"family":"web","containerDefinitions":[
              {"name":"web","image":"i","memory":64,"dependsOn":[{"containerName":"side","condition":"{{condition}}"}]},
              {"name":"side","image":"i","memory":64,"essential":{{(essential ? "true" : "false")}}}]}
            """));

    [Theory]
    [InlineData("""[{"name":"a","image":"i","memory":64,"dependsOn":[{"containerName":"a","condition":"START"}]}]""")]
    [InlineData("""[{"name":"a","image":"i","memory":64,"dependsOn":[{"containerName":"b","condition":"START"}]},{"name":"b","image":"i","memory":64,"dependsOn":[{"containerName":"a","condition":"START"}]}]""")]
    public void Containers_that_wait_on_each_other_are_refused(string containers)
        => Assert.StartsWith("Invalid container dependencies", Refused(Register($$"""{"family":"web","containerDefinitions":{{containers}}}""")).Message);

    [Fact]
    public void A_task_needs_at_least_one_essential_container()
    {
        var request = Register("""{"family":"web","containerDefinitions":[{"name":"a","image":"i","memory":64,"essential":false}]}""");
        Assert.Equal("Task definition doesn't have any essential container.", Refused(request).Message);
    }

    [Fact]
    public void Containers_are_essential_unless_they_say_otherwise()
        => TaskDefinitionValidation.ValidateRegistration(Register("""
            {"family":"web","containerDefinitions":[{"name":"a","image":"i","memory":64,"essential":false},{"name":"b","image":"i","memory":64}]}
            """));

    [Fact]
    public void A_mount_point_must_name_a_volume_of_the_task()
    {
        var request = WithContainer("""{"name":"web","image":"i","memory":64,"mountPoints":[{"sourceVolume":"data","containerPath":"/data"}]}""",
            ""","volumes":[{"name":"logs"}]""");
        Assert.Equal("Unknown volume 'data'.", Refused(request).Message);
    }

    [Fact]
    public void A_mount_point_needs_a_container_path()
    {
        var request = WithContainer("""{"name":"web","image":"i","memory":64,"mountPoints":[{"sourceVolume":"data"}]}""", ""","volumes":[{"name":"data"}]""");
        Assert.StartsWith("Invalid 'mountPoints' setting for container 'web'.", Refused(request).Message);
    }

    [Theory]
    [InlineData("""[{"name":"data"},{"name":"data"}]""", "Duplicate volume name 'data'.")]
    [InlineData("""[{"name":"my data"}]""", "Volume.name contains invalid characters.")]
    [InlineData("""[{"host":{"sourcePath":"/x"}}]""", "Volume.name contains invalid characters.")]
    public void Volumes_have_valid_unique_names(string volumes, string message)
        => Assert.Equal(message, Refused(WithContainer("""{"name":"web","image":"i","memory":64}""", $$""","volumes":{{volumes}}""")).Message);

    [Theory]
    [InlineData("db")]
    [InlineData("web")]
    public void Volumes_from_must_name_another_container_of_the_task(string source)
    {
        var request = WithContainer($$"""{"name":"web","image":"i","memory":64,"volumesFrom":[{"sourceContainer":"{{source}}"}]}""");
        Assert.StartsWith("Invalid 'volumesFrom' setting for container 'web'.", Refused(request).Message);
    }

    [Theory]
    [InlineData("""{"name":"","valueFrom":"arn:aws:ssm:us-east-1:000000000000:parameter/x"}""")]
    [InlineData("""{"name":"X","valueFrom":""}""")]
    public void Secrets_have_a_name_and_a_source(string secret)
    {
        var request = WithContainer($$"""{"name":"web","image":"i","memory":64,"secrets":[{{secret}}]}""");
        Assert.StartsWith("Invalid 'secrets' setting for container 'web'.", Refused(request).Message);
    }

    [Theory]
    [InlineData("""{"command":["curl","-f","http://localhost"]}""", "Invalid 'healthCheck' setting")]
    [InlineData("""{"command":["CMD"]}""", "Invalid 'healthCheck' setting")]
    [InlineData("""{"command":["NONE"]}""", "Invalid 'healthCheck' setting")]
    [InlineData("""{"command":["CMD-SHELL","true"],"interval":4}""", "Invalid 'healthCheck.interval' setting")]
    [InlineData("""{"command":["CMD-SHELL","true"],"interval":301}""", "Invalid 'healthCheck.interval' setting")]
    [InlineData("""{"command":["CMD-SHELL","true"],"timeout":1}""", "Invalid 'healthCheck.timeout' setting")]
    [InlineData("""{"command":["CMD-SHELL","true"],"timeout":61}""", "Invalid 'healthCheck.timeout' setting")]
    [InlineData("""{"command":["CMD-SHELL","true"],"retries":0}""", "Invalid 'healthCheck.retries' setting")]
    [InlineData("""{"command":["CMD-SHELL","true"],"retries":11}""", "Invalid 'healthCheck.retries' setting")]
    [InlineData("""{"command":["CMD-SHELL","true"],"startPeriod":-1}""", "Invalid 'healthCheck.startPeriod' setting")]
    [InlineData("""{"command":["CMD-SHELL","true"],"startPeriod":301}""", "Invalid 'healthCheck.startPeriod' setting")]
    public void Health_checks_run_CMD_or_CMD_SHELL_within_ECS_ranges(string healthCheck, string message)
    {
        var request = WithContainer($$"""{"name":"web","image":"i","memory":64,"healthCheck":{{healthCheck}}}""");
        Assert.StartsWith(message, Refused(request).Message);
    }

    [Theory]
    [InlineData("""{"command":["CMD","/bin/check"],"interval":5,"timeout":2,"retries":1,"startPeriod":0}""")]
    [InlineData("""{"command":["CMD-SHELL","curl -f http://localhost/ || exit 1"],"interval":300,"timeout":60,"retries":10,"startPeriod":300}""")]
    public void Health_checks_at_the_edges_of_the_ranges_are_accepted(string healthCheck)
        => TaskDefinitionValidation.ValidateRegistration(WithContainer($$"""{"name":"web","image":"i","memory":64,"healthCheck":{{healthCheck}}}"""));

    [Theory]
    [InlineData("""{}""", "awslogs-region, awslogs-group")]
    [InlineData("""{"awslogs-group":"g"}""", "awslogs-region")]
    public void The_awslogs_driver_needs_a_group_and_a_region(string options, string missing)
    {
        var request = WithContainer($$$"""{"name":"web","image":"i","memory":64,"logConfiguration":{"logDriver":"awslogs","options":{{{options}}}}}""");
        Assert.Equal($"Log driver awslogs requires options: {missing}", Refused(request).Message);
    }

    [Theory]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512" """, "Fargate only supports network mode \u2018awsvpc\u2019.")]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","memory":"512" """, "Fargate requires that 'cpu' be defined at the task level.")]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256" """, "Fargate requires that 'memory' be defined at the task level.")]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256","memory":"4096" """, "No Fargate configuration exists for given values.")]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"1024","memory":"1024" """, "No Fargate configuration exists for given values.")]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"8192","memory":"18432" """, "No Fargate configuration exists for given values.")]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"300","memory":"1024" """, TaskDefinitionDefaults.InvalidTaskCpu)]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256","memory":"512","ipcMode":"task" """, "Tasks using the Fargate launch type do not support ipcMode.")]
    [InlineData(""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256","memory":"512","pidMode":"host" """, "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.")]
    public void Fargate_needs_awsvpc_and_one_of_its_task_sizes(string extra, string message)
        => Assert.Equal(message, Refused(WithContainer("""{"name":"web","image":"i","memory":64}""", extra)).Message);

    [Theory]
    [InlineData("256", "512")]
    [InlineData("256", "2 GB")]
    [InlineData(".5 vCPU", "1GB")]
    [InlineData("1 vCPU", "8192")]
    [InlineData("2 vCPU", "16 GB")]
    [InlineData("4096", "30720")]
    [InlineData("8 vcpu", "61440")]
    [InlineData("16384", "120 GB")]
    public void Fargate_task_sizes_from_the_ECS_table_are_accepted(string cpu, string memory)
        => TaskDefinitionValidation.ValidateRegistration(WithContainer("""{"name":"web","image":"i"}""",
            $$""","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"{{cpu}}","memory":"{{memory}}" """));

    [Fact]
    public void The_external_launch_type_refuses_awsvpc()
    {
        var request = WithContainer("""{"name":"web","image":"i","memory":64}""", ""","requiresCompatibilities":["EXTERNAL"],"networkMode":"awsvpc" """);
        Assert.Contains("EXTERNAL", Refused(request).Message);
    }

    [Fact]
    public void Tags_with_the_reserved_aws_prefix_are_refused()
    {
        var request = Minimal().With(r => r["tags"] = JsonNode.Parse("""[{"key":"AWS:owner","value":"x"}]"""));
        Assert.Throws<InvalidParameterException>(() => TaskDefinitionValidation.ValidateRegistration(request));
    }
}
