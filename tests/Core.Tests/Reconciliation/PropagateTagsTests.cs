using Serverless.Core.Tags;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Reconciliation;

/// <summary>The tags a service's tasks get from <c>propagateTags</c>, as the reconciler starts them.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class PropagateTagsTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly ReconcilerTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;

    public async Task InitializeAsync()
    {
        await _tables.InitializeAsync(_token);
        await _tables.RegisterInstanceAsync(_token);
        await _tables.Api.RegisterAsync("tagged", _token, """, "tags": [{"key": "from", "value": "definition"}]""");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<IReadOnlyList<Tag>> TaskTagsAsync(string propagateTags)
    {
        await _tables.Api.CallAsync("CreateService", $$"""
            {"cluster":"{{_tables.Cluster}}","serviceName":"web","taskDefinition":"tagged","desiredCount":1,
             "tags":[{"key":"from","value":"service"}],"propagateTags":"{{propagateTags}}"}
            """, _token);
        await _tables.NewReconciler().ReconcileAsync(new(_tables.Cluster, "web"), _token);
        return Assert.Single(await _tables.ServiceTasksAsync("web", _token)).Tags;
    }

    [Fact]
    public async Task With_TASK_DEFINITION_a_task_gets_the_task_definitions_tags()
        => Assert.Equal([new Tag("from", "definition")], await TaskTagsAsync("TASK_DEFINITION"));

    [Fact]
    public async Task With_SERVICE_a_task_gets_the_services_tags()
        => Assert.Equal([new Tag("from", "service")], await TaskTagsAsync("SERVICE"));

    [Fact]
    public async Task With_NONE_a_task_gets_no_tags()
        => Assert.Empty(await TaskTagsAsync("NONE"));
}
