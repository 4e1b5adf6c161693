using Docker.DotNet;
using Docker.DotNet.Models;

namespace Serverless.Worker.Simulation;

internal sealed class SimulatedContainerOperations(SimulatedEngine engine) : IContainerOperations
{
    public Task<IList<ContainerListResponse>> ListContainersAsync(ContainersListParameters parameters, CancellationToken cancellationToken = default)
        => Task.FromResult(engine.List(parameters));

    public Task<CreateContainerResponse> CreateContainerAsync(CreateContainerParameters parameters, CancellationToken cancellationToken = default)
        => Task.FromResult(new CreateContainerResponse { ID = engine.Create(parameters).Id, Warnings = [] });

    public Task<ContainerInspectResponse> InspectContainerAsync(string id, CancellationToken cancellationToken = default)
        => Task.FromResult(engine.Inspect(id));

    public Task<bool> StartContainerAsync(string id, ContainerStartParameters parameters, CancellationToken cancellationToken = default)
        => engine.StartAsync(id, cancellationToken);

    public Task<bool> StopContainerAsync(string id, ContainerStopParameters parameters, CancellationToken cancellationToken = default)
        => Task.FromResult(engine.Stop(id, 143));

    public Task KillContainerAsync(string id, ContainerKillParameters parameters, CancellationToken cancellationToken = default)
    {
        // Docker refuses to kill a container that does not run.
        if (!engine.Stop(id, 137))
            throw new DockerApiException(System.Net.HttpStatusCode.Conflict, $"{{\"message\":\"Container {id} is not running\"}}");
        return Task.CompletedTask;
    }

    public Task RemoveContainerAsync(string id, ContainerRemoveParameters parameters, CancellationToken cancellationToken = default)
    {
        engine.Remove(id, parameters.Force == true);
        return Task.CompletedTask;
    }

    public Task GetContainerStatsAsync(string id, ContainerStatsParameters parameters, IProgress<ContainerStatsResponse> progress, CancellationToken cancellationToken = default)
    {
        if (parameters.Stream != false) throw SimulatedDockerClient.Unsupported("streamed container stats");
        progress.Report(engine.Stats(id));
        return Task.CompletedTask;
    }

    /// <summary>A simulated container writes nothing: its log is empty.</summary>
    public Task<MultiplexedStream> GetContainerLogsAsync(string id, bool tty, ContainerLogsParameters parameters, CancellationToken cancellationToken = default)
    {
        engine.Find(id);
        return Task.FromResult(new MultiplexedStream(new MemoryStream([]), !tty));
    }

    public Task<ContainerProcessesResponse> ListProcessesAsync(string id, ContainerListProcessesParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(ListProcessesAsync));
    public Task<Stream> GetContainerLogsAsync(string id, ContainerLogsParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported("GetContainerLogsAsync without tty");
    public Task GetContainerLogsAsync(string id, ContainerLogsParameters parameters, CancellationToken cancellationToken, IProgress<string> progress) => throw SimulatedDockerClient.Unsupported("GetContainerLogsAsync with progress");
    public Task<IList<ContainerFileSystemChangeResponse>> InspectChangesAsync(string id, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(InspectChangesAsync));
    public Task<Stream> ExportContainerAsync(string id, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(ExportContainerAsync));
    public Task<Stream> GetContainerStatsAsync(string id, ContainerStatsParameters parameters, CancellationToken cancellationToken) => throw SimulatedDockerClient.Unsupported("GetContainerStatsAsync as a stream");
    public Task ResizeContainerTtyAsync(string id, ContainerResizeParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(ResizeContainerTtyAsync));
    public Task RestartContainerAsync(string id, ContainerRestartParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(RestartContainerAsync));
    public Task RenameContainerAsync(string id, ContainerRenameParameters parameters, CancellationToken cancellationToken)
    {
        engine.Rename(id, parameters.NewName);
        return Task.CompletedTask;
    }
    public Task PauseContainerAsync(string id, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(PauseContainerAsync));
    public Task UnpauseContainerAsync(string id, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(UnpauseContainerAsync));
    public Task<MultiplexedStream> AttachContainerAsync(string id, bool tty, ContainerAttachParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(AttachContainerAsync));
    public Task<ContainerWaitResponse> WaitContainerAsync(string id, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(WaitContainerAsync));
    public Task<GetArchiveFromContainerResponse> GetArchiveFromContainerAsync(string id, GetArchiveFromContainerParameters parameters, bool statOnly, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(GetArchiveFromContainerAsync));
    public Task ExtractArchiveToContainerAsync(string id, ContainerPathStatParameters parameters, Stream stream, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(ExtractArchiveToContainerAsync));
    public Task<ContainersPruneResponse> PruneContainersAsync(ContainersPruneParameters? parameters = null, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(PruneContainersAsync));
    public Task<ContainerUpdateResponse> UpdateContainerAsync(string id, ContainerUpdateParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(UpdateContainerAsync));
}

/// <summary>Every image is present on a simulated engine: nothing is pulled.</summary>
internal sealed class SimulatedImageOperations(SimulatedEngine engine) : IImageOperations
{
    public Task<ImageInspectResponse> InspectImageAsync(string name, CancellationToken cancellationToken = default)
        => Task.FromResult(new ImageInspectResponse { ID = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name))), RepoTags = [name], Created = engine.Time.GetUtcNow().UtcDateTime });

    public Task CreateImageAsync(ImagesCreateParameters parameters, AuthConfig authConfig, IProgress<JSONMessage> progress, CancellationToken cancellationToken = default)
    {
        progress.Report(new JSONMessage { Status = $"Status: Image is up to date for {parameters.FromImage}:{parameters.Tag}" });
        return Task.CompletedTask;
    }

    public Task<IList<ImagesListResponse>> ListImagesAsync(ImagesListParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(ListImagesAsync));
    public Task BuildImageFromDockerfileAsync(ImageBuildParameters parameters, Stream contents, IEnumerable<AuthConfig> authConfigs, IDictionary<string, string> headers, IProgress<JSONMessage> progress, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(BuildImageFromDockerfileAsync));
    public Task<Stream> BuildImageFromDockerfileAsync(Stream contents, ImageBuildParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(BuildImageFromDockerfileAsync));
    public Task CreateImageAsync(ImagesCreateParameters parameters, AuthConfig authConfig, IDictionary<string, string> headers, IProgress<JSONMessage> progress, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported("CreateImageAsync with headers");
    public Task CreateImageAsync(ImagesCreateParameters parameters, Stream imageStream, AuthConfig authConfig, IProgress<JSONMessage> progress, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported("CreateImageAsync from a stream");
    public Task CreateImageAsync(ImagesCreateParameters parameters, Stream imageStream, AuthConfig authConfig, IDictionary<string, string> headers, IProgress<JSONMessage> progress, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported("CreateImageAsync from a stream");
    public Task<IList<ImageHistoryResponse>> GetImageHistoryAsync(string name, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(GetImageHistoryAsync));
    public Task PushImageAsync(string name, ImagePushParameters parameters, AuthConfig authConfig, IProgress<JSONMessage> progress, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(PushImageAsync));
    public Task TagImageAsync(string name, ImageTagParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(TagImageAsync));
    public Task<IList<IDictionary<string, string>>> DeleteImageAsync(string name, ImageDeleteParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(DeleteImageAsync));
    public Task<IList<ImageSearchResponse>> SearchImagesAsync(ImagesSearchParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(SearchImagesAsync));
    public Task<ImagesPruneResponse> PruneImagesAsync(ImagesPruneParameters? parameters = null, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(PruneImagesAsync));
    public Task<CommitContainerChangesResponse> CommitContainerChangesAsync(CommitContainerChangesParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(CommitContainerChangesAsync));
    public Task<Stream> SaveImageAsync(string name, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(SaveImageAsync));
    public Task<Stream> SaveImagesAsync(string[] names, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(SaveImagesAsync));
    public Task LoadImageAsync(ImageLoadParameters parameters, Stream imageStream, IProgress<JSONMessage> progress, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(LoadImageAsync));
}

internal sealed class SimulatedNetworkOperations(SimulatedEngine engine) : INetworkOperations
{
    public Task<IList<NetworkResponse>> ListNetworksAsync(NetworksListParameters? parameters = null, CancellationToken cancellationToken = default)
        => Task.FromResult(engine.ListNetworks(parameters));

    public Task<NetworkResponse> InspectNetworkAsync(string id, CancellationToken cancellationToken = default)
        => Task.FromResult(engine.FindNetwork(id) ?? throw new DockerNetworkNotFoundException(System.Net.HttpStatusCode.NotFound, $"{{\"message\":\"network {id} not found\"}}"));

    public Task<NetworksCreateResponse> CreateNetworkAsync(NetworksCreateParameters parameters, CancellationToken cancellationToken = default)
        => Task.FromResult(engine.CreateNetwork(parameters));

    public Task DeleteNetworkAsync(string id, CancellationToken cancellationToken = default)
    {
        engine.DeleteNetwork(id);
        return Task.CompletedTask;
    }

    public Task ConnectNetworkAsync(string id, NetworkConnectParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(ConnectNetworkAsync));
    public Task DisconnectNetworkAsync(string id, NetworkDisconnectParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(DisconnectNetworkAsync));
    public Task DeleteUnusedNetworksAsync(NetworksDeleteUnusedParameters? parameters = null, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(DeleteUnusedNetworksAsync));
    public Task<NetworksPruneResponse> PruneNetworksAsync(NetworksDeleteUnusedParameters? parameters = null, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(PruneNetworksAsync));
}

internal sealed class SimulatedVolumeOperations(SimulatedEngine engine) : IVolumeOperations
{
    public Task<VolumeResponse> CreateAsync(VolumesCreateParameters parameters, CancellationToken cancellationToken = default)
        => Task.FromResult(engine.CreateVolume(parameters));

    public Task<VolumeResponse> InspectAsync(string name, CancellationToken cancellationToken = default)
        => Task.FromResult(engine.InspectVolume(name));

    public Task RemoveAsync(string name, bool? force = null, CancellationToken cancellationToken = default)
    {
        engine.RemoveVolume(name);
        return Task.CompletedTask;
    }

    public Task<VolumesListResponse> ListAsync(CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported("Volumes.ListAsync");
    public Task<VolumesListResponse> ListAsync(VolumesListParameters parameters, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported("Volumes.ListAsync");
    public Task<VolumesPruneResponse> PruneAsync(VolumesPruneParameters? parameters = null, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported("Volumes.PruneAsync");
}

internal sealed class SimulatedSystemOperations(SimulatedEngine engine) : ISystemOperations
{
    public Task PingAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public Task<VersionResponse> GetVersionAsync(CancellationToken cancellationToken = default)
        => Task.FromResult(new VersionResponse { Version = "20.10.0-simulated", APIVersion = "1.41", MinAPIVersion = "1.12", Os = "linux", Arch = "amd64" });

    public Task<SystemInfoResponse> GetSystemInfoAsync(CancellationToken cancellationToken = default)
        => Task.FromResult(new SystemInfoResponse { NCPU = engine.Cpus, MemTotal = engine.MemoryBytes, ServerVersion = "20.10.0-simulated", OperatingSystem = "simulated", OSType = "linux", Architecture = "x86_64", CgroupVersion = "1" });

    public Task MonitorEventsAsync(ContainerEventsParameters parameters, IProgress<Message> progress, CancellationToken cancellationToken = default)
        => engine.MonitorAsync(parameters, progress, cancellationToken);

    public Task AuthenticateAsync(AuthConfig authConfig, CancellationToken cancellationToken = default) => throw SimulatedDockerClient.Unsupported(nameof(AuthenticateAsync));
    /// <summary>
    /// As the engine's <c>/events</c>: one JSON line per event (the form the worker's watcher reads),
    /// until <paramref name="cancellationToken"/> or the reader's disposal of the stream.
    /// </summary>
    public Task<Stream> MonitorEventsAsync(ContainerEventsParameters parameters, CancellationToken cancellationToken)
    {
        // The writer never pauses: a flush never waits, so the engine's publish never blocks on a slow reader.
        var pipe = new System.IO.Pipelines.Pipe(new System.IO.Pipelines.PipeOptions(pauseWriterThreshold: 0));
        var subscription = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var gate = new object();
        var monitoring = engine.MonitorAsync(parameters, new Serverless.Worker.Docker.Inline<Message>(message =>
        {
            lock (gate)
            {
                if (subscription.IsCancellationRequested) return;
                System.Buffers.BuffersExtensions.Write(pipe.Writer, Serverless.Worker.Docker.DockerEventLines.Line(message).AsSpan());
                // Completes at once (the writer never pauses); completed: the reader let go.
                if (pipe.Writer.FlushAsync().AsTask().GetAwaiter().GetResult().IsCompleted) _ = subscription.CancelAsync();
            }
        }), subscription.Token);
        if (monitoring.IsFaulted) return Task.FromException<Stream>(monitoring.Exception!.InnerException!);
        _ = monitoring.ContinueWith(t =>
        {
            lock (gate) pipe.Writer.Complete(t.Exception?.InnerException);
            subscription.Dispose();
        }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        return Task.FromResult(pipe.Reader.AsStream());
    }
}
