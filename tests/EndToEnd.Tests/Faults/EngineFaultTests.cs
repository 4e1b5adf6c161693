namespace Serverless.EndToEnd.Tests.Faults;

/// <summary>The Docker engine restarted: it stops every container on the machine, so it runs alone, after every other test.</summary>
[Trait("Category", "Fault")]
[Trait("Restarts", "Docker")]
public sealed class EngineFaultTests(FaultPlaneFixture fixture) : FaultCatalogue(fixture)
{
    // An exit the stopping engine never sent is caught by the worker's periodic resync
    // (Worker__ContainerResyncSeconds), which bounds this fault's convergence.
    [Fact]
    public async Task Docker_daemon_restarted_under_a_service()
    {
        var cluster = await ClusterAsync("dockerd");
        await Plane.StartWorkerAsync(cluster);
        var definition = await RegisterAsync("dockerd");
        _ = await Plane.Client.EcsOkAsync("CreateService", new() { ["cluster"] = cluster, ["serviceName"] = "web", ["taskDefinition"] = definition, ["desiredCount"] = 3 });
        await ConvergeBeforeFaultAsync(cluster);

        await DockerEngine.RestartAsync();

        await ConvergedAsync(nameof(Docker_daemon_restarted_under_a_service), cluster, []);
    }
}
