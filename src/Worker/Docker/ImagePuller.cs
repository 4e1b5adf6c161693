using System.Collections.Concurrent;
using System.Text.Json;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging;

namespace Serverless.Worker.Docker;

/// <summary>
/// Makes an image present: a local image is used as it is (ECS_IMAGE_PULL_BEHAVIOR=prefer-cached),
/// anything else is pulled, bounded by <see cref="WorkerOptions.ImagePullTimeoutSeconds"/> so a
/// registry that never answers cannot hold a task in PENDING forever.
/// </summary>
public sealed class ImagePuller(IDockerClient docker, WorkerOptions options, ILogger<ImagePuller> logger)
{
    /// <summary>Images found present before. A hint only: a create that finds one gone calls <see cref="Forget"/> and ensures it again.</summary>
    private readonly ConcurrentDictionary<string, byte> _seen = new(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="image"/> was present when last looked at, so a start may skip looking again.</summary>
    public bool SeenPresent(string image) => _seen.ContainsKey(image);

    public void Forget(string image) => _seen.TryRemove(image, out _);

    /// <summary>Null when the image is present (now), else the failure in ECS's words (<c>CannotPullContainerError: …</c>).</summary>
    public async Task<string?> EnsureAsync(string image, CancellationToken cancellationToken)
    {
        if (await IsPresentAsync(image, cancellationToken)) return null;

        var (repository, tag) = SplitReference(image);
        var timeout = TimeSpan.FromSeconds(options.ImagePullTimeoutSeconds);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        string? streamError = null;
        try
        {
            logger.LogInformation("Pulling {Image}", image);
            await docker.Images.CreateImageAsync(
                new ImagesCreateParameters { FromImage = repository, Tag = tag },
                new AuthConfig(),
                new Inline<JSONMessage>(m => streamError ??= m.Error?.Message ?? (string.IsNullOrEmpty(m.ErrorMessage) ? null : m.ErrorMessage)),
                deadline.Token);
        }
        catch (DockerApiException e)
        {
            return Failure(DaemonMessage(e));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Failure($"context deadline exceeded: pulling {image} took longer than {timeout.TotalSeconds:0} s");
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return Failure(e.Message);
        }

        if (streamError is not null) return Failure(streamError);
        return await IsPresentAsync(image, cancellationToken) ? null : Failure($"image {image} is not present after its pull");
    }

    private async Task<bool> IsPresentAsync(string image, CancellationToken cancellationToken)
    {
        try
        {
            await docker.Images.InspectImageAsync(image, cancellationToken);
            if (_seen.Count > 10_000) _seen.Clear();
            _seen[image] = 0;
            return true;
        }
        catch (DockerImageNotFoundException)
        {
            return false;
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    /// <summary>As the agent words it, which is how the Docker CLI shows a daemon error.</summary>
    private static string Failure(string message) => $"CannotPullContainerError: Error response from daemon: {message}";

    /// <summary>
    /// Repository and tag for the pull API: a reference without tag or digest means <c>latest</c>
    /// (the API would otherwise pull every tag); a digest reference is pulled as it is.
    /// </summary>
    public static (string Repository, string? Tag) SplitReference(string image)
    {
        if (image.Contains('@')) return (image, null);
        var lastSlash = image.LastIndexOf('/');
        var colon = image.LastIndexOf(':');
        return colon > lastSlash ? (image[..colon], image[(colon + 1)..]) : (image, "latest");
    }

    /// <summary>The daemon's own message from an API error (<c>{"message": "..."}</c>), else the exception's.</summary>
    public static string DaemonMessage(DockerApiException e)
    {
        try
        {
            using var body = JsonDocument.Parse(e.ResponseBody ?? "");
            if (body.RootElement.TryGetProperty("message", out var message) && message.GetString() is { Length: > 0 } text) return text.Trim();
        }
        catch (JsonException)
        {
            // Not JSON: use what there is.
        }
        return string.IsNullOrWhiteSpace(e.ResponseBody) ? e.Message : e.ResponseBody.Trim();
    }
}

/// <summary>
/// An <see cref="IProgress{T}"/> that runs its handler on the reporting thread, in order
/// (<see cref="Progress{T}"/> posts to the thread pool, which reorders Docker's events).
/// </summary>
public sealed class Inline<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
