using Serverless.TestSupport;

namespace Serverless.Core.Tests.Api;

/// <summary>Client input that once answered 500: each gets ECS's 400 instead, and writes nothing.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class ClientInputTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly ApiHarness _api = new(azurite, TestNames.Unique<ClientInputTests>());
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public async Task InitializeAsync()
    {
        Assert.Equal(200, (await _api.EcsAsync("CreateCluster", """{"clusterName":"input"}""", _token)).Status);
        var registered = await _api.EcsAsync("RegisterTaskDefinition",
            """{"family":"two","containerDefinitions":[{"name":"a","image":"i","memory":64},{"name":"b","image":"i","memory":64}]}""", _token);
        Assert.Equal(200, registered.Status);
    }

    public Task DisposeAsync()
    {
        _api.Dispose();
        return Task.CompletedTask;
    }

    private async Task<(int, string?, string?)> RunTaskAsync(string extra)
    {
        var answer = await _api.EcsAsync("RunTask", $$"""{"cluster":"input","taskDefinition":"two"{{extra}}}""", _token);
        return (answer.Status, answer.Type, answer.Message);
    }

    [Fact]
    public async Task Two_overrides_for_one_container_are_an_invalid_parameter()
    {
        var answer = await RunTaskAsync(""","overrides":{"containerOverrides":[{"name":"a","cpu":1},{"name":"a","cpu":2}]}""");
        Assert.Equal((400, "InvalidParameterException", "Container overrides contain more than one override for container named a."), answer);
    }

    [Fact]
    public async Task Overrides_longer_than_ecs_allows_are_refused_with_ecs_message()
    {
        var command = string.Join(',', Enumerable.Repeat("\"" + new string('x', 1000) + "\"", 9));
        var answer = await RunTaskAsync($$""","overrides":{"containerOverrides":[{"name":"a","command":[{{command}}]}]}""");
        Assert.Equal((400, "InvalidParameterException", "Container Overrides length must be at most 8192"), answer);
    }

    [Fact]
    public async Task Overrides_just_within_the_limit_are_taken()
    {
        // {"containerOverrides":[{"name":"a","command":["x..."]}]} is 52 characters around the text: exactly 8192 in all.
        var answer = await RunTaskAsync($$""","overrides":{"containerOverrides":[{"name":"a","command":["{{new string('x', 8192 - 52)}}"]}]}""");
        // Past validation: the cluster has no container instance, which is ECS's next answer.
        Assert.Equal((400, "InvalidParameterException", "No Container Instances were found in your cluster."), answer);
    }

    [Fact]
    public async Task A_group_longer_than_255_characters_is_an_invalid_parameter()
    {
        var answer = await RunTaskAsync($$""","group":"{{new string('g', 256)}}" """);
        Assert.Equal((400, "InvalidParameterException", "Group name must be at most 255 characters."), answer);
    }

    [Theory]
    [InlineData("""{"cluster":"input","taskDefinition":"two","count":1e400}""")]
    [InlineData("""{"cluster":"input","taskDefinition":"two","capacityProviderStrategy":[{"capacityProvider":"cp","weight":1e400}]}""")]
    [InlineData("""{"cluster":"input","taskDefinition":"two","placementStrategy":[{"type":"spread","field":"x"}],"tags":[{"key":"k","value":"v"}],"startedBy":1e400}""")]
    public async Task A_number_no_double_can_hold_is_a_serialization_exception(string body)
    {
        var answer = await _api.EcsAsync("RunTask", body, _token);
        Assert.Equal((400, "SerializationException"), (answer.Status, answer.Type));
    }

    [Fact]
    public async Task A_number_no_double_can_hold_in_a_double_member_is_a_serialization_exception()
    {
        var answer = await _api.EcsAsync("CreateService",
            """{"cluster":"input","serviceName":"s","taskDefinition":"two","deploymentConfiguration":{"canaryConfiguration":{"canaryPercent":1e400}}}""", _token);
        Assert.Equal((400, "SerializationException"), (answer.Status, answer.Type));
    }

    [Theory]
    [InlineData("""{"clusterName":"\ud800"}""")]
    [InlineData("""{"clusterName":"ok","tags":[{"key":"\udc00x","value":"v"}]}""")]
    [InlineData("""{"clusterName":"ok","\ud800":1}""")]
    public async Task Half_a_surrogate_pair_is_a_serialization_exception(string body)
    {
        var answer = await _api.EcsAsync("CreateCluster", body, _token);
        Assert.Equal((400, "SerializationException"), (answer.Status, answer.Type));
    }

    [Theory]
    [InlineData("ListServices")]
    [InlineData("ListTasks")]
    [InlineData("ListContainerInstances")]
    [InlineData("DescribeServices")]
    public async Task A_cluster_name_no_cluster_can_have_is_refused_in_ecs_words(string action)
    {
        var name = new string('c', 2000);
        var answer = await _api.EcsAsync(action, $$"""{"cluster":"{{name}}","services":["s"]}""", _token);
        Assert.Equal((400, "InvalidParameterException", $"Cluster must match ^[a-zA-Z0-9\\-_]{{1,255}}$, but was {name}"),
            (answer.Status, answer.Type, answer.Message));
    }

    [Theory]
    [InlineData("DescribeTasks", """{"cluster":"nowhere","tasks":[]}""", "Tasks cannot be empty.")]
    [InlineData("DescribeTasks", """{"cluster":"input","tasks":[]}""", "Tasks cannot be empty.")]
    [InlineData("DescribeContainerInstances", """{"cluster":"nowhere","containerInstances":[]}""", "Container instance cannot be empty.")]
    [InlineData("DescribeContainerInstances", """{"cluster":"input","containerInstances":[]}""", "Container instance cannot be empty.")]
    public async Task An_empty_describe_list_is_refused_in_ecs_words_before_the_cluster_is_looked_up(string action, string body, string message)
    {
        var answer = await _api.EcsAsync(action, body, _token);
        Assert.Equal((400, "InvalidParameterException", message), (answer.Status, answer.Type, answer.Message));
    }

    [Theory]
    [InlineData("DescribeTasks", """{"cluster":"nowhere","tasks":["0123456789abcdef0123456789abcdef"]}""")]
    [InlineData("DescribeContainerInstances", """{"cluster":"nowhere","containerInstances":["0123456789abcdef0123456789abcdef"]}""")]
    public async Task A_describe_in_a_missing_cluster_is_cluster_not_found(string action, string body)
    {
        var answer = await _api.EcsAsync(action, body, _token);
        Assert.Equal((400, "ClusterNotFoundException"), (answer.Status, answer.Type));
    }

    [Fact]
    public async Task Describe_clusters_reports_a_name_no_cluster_can_have_as_missing()
    {
        var name = new string('c', 2000);
        var answer = await _api.EcsAsync("DescribeClusters", $$"""{"clusters":["{{name}}"]}""", _token);
        Assert.Equal(200, answer.Status);
        Assert.Equal("MISSING", answer.Body!["failures"]![0]!["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_next_token_longer_than_any_key_is_invalid()
    {
        var answer = await _api.EcsAsync("ListClusters", $$"""{"nextToken":"{{new string('x', 100_000)}}"}""", _token);
        Assert.Equal((400, "InvalidParameterException", "Invalid nextToken."), (answer.Status, answer.Type, answer.Message));
    }

    [Fact]
    public async Task A_request_whose_signature_leaves_out_the_action_is_refused()
    {
        // Correctly signed over host and date alone: the action could be swapped for any other.
        var answer = await _api.SendAsync("AmazonEC2ContainerServiceV20141113.DeleteCluster", """{"cluster":"input"}"""u8.ToArray(), _token,
            signedHeaders: "host;x-amz-date");

        Assert.Equal((400, "InvalidSignatureException", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."),
            (answer.Status, answer.Type, answer.Message));
        Assert.Equal(200, (await _api.EcsAsync("DescribeClusters", """{"clusters":["input"]}""", _token)).Status);
    }
}
