using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.TaskProtection;
using Serverless.Core.Tasks;
using Serverless.Core.Tests.Services;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Tasks;

/// <summary>UpdateTaskProtection and GetTaskProtection over real Table Storage, answered as ECS answers them.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TaskProtectionActionsTests(AzuriteFixture azurite) : IAsyncLifetime
{
    private readonly ServiceTables _tables = new(azurite);
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private TaskStore _tasks = null!;
    private ActionRegistry _registry = null!;

    public async Task InitializeAsync()
    {
        await _tables.InitializeAsync(_token);
        _tasks = new TaskStore(new StorageClients(azurite.ConnectionString, _tables.Options), _tables.Arns);
        _registry = new ActionRegistry([new TaskProtectionActions(_tables.Clusters, _tasks, _tables.Arns, _tables.Time)]);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<JsonObject> CallAsync(string action, string json)
    {
        var request = RequestValidator.Validate(ServiceModel.Ecs, ServiceModel.Ecs.InputOf(action)!, JsonNode.Parse(json)!.AsObject());
        Assert.True(_registry.TryGet($"{ActionRegistry.EcsTargetPrefix}.{action}", out var handler));
        return JsonNode.Parse((await handler(request, new RequestContext("AKIDTEST"), _token)).ToJsonString(AwsJson.Options))!.AsObject();
    }

    private async Task<TaskRecord> TaskAsync(string group) => await _tasks.InsertAsync(new TaskRecord
    {
        Cluster = _tables.Cluster,
        Id = TaskIds.New(group),
        Group = group,
        TaskDefinitionArn = _tables.DefinitionArn("web:1"),
        Family = "web",
        ContainerInstanceId = "i1",
        LastStatus = EcsTaskStatus.Running,
        CreatedAt = _tables.Time.GetUtcNow(),
    }, _token);

    [Fact]
    public async Task A_services_task_is_protected_for_120_minutes_by_default_and_others_are_failures()
    {
        var task = await TaskAsync("service:web");
        var standalone = await TaskAsync("family:web");
        var now = _tables.Time.GetUtcNow();
        var result = await CallAsync("UpdateTaskProtection",
            $$"""{"cluster":"{{_tables.Cluster}}","tasks":["{{task.Id}}","{{standalone.Id}}","0123456789abcdef0123456789abcdef"],"protectionEnabled":true}""");
        var protectedTask = Assert.Single(result["protectedTasks"]!.AsArray())!;
        Assert.Equal(_tables.Arns.Task(_tables.Cluster, task.Id), protectedTask["taskArn"]!.GetValue<string>());
        Assert.True(protectedTask["protectionEnabled"]!.GetValue<bool>());
        Assert.Equal(AwsJson.Timestamp(now.AddMinutes(120)).GetValue<double>(), protectedTask["expirationDate"]!.GetValue<double>());
        Assert.Equal(["TASK_NOT_VALID", "MISSING"], result["failures"]!.AsArray().Select(f => f!["reason"]!.GetValue<string>()));
        Assert.Equal(now.AddMinutes(120), (await _tasks.FindAsync(_tables.Cluster, task.Id, _token))!.ProtectedUntil);

        // Protection ends by itself at its expiry, or when turned off.
        _tables.Time.Advance(TimeSpan.FromMinutes(121));
        var got = (await CallAsync("GetTaskProtection", $$"""{"cluster":"{{_tables.Cluster}}","tasks":["{{task.Id}}"]}"""))["protectedTasks"]![0]!;
        Assert.False(got["protectionEnabled"]!.GetValue<bool>());
        Assert.Null(got["expirationDate"]);
        await CallAsync("UpdateTaskProtection", $$"""{"cluster":"{{_tables.Cluster}}","tasks":["{{task.Id}}"],"protectionEnabled":true,"expiresInMinutes":5}""");
        await CallAsync("UpdateTaskProtection", $$"""{"cluster":"{{_tables.Cluster}}","tasks":["{{task.Id}}"],"protectionEnabled":false}""");
        Assert.Null((await _tasks.FindAsync(_tables.Cluster, task.Id, _token))!.ProtectedUntil);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2881)]
    public async Task An_expiry_outside_1_to_2880_minutes_is_an_InvalidParameterException(int minutes)
    {
        var task = await TaskAsync("service:web");
        await Assert.ThrowsAsync<InvalidParameterException>(() => CallAsync("UpdateTaskProtection",
            $$"""{"cluster":"{{_tables.Cluster}}","tasks":["{{task.Id}}"],"protectionEnabled":true,"expiresInMinutes":{{minutes}}}"""));
    }
}

public sealed class TaskProtectionRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 2, 12, 0, 0, TimeSpan.Zero);

    private static TaskRecord Task(DateTimeOffset? until) => new()
    {
        Cluster = "c", Id = "0123456789abcdef0123456789abcdef", Group = "service:web", TaskDefinitionArn = "arn:td", Family = "web",
        ContainerInstanceId = "i1", ProtectedUntil = until,
    };

    [Fact]
    public void The_agent_endpoint_answers_as_the_ECS_agent_shapes_it()
    {
        var on = TaskProtectionRules.AgentState("arn:task", Task(Now.AddMinutes(60)), Now);
        Assert.Equal("""{"protection":{"ProtectionEnabled":true,"TaskArn":"arn:task","ExpirationDate":"2026-12-02T13:00:00Z"}}""", on.ToJsonString());
        var off = TaskProtectionRules.AgentState("arn:task", Task(Now.AddMinutes(-1)), Now);
        Assert.Equal("""{"protection":{"ProtectionEnabled":false,"TaskArn":"arn:task","ExpirationDate":null}}""", off.ToJsonString());
    }

    [Fact]
    public void Protection_lasts_120_minutes_by_default_and_ends_when_disabled()
    {
        Assert.Equal(Now.AddMinutes(120), TaskProtectionRules.Until(true, null, Now));
        Assert.Equal(Now.AddMinutes(1), TaskProtectionRules.Until(true, 1, Now));
        Assert.Null(TaskProtectionRules.Until(false, 60, Now));
        Assert.NotNull(TaskProtectionRules.MinutesProblem(true, 2881));
        Assert.Null(TaskProtectionRules.MinutesProblem(false, 2881));      // the expiry does not matter when disabling
        Assert.Null(TaskProtectionRules.MinutesProblem(true, 2880));
    }
}
