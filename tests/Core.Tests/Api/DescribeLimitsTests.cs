using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Api;

/// <summary>
/// Each Describe* action takes at most the number of items botocore's ECS model documents, and
/// refuses more with ECS's InvalidParameterException and wording; the maximum itself is accepted.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class DescribeLimitsTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromMinutes(2));
    private readonly string _cluster = TestNames.Unique("limits");
    private ServiceProvider _services = null!;
    private ActionRegistry _registry = null!;

    public async Task InitializeAsync()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AzureWebJobsStorage"] = azurite.ConnectionString,
            ["Ecs:StoragePrefix"] = TestNames.Unique(nameof(DescribeLimitsTests)),
            ["Ecs:Region"] = "us-east-1",
            ["Ecs:AccountId"] = "000000000000",
        }).Build();
        _services = new ServiceCollection().AddLogging().AddControlPlane(configuration).BuildServiceProvider();
        _registry = _services.GetRequiredService<ActionRegistry>();
        await CallAsync("CreateCluster", $$"""{"clusterName":"{{_cluster}}"}""");
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        _timeout.Dispose();
    }

    [Theory]
    [InlineData("DescribeClusters", "clusters", 100, "clusters can have at most 100 items.")]
    [InlineData("DescribeServices", "services", 10, "service names can have at most 10 items.")]
    [InlineData("DescribeTasks", "tasks", 100, "taskIds can have at most 100 items.")]
    [InlineData("DescribeContainerInstances", "containerInstances", 100, "instanceIds can have at most 100 items.")]
    public async Task A_describe_call_naming_more_items_than_ECS_allows_is_refused_with_ECS_wording(string action, string member, int max, string message)
    {
        string Request(int count) => new JsonObject
        {
            ["cluster"] = _cluster,
            [member] = new JsonArray(Enumerable.Range(0, count).Select(i => (JsonNode)JsonValue.Create($"item{i}")!).ToArray()),
        }.ToJsonString();

        var refused = await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync(action, Request(max + 1)));
        var answered = await CallAsync(action, Request(max));

        Assert.Equal(message, refused.Message);
        Assert.Equal(max, answered["failures"]!.AsArray().Count);
    }

    private async Task<JsonObject> CallAsync(string action, string json)
    {
        var request = RequestValidator.Validate(ServiceModel.Ecs, ServiceModel.Ecs.InputOf(action)!, JsonNode.Parse(json)!.AsObject());
        Assert.True(_registry.TryGet($"{ActionRegistry.EcsTargetPrefix}.{action}", out var handler));
        return await handler(request, new RequestContext("AKIDTEST"), _timeout.Token);
    }
}
