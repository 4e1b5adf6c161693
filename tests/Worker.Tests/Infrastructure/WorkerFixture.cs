using Docker.DotNet;
using Serverless.TestSupport;

namespace Serverless.Worker.Tests.Infrastructure;

/// <summary>
/// What the worker's Docker tests share within one class: their own Azurite (the <c>task-events</c>
/// queue has a fixed name, so classes must not share a storage account) and the checked Docker
/// engine. Every container, volume and network made under an instance id handed out here is removed on dispose.
/// </summary>
public sealed class WorkerFixture : IAsyncLifetime
{
    private readonly AzuriteFixture _azurite = new();
    private readonly List<string> _instanceIds = [];

    public IDockerClient Docker { get; } = DockerEngine.CreateClient();

    public string ConnectionString => _azurite.ConnectionString;

    /// <summary>The reports every worker of this class sent.</summary>
    public TaskEventsProbe Events { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        await DockerEngine.EnsureReadyAsync(Docker);
        await _azurite.InitializeAsync();
        Events = new TaskEventsProbe(_azurite.CreateQueueServiceClient().GetQueueClient(Serverless.Core.Tasks.TaskMessages.TaskEventsQueue));
    }

    /// <summary>A fresh container instance id, cleaned up with the fixture.</summary>
    public string NewInstanceId()
    {
        var id = Guid.NewGuid().ToString("N");
        lock (_instanceIds) _instanceIds.Add(id);
        return id;
    }

    public async Task DisposeAsync()
    {
        foreach (var id in _instanceIds) await DockerEngine.RemoveInstanceAsync(Docker, id);
        await _azurite.DisposeAsync();
        Docker.Dispose();
    }
}
