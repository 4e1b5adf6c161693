using System.Net;
using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests.Faults;

/// <summary>
/// A control plane, storage and workers of their own, for faults that would disturb other tests.
/// Storage is on disk, so it keeps its data across a restart; the deadlines for what no event
/// announces (an unacknowledged start, a reservation whose task never appeared) are 30 s instead of
/// 5 minutes, so a fault converges within the tests' bound; the wake port is known, to flood it.
/// </summary>
public sealed class FaultPlaneFixture : ControlPlaneFixture
{
    public int WakePort { get; } = FreeUdpPort();

    protected override bool PersistentStorage => true;

    protected override IReadOnlyDictionary<string, string> ControlPlaneSettings => new Dictionary<string, string>
    {
        // The product's 3 minutes, not the other end-to-end tests' 10 s: a fault that silences a worker for
        // a minute (storage gone) must not have its tasks taken for lost when the minute's health sweep
        // runs between storage coming back and the worker's next heartbeat landing.
        ["Ecs__AgentLostAfterSeconds"] = "180",
        ["Ecs__TaskStartDeadlineSeconds"] = "30",
        ["Ecs__OrphanReservationGraceSeconds"] = "30",
        ["Ecs__WakePort"] = WakePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static int FreeUdpPort()
    {
        using var socket = new System.Net.Sockets.UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.Client.LocalEndPoint!).Port;
    }
}

/// <summary>
/// The fault catalogue: each test injects one fault into a running system (Azurite, control plane,
/// workers, Docker), then checks <see cref="ClusterInvariants"/> within a bound and records how long
/// convergence took (<see cref="FaultFigures"/>). They run in their own stages of <c>scripts/test.sh</c>,
/// after the rest of the suite, and several times over with <c>scripts/faults.sh</c>. Each class has
/// a fixture (control plane, storage, workers) of its own, so the classes run side by side; the one
/// that restarts the Docker engine is marked <c>Restarts=Docker</c> and runs alone, last.
/// </summary>
public abstract class FaultCatalogue(FaultPlaneFixture fixture) : IClassFixture<FaultPlaneFixture>, IAsyncLifetime
{
    protected FaultPlaneFixture Plane { get; } = fixture;

    protected const string Image = "local/busybox:latest";
    protected static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => Plane.StopWorkersAsync();

    /// <summary>
    /// Waits for the invariants and records the figures of <paramref name="fault"/>; a test with
    /// assertions of its own after convergence records with <paramref name="andThen"/> done first.
    /// </summary>
    protected async Task ConvergedAsync(string fault, string cluster, IReadOnlyCollection<string> acknowledged, Func<Task>? andThen = null)
    {
        var took = await ClusterInvariants.ConvergeAsync(Plane, cluster, acknowledged, Bound);
        if (andThen is not null) await andThen();
        var last = await ClusterInvariants.ViolationsAsync(Plane, cluster, acknowledged);
        Assert.Empty(last);
        FaultFigures.Record(fault, took,
            writesLost: last.Count(v => v.StartsWith("acknowledged task lost", StringComparison.Ordinal)),
            orphans: last.Count(v => v.StartsWith("orphan container", StringComparison.Ordinal)));
    }

    protected Task ConvergeBeforeFaultAsync(string cluster) => ClusterInvariants.ConvergeAsync(Plane, cluster, [], Bound);

    protected async Task<string> ClusterAsync(string name)
    {
        var cluster = $"{name}-{Guid.NewGuid():N}"[..30];
        _ = await Plane.Client.EcsOkAsync("CreateCluster", new() { ["clusterName"] = cluster });
        return cluster;
    }

    // Task-level memory, so a task's reservation reads back from DescribeTasks.
    protected async Task<string> RegisterAsync(string family, string command = "sleep 600")
        => (await Plane.Client.EcsOkAsync("RegisterTaskDefinition", new()
        {
            ["family"] = family,
            ["memory"] = "32",
            ["containerDefinitions"] = new JsonArray(new JsonObject
            {
                ["name"] = "main",
                ["image"] = Image,
                ["essential"] = true,
                ["entryPoint"] = new JsonArray("sh", "-c"),
                ["command"] = new JsonArray($"trap 'exit 0' TERM; {command} & wait"),
            }),
        }))["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();

    protected static JsonObject RunTask(string cluster, string definition, string clientToken, int count = 1)
        => new() { ["cluster"] = cluster, ["taskDefinition"] = definition, ["clientToken"] = clientToken, ["count"] = count };

    protected static IEnumerable<string> TaskArns(JsonNode runTaskResponse)
        => runTaskResponse["tasks"]!.AsArray().Select(t => t!["taskArn"]!.GetValue<string>());
}
