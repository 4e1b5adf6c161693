using Docker.DotNet;
using Docker.DotNet.Models;

namespace Serverless.Worker.Simulation;

/// <summary>
/// A container engine in memory, behind Docker.DotNet's <see cref="IDockerClient"/>: for scale runs
/// only (thousands of workers in one process, <c>bench/ScaleSim</c>), chosen by
/// <c>Worker__Engine=simulated</c> and never by default. It implements the operations the worker
/// uses, with Docker's answers and errors: containers are created, "start" after
/// <see cref="SimulatedEngine.StartDelay"/>, run until stopped, killed or removed (or
/// <see cref="SimulatedEngine.Exit"/>), report synthetic stats, and emit <c>start</c>, <c>die</c>,
/// <c>destroy</c> and <c>health_status</c> events on the event stream. Nothing runs: no process,
/// no network, no image. Any other operation throws <see cref="NotSupportedException"/>.
/// </summary>
public sealed class SimulatedDockerClient : IDockerClient
{
    public SimulatedDockerClient(SimulatedEngine engine)
    {
        Engine = engine;
        Containers = new SimulatedContainerOperations(engine);
        Images = new SimulatedImageOperations(engine);
        Networks = new SimulatedNetworkOperations(engine);
        Volumes = new SimulatedVolumeOperations(engine);
        System = new SimulatedSystemOperations(engine);
    }

    /// <summary>The engine's state, for a scale run or a test to act on (make a container exit, count what runs).</summary>
    public SimulatedEngine Engine { get; }

    public IContainerOperations Containers { get; }
    public IImageOperations Images { get; }
    public INetworkOperations Networks { get; }
    public IVolumeOperations Volumes { get; }
    public ISystemOperations System { get; }
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromMinutes(5);

    public DockerClientConfiguration Configuration => throw Unsupported(nameof(Configuration));
    public ISecretsOperations Secrets => throw Unsupported(nameof(Secrets));
    public IConfigOperations Configs => throw Unsupported(nameof(Configs));
    public ISwarmOperations Swarm => throw Unsupported(nameof(Swarm));
    public ITasksOperations Tasks => throw Unsupported(nameof(Tasks));
    public IPluginOperations Plugin => throw Unsupported(nameof(Plugin));
    public IExecOperations Exec => throw Unsupported(nameof(Exec));

    public void Dispose()
    {
    }

    internal static NotSupportedException Unsupported(string operation)
        => new($"The simulated container engine (Worker__Engine=simulated) does not implement {operation}: the worker does not use it.");
}
