using Serverless.Core.Api;
using Serverless.Core.ContainerInstances;
using Serverless.Core.Scheduling;

namespace Serverless.Core.Tests.Scheduling;

/// <summary>
/// ECS's cluster query language, operator by operator, against one well-known instance; then how
/// expressions group, and how bad ones are refused.
/// </summary>
public sealed class ClusterQueryTests
{
    private static readonly DateTimeOffset Registered = new(2018, 6, 18, 22, 28, 28, 500, TimeSpan.Zero);

    /// <summary>A g2 host in us-east-1a, agent 1.14.5, registered 2018-06-18T22:28:28.5Z, running one task of service:production.</summary>
    private static readonly QueryTarget Host = new(
        Ec2InstanceId: "i-abcd1234",
        Attributes: new Dictionary<string, string?>
        {
            ["ecs.instance-type"] = "g2.2xlarge",
            ["ecs.availability-zone"] = "us-east-1a",
            ["ecs.os-type"] = "linux",
            ["ecs.capability.privileged-container"] = null,
            ["stack"] = "prod",
            ["cores"] = "8",
            ["greeting"] = "hello world",
        },
        AgentConnected: true,
        AgentVersion: "1.14.5",
        RegisteredAt: Registered,
        RunningTasksCount: 1,
        TaskGroups: new HashSet<string> { "service:production", "family:web" });

    private static bool Matches(string expression) => ClusterQuery.Parse(expression).Matches(Host);

    [Theory]
    [InlineData("attribute:ecs.instance-type == g2.2xlarge", true)]
    [InlineData("attribute:ecs.instance-type equals g2.2xlarge", true)]
    [InlineData("attribute:ecs.instance-type == t2.small", false)]
    [InlineData("attribute:ecs.instance-type == G2.2XLARGE", false)]
    [InlineData("attribute:ecs.os-type==linux", true)]
    [InlineData("attribute:greeting == 'hello world'", true)]
    [InlineData("attribute:greeting == \"hello world\"", true)]
    [InlineData("attribute:ecs.capability.privileged-container == x", false)]
    [InlineData("attribute:missing == anything", false)]
    public void Equals_compares_whole_strings_exactly(string expression, bool expected) => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("attribute:ecs.instance-type != t2.small", true)]
    [InlineData("attribute:ecs.instance-type not_equals g2.2xlarge", false)]
    [InlineData("attribute:missing != anything", true)]
    [InlineData("attribute:ecs.capability.privileged-container != x", true)]
    public void Not_equals_is_the_opposite_of_equals_even_for_a_missing_attribute(string expression, bool expected)
        => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("attribute:stack exists", true)]
    [InlineData("attribute:ecs.capability.privileged-container exists", true)]
    [InlineData("attribute:missing exists", false)]
    [InlineData("attribute:missing !exists", true)]
    [InlineData("attribute:stack not_exists", false)]
    [InlineData("task:group exists", true)]
    public void Exists_asks_whether_the_subject_is_there_at_all(string expression, bool expected) => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", true)]
    [InlineData("attribute:ecs.availability-zone in [us-east-1c]", false)]
    [InlineData("attribute:ecs.availability-zone !in [us-east-1c, us-east-1d]", true)]
    [InlineData("attribute:ecs.availability-zone not_in [us-east-1a]", false)]
    [InlineData("attribute:ecs.availability-zone in ['us-east-1a' ,\"x\"]", true)]
    [InlineData("attribute:missing in [a]", false)]
    [InlineData("attribute:missing !in [a]", true)]
    [InlineData("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", true)]
    [InlineData("ec2InstanceId in [\"i-0\", \"i-1\"]", false)]
    [InlineData("ec2InstanceId !in [i-abcd1234]", false)]
    [InlineData("agentConnected in [true]", true)]
    [InlineData("task:group in [database, family:web]", true)]
    [InlineData("task:group not_in [database]", true)]
    public void In_looks_the_value_up_in_an_argument_list(string expression, bool expected) => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("attribute:ecs.instance-type =~ g2.*", true)]
    [InlineData("attribute:ecs.instance-type matches t2.*", false)]
    [InlineData("attribute:ecs.instance-type =~ 2xlarge", false)]
    [InlineData("attribute:ecs.instance-type =~ .*2xlarge", true)]
    [InlineData("attribute:ecs.instance-type !~ t2.*", true)]
    [InlineData("attribute:ecs.instance-type not_matches g2.*", false)]
    [InlineData("attribute:ecs.instance-type =~ '(g2|p3)\\.2xlarge'", true)]
    [InlineData("attribute:ecs.instance-type =~ (g2|p3).2xlarge", true)]
    [InlineData("attribute:ecs.instance-type =~ [gp][0-9]\\.\\d+xlarge", true)]
    [InlineData("attribute:missing =~ .*", false)]
    [InlineData("ec2InstanceId =~ i-abcd.*", true)]
    [InlineData("agentConnected =~ t.*", true)]
    [InlineData("task:group =~ service:.*", true)]
    [InlineData("task:group !~ service:.*", false)]
    public void Matches_is_a_regular_expression_over_the_whole_value(string expression, bool expected)
        => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("attribute:cores > 4", true)]
    [InlineData("attribute:cores > 10", false)]
    [InlineData("attribute:cores greater_than_equal 8", true)]
    [InlineData("attribute:cores < 10", true)]
    [InlineData("attribute:cores <= 7", false)]
    [InlineData("attribute:stack > pra", true)]
    [InlineData("attribute:stack less_than pra", false)]
    [InlineData("attribute:missing < 5", false)]
    [InlineData("attribute:ecs.capability.privileged-container >= 0", false)]
    public void Ordering_an_attribute_compares_numbers_as_numbers_and_other_values_as_strings(string expression, bool expected)
        => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("ec2InstanceId == i-abcd1234", true)]
    [InlineData("ec2InstanceId != i-abcd1234", false)]
    [InlineData("agentConnected == true", true)]
    [InlineData("agentConnected == TRUE", true)]
    [InlineData("agentConnected == false", false)]
    [InlineData("agentConnected != false", true)]
    [InlineData("agentConnected not_equals true", false)]
    public void Instance_id_and_agent_connection_compare_as_values(string expression, bool expected) => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("agentVersion == 1.14.5", true)]
    [InlineData("agentVersion != 1.14.5", false)]
    [InlineData("agentVersion < 1.14.6", true)]
    [InlineData("agentVersion < 1.14.5", false)]
    [InlineData("agentVersion <= 1.14.5", true)]
    [InlineData("agentVersion > 1.9.0", true)]
    [InlineData("agentVersion greater_than 1.2", true)]
    [InlineData("agentVersion >= 2.0", false)]
    [InlineData("agentVersion less_than_equal 1.14.5", true)]
    [InlineData("agentVersion == 1.14.5.0", true)]
    public void Agent_versions_compare_part_by_part_as_numbers(string expression, bool expected) => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("registeredAt < 2018-06-19", true)]
    [InlineData("registeredAt == 2018-06-18", true)]
    [InlineData("registeredAt > 2018-06-18", false)]
    [InlineData("registeredAt >= 2018-06-18", true)]
    [InlineData("registeredAt less_than 2018-02-13", false)]
    [InlineData("registeredAt < 2018-06-18T22:28:29Z", true)]
    [InlineData("registeredAt == 2018-06-18T22:28:28Z", true)]
    [InlineData("registeredAt == 2018-06-18T22:28:28+00:00", true)]
    [InlineData("registeredAt == 2018-06-18T22:28:28", true)]
    [InlineData("registeredAt > 2018-06-18T23:00:00+02:00", true)]
    [InlineData("registeredAt != 2018-06-18T22:28:28Z", false)]
    public void Registration_time_compares_by_day_or_to_the_second_in_any_documented_format(string expression, bool expected)
        => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("runningTasksCount == 1", true)]
    [InlineData("runningTasksCount != 1", false)]
    [InlineData("runningTasksCount > 0", true)]
    [InlineData("runningTasksCount >= 2", false)]
    [InlineData("runningTasksCount < 2", true)]
    [InlineData("runningTasksCount <= 0", false)]
    public void Running_task_count_compares_as_a_number(string expression, bool expected) => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("task:group == service:production", true)]
    [InlineData("task:group == family:web", true)]
    [InlineData("task:group == database", false)]
    [InlineData("not(task:group == database)", true)]
    [InlineData("task:group != database", true)]
    [InlineData("task:group != family:web", false)]
    public void Task_group_holds_when_any_task_on_the_instance_is_in_the_group(string expression, bool expected)
        => Assert.Equal(expected, Matches(expression));

    [Fact]
    public void An_instance_without_tasks_has_no_task_group()
    {
        var idle = Host with { TaskGroups = new HashSet<string>() };
        Assert.False(ClusterQuery.Parse("task:group exists").Matches(idle));
        Assert.True(ClusterQuery.Parse("not(task:group == database)").Matches(idle));
        Assert.False(ClusterQuery.Parse("task:group =~ .*").Matches(idle));
    }

    [Fact]
    public void An_instance_without_an_agent_version_is_neither_older_nor_newer()
    {
        var unknown = Host with { AgentVersion = null };
        Assert.False(ClusterQuery.Parse("agentVersion < 9.0.0").Matches(unknown));
        Assert.False(ClusterQuery.Parse("agentVersion >= 0.0.0").Matches(unknown));
        Assert.True(ClusterQuery.Parse("agentVersion != 1.0.0").Matches(unknown));
    }

    [Theory]
    [InlineData("attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", true)]
    [InlineData("attribute:ecs.instance-type =~ g2.* && attribute:ecs.availability-zone == us-east-1d", false)]
    [InlineData("attribute:stack == dev or runningTasksCount == 1", true)]
    [InlineData("attribute:stack == dev || runningTasksCount == 2", false)]
    [InlineData("!(attribute:stack == dev)", true)]
    [InlineData("! attribute:stack == prod", false)]
    [InlineData("not attribute:stack == prod", false)]
    [InlineData("NOT (attribute:stack == dev) AND runningTasksCount == 1", true)]
    [InlineData("(attribute:stack == dev or attribute:stack == prod) and runningTasksCount == 1", true)]
    [InlineData("attribute:stack == prod or attribute:stack == dev and runningTasksCount == 2", true)]
    [InlineData("(attribute:stack == prod or attribute:stack == dev) and runningTasksCount == 2", false)]
    [InlineData("not attribute:stack == dev and attribute:stack == dev", false)]
    [InlineData("((runningTasksCount == 1))", true)]
    [InlineData("runningTasksCount>0&&attribute:stack==prod", true)]
    [InlineData("(task:group == database)or(attribute:cores > 2)", true)]
    public void Compound_expressions_combine_with_and_or_not_and_parentheses(string expression, bool expected)
        => Assert.Equal(expected, Matches(expression));

    [Theory]
    [InlineData("attribute:a exists or attribute:b exists and attribute:c exists", "(attribute:a exists or (attribute:b exists and attribute:c exists))")]
    [InlineData("attribute:a exists and attribute:b exists or attribute:c exists", "((attribute:a exists and attribute:b exists) or attribute:c exists)")]
    [InlineData("attribute:a exists or attribute:b exists or attribute:c exists", "((attribute:a exists or attribute:b exists) or attribute:c exists)")]
    [InlineData("not attribute:a exists and attribute:b exists", "((not attribute:a exists) and attribute:b exists)")]
    [InlineData("not (attribute:a exists and attribute:b exists)", "(not (attribute:a exists and attribute:b exists))")]
    [InlineData("!!attribute:a exists", "(not (not attribute:a exists))")]
    [InlineData("attribute:a exists and (attribute:b exists or attribute:c exists)", "(attribute:a exists and (attribute:b exists or attribute:c exists))")]
    public void Not_binds_tightest_then_and_then_or(string expression, string grouped)
        => Assert.Equal(grouped, ClusterQuery.Parse(expression).ToString());

    [Fact]
    public void A_quoted_argument_may_escape_its_quote_and_keeps_other_backslashes()
    {
        var host = Host with { Attributes = new Dictionary<string, string?> { ["motto"] = "it's", ["path"] = @"C:\data" } };
        Assert.True(ClusterQuery.Parse(@"attribute:motto == 'it\'s'").Matches(host));
        Assert.True(ClusterQuery.Parse(@"attribute:path == 'C:\data'").Matches(host));
        Assert.True(ClusterQuery.Parse(@"attribute:path =~ 'C:\\\\data'").Matches(host));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("attribute:x", "expected an operator after 'attribute:x'")]
    [InlineData("attribute:x ==", "expected an argument (at character 15)")]
    [InlineData("attribute:x == a b", "unexpected 'b'; expected 'and', 'or' or the end (at character 18)")]
    [InlineData("attribute:x == a and", "expected an expression")]
    [InlineData("attribute:x == a or or attribute:y exists", "unknown subject 'or'")]
    [InlineData("(attribute:x == a", "'(' at character 1 is never closed")]
    [InlineData("attribute:x == a)", "unbalanced ')' (at character 17)")]
    [InlineData("()", "expected a subject")]
    [InlineData("foo == bar", "unknown subject 'foo'")]
    [InlineData("attribute: == a", "is not a valid attribute name")]
    [InlineData("attribute:a$b == a", "'a$b' is not a valid attribute name")]
    [InlineData("attribute:x ~~ a", "expected an operator after 'attribute:x', found '~~'")]
    [InlineData("attribute:x like a", "unknown operator 'like'")]
    [InlineData("attribute:x in a", "expected an argument list such as [a, b]")]
    [InlineData("attribute:x in [a, b", "argument list is never closed")]
    [InlineData("attribute:x in []", "an argument list needs at least one value")]
    [InlineData("attribute:x in [a b]", "expected ',' or ']'")]
    [InlineData("attribute:x in [a,]", "expected a value in the argument list")]
    [InlineData("attribute:x exists a", "unexpected 'a'")]
    [InlineData("attribute:x == 'open", "the quote at character 16 is never closed")]
    [InlineData("attribute:x =~ '('", "is not a valid regular expression")]
    [InlineData("ec2InstanceId > i-1", "operator '>' cannot be used with subject 'ec2InstanceId'")]
    [InlineData("ec2InstanceId exists", "operator 'exists' cannot be used with subject 'ec2InstanceId'")]
    [InlineData("runningTasksCount =~ 1", "cannot be used with subject 'runningTasksCount'")]
    [InlineData("runningTasksCount in [1]", "cannot be used with subject 'runningTasksCount'")]
    [InlineData("runningTasksCount == many", "runningTasksCount compares with a whole number, not 'many'")]
    [InlineData("agentVersion < latest", "agentVersion compares with a version such as 1.14.5")]
    [InlineData("agentVersion =~ 1.*", "cannot be used with subject 'agentVersion'")]
    [InlineData("registeredAt < yesterday", "registeredAt compares with a date such as 2018-06-18")]
    [InlineData("registeredAt < 2018-13-45", "registeredAt compares with a date")]
    [InlineData("registeredAt in [2018-06-18]", "cannot be used with subject 'registeredAt'")]
    [InlineData("agentConnected == maybe", "agentConnected compares with true or false")]
    [InlineData("agentConnected exists", "cannot be used with subject 'agentConnected'")]
    [InlineData("task:group > a", "cannot be used with subject 'task:group'")]
    [InlineData("task:groups == a", "unknown subject 'task:groups'")]
    public void A_malformed_expression_is_an_invalid_parameter_that_says_what_and_where(string expression, string problem)
    {
        var error = Assert.Throws<InvalidParameterException>(() => ClusterQuery.Parse(expression));
        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void An_expression_longer_than_ecs_allows_is_refused()
    {
        var longest = "attribute:x == " + new string('a', ClusterQuery.MaxLength - 15);
        Assert.True(ClusterQuery.Parse(longest).Matches(Host with { Attributes = new Dictionary<string, string?> { ["x"] = longest[15..] } }));
        var error = Assert.Throws<InvalidParameterException>(() => ClusterQuery.Parse(longest + "a"));
        Assert.Contains("at most 2000", error.Message);
    }

    [Fact]
    public void An_instance_record_maps_to_what_a_query_sees()
    {
        var now = new DateTimeOffset(2025, 11, 25, 4, 0, 0, TimeSpan.Zero);
        var instance = new ContainerInstanceRecord
        {
            Cluster = "default",
            Id = "0123456789abcdef0123456789abcdef",
            Ec2InstanceId = "i-host",
            RegisteredCpu = 1024,
            RegisteredMemory = 1024,
            Attributes = [new("ecs.os-type", "linux"), new("ecs.capability.x", null)],
            Reservations =
            [
                new Reservation("t1", 1, 1, [], []) { Group = "service:web" },
                new Reservation("t2", 1, 1, [], []) { Group = "service:web" },
                new Reservation("t3", 1, 1, [], []),
            ],
            RunningTasksCount = 2,
            RegisteredAt = now.AddDays(-1),
            LastHeartbeat = now.AddSeconds(-61),
            AgentVersion = "1.0.0",
        };

        var target = QueryTarget.From(instance, now, TimeSpan.FromSeconds(60));

        Assert.Equal("i-host", target.Ec2InstanceId);
        Assert.Equal(2, target.Attributes.Count);
        Assert.Equal("linux", target.Attributes["ecs.os-type"]);
        Assert.Null(target.Attributes["ecs.capability.x"]);
        Assert.False(target.AgentConnected);
        Assert.Equal("1.0.0", target.AgentVersion);
        Assert.Equal(now.AddDays(-1), target.RegisteredAt);
        Assert.Equal(2, target.RunningTasksCount);
        Assert.Equal(new[] { "service:web" }, target.TaskGroups);

        Assert.True(QueryTarget.From(instance, now, TimeSpan.FromSeconds(61)).AgentConnected);
        Assert.Equal(new[] { "db" }, QueryTarget.From(instance, now, TimeSpan.FromSeconds(60), new HashSet<string> { "db" }).TaskGroups);
        Assert.True(ClusterQuery.Parse("task:group == service:web and agentConnected == false").Matches(instance, now, TimeSpan.FromSeconds(60)));
    }
}
