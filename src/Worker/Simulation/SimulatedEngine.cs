using System.Globalization;
using System.Net;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Serverless.Worker.Simulation;

/// <summary>
/// The state of one simulated engine (one host): its containers, networks and volumes, and the
/// subscribers of its event stream. Thread-safe; every change is made under one lock and its events
/// are delivered after it, in order. Containers start <see cref="StartDelay"/> after the start call
/// (the call returns then, as Docker's does once the process runs), exit with 143 on a stop (their
/// process honours SIGTERM), 137 on a kill, or with any code given to <see cref="Exit"/>.
/// </summary>
public sealed class SimulatedEngine(TimeProvider time, TimeSpan startDelay, int cpus = 4, long memoryBytes = 16L << 30)
{
    private readonly object _gate = new();
    private readonly Dictionary<string, SimulatedContainer> _containers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NetworkResponse> _networks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, VolumeResponse> _volumes = new(StringComparer.Ordinal);
    private readonly List<Subscriber> _subscribers = [];
    // Docker keeps recent events for "since"; so does this engine, bounded.
    private readonly LinkedList<Message> _recent = new();
    private const int RecentEvents = 256;
    private int _nextHostPort = 32768;
    private int _nextAddress = 2;

    public TimeProvider Time { get; } = time;
    public TimeSpan StartDelay { get; } = startDelay;
    public int Cpus { get; } = cpus;
    public long MemoryBytes { get; } = memoryBytes;

    /// <summary>Containers that run now.</summary>
    public int Running
    {
        get
        {
            lock (_gate) return _containers.Values.Count(c => c.Running);
        }
    }

    /// <summary>Containers the engine has, in any state.</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _containers.Count;
        }
    }

    /// <summary>The running containers' ids.</summary>
    public IReadOnlyList<string> RunningIds()
    {
        lock (_gate) return _containers.Values.Where(c => c.Running).Select(c => c.Id).ToList();
    }

    /// <summary>Makes a running container's process exit with <paramref name="exitCode"/> (the task's work is done, or it crashed).</summary>
    public bool Exit(string id, int exitCode)
    {
        Message? died;
        lock (_gate)
        {
            if (!_containers.TryGetValue(id, out var container) || !container.Running) return false;
            died = Die(container, exitCode);
        }
        Publish(died);
        return true;
    }

    internal SimulatedContainer Create(CreateContainerParameters parameters)
    {
        lock (_gate)
        {
            var name = parameters.Name is { Length: > 0 } n ? n : "sim_" + Guid.NewGuid().ToString("N")[..12];
            if (_containers.Values.Any(c => c.Name == name))
                throw new DockerApiException(HttpStatusCode.Conflict, $"{{\"message\":\"Conflict. The container name \\\"/{name}\\\" is already in use\"}}");
            var container = new SimulatedContainer(Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N"), name, parameters, Time.GetUtcNow());
            _containers[container.Id] = container;
            return container;
        }
    }

    /// <summary>Docker's rename: a name in use by another container is a conflict.</summary>
    internal void Rename(string id, string newName)
    {
        lock (_gate)
        {
            var container = FindLocked(id);
            newName = newName.TrimStart('/');
            if (_containers.Values.Any(c => c.Name == newName && c != container))
                throw new DockerApiException(HttpStatusCode.Conflict, $"{{\"message\":\"Conflict. The container name \\\"/{newName}\\\" is already in use\"}}");
            container.Name = newName;
        }
    }

    internal SimulatedContainer Find(string id)
    {
        lock (_gate)
        {
            return FindLocked(id);
        }
    }

    private SimulatedContainer FindLocked(string id)
    {
        if (_containers.TryGetValue(id, out var container)) return container;
        // Docker takes a name or a unique id prefix too.
        var matches = _containers.Values.Where(c => c.Name == id.TrimStart('/') || c.Id.StartsWith(id, StringComparison.Ordinal)).Take(2).ToList();
        return matches.Count == 1
            ? matches[0]
            : throw new DockerContainerNotFoundException(HttpStatusCode.NotFound, $"{{\"message\":\"No such container: {id}\"}}");
    }

    internal async Task<bool> StartAsync(string id, CancellationToken cancellationToken)
    {
        var container = Find(id);
        lock (_gate)
        {
            if (container.Running || container.Starting) return false;
            container.Starting = true;
        }
        try
        {
            if (StartDelay > TimeSpan.Zero) await Task.Delay(StartDelay, Time, cancellationToken);
        }
        finally
        {
            lock (_gate) container.Starting = false;
        }
        var events = new List<Message>();
        lock (_gate)
        {
            if (container.Removed) throw new DockerContainerNotFoundException(HttpStatusCode.NotFound, $"{{\"message\":\"No such container: {id}\"}}");
            container.Running = true;
            container.StartedAt = Time.GetUtcNow();
            container.FinishedAt = null;
            container.ExitCode = 0;
            container.HostPorts = AssignPorts(container.Parameters);
            if (container.Parameters.HostConfig?.NetworkMode is { Length: > 0 } mode && _networks.ContainsKey(mode))
                container.Address = $"10.{(_nextAddress >> 16) & 255}.{(_nextAddress >> 8) & 255}.{_nextAddress++ & 255}";
            events.Add(Event(container, "start"));
            if (container.Parameters.Healthcheck is { Test.Count: > 0 } check && check.Test[0] != "NONE")
            {
                // Every simulated health check passes at its first run.
                container.Health = "healthy";
                events.Add(Event(container, "health_status: healthy"));
            }
        }
        foreach (var message in events) Publish(message);
        return true;
    }

    internal bool Stop(string id, int exitCode)
    {
        Message? died;
        lock (_gate)
        {
            var container = FindLocked(id);
            if (!container.Running) return false;
            died = Die(container, exitCode);
        }
        Publish(died);
        return true;
    }

    internal void Remove(string id, bool force)
    {
        var events = new List<Message>();
        lock (_gate)
        {
            var container = FindLocked(id);
            if (container.Running && !force)
                throw new DockerApiException(HttpStatusCode.Conflict, $"{{\"message\":\"You cannot remove a running container {container.Id}. Stop the container before attempting removal or force remove\"}}");
            if (container.Running) events.Add(Die(container, 137));
            container.Removed = true;
            _containers.Remove(container.Id);
            events.Add(Event(container, "destroy"));
        }
        foreach (var message in events) Publish(message);
    }

    internal IList<ContainerListResponse> List(ContainersListParameters parameters)
    {
        var filters = parameters.Filters ?? new Dictionary<string, IDictionary<string, bool>>();
        foreach (var key in filters.Keys)
        {
            if (key is not ("label" or "id" or "name" or "status"))
                throw SimulatedDockerClient.Unsupported($"the container list filter '{key}'");
        }
        lock (_gate)
        {
            return _containers.Values
                .Where(c => parameters.All == true || c.Running)
                .Where(c => Matches(filters, "label", l => HasLabel(c.Labels, l)))
                .Where(c => Matches(filters, "id", i => c.Id.StartsWith(i, StringComparison.Ordinal)))
                .Where(c => Matches(filters, "name", n => c.Name.Contains(n.TrimStart('/'), StringComparison.Ordinal)))
                .Where(c => Matches(filters, "status", s => s == c.Status))
                .OrderByDescending(c => c.Created)
                .Select(c => new ContainerListResponse
                {
                    ID = c.Id,
                    Names = ["/" + c.Name],
                    Image = c.Parameters.Image,
                    Created = c.Created.UtcDateTime,
                    Labels = new Dictionary<string, string>(c.Labels),
                    State = c.Status,
                    Status = c.Running ? "Up" : c.FinishedAt is null ? "Created" : $"Exited ({c.ExitCode})",
                })
                .ToList();
        }
    }

    internal ContainerInspectResponse Inspect(string id)
    {
        lock (_gate)
        {
            var c = FindLocked(id);
            var networks = new Dictionary<string, EndpointSettings>(StringComparer.Ordinal);
            if (c.Running && c.Address is { } address && c.Parameters.HostConfig?.NetworkMode is { } mode)
                networks[mode] = new EndpointSettings { IPAddress = address, MacAddress = "02:42:0a:00:00:02", NetworkID = _networks[mode].ID };
            return new ContainerInspectResponse
            {
                ID = c.Id,
                Name = "/" + c.Name,
                Created = c.Created.UtcDateTime,
                Image = c.Parameters.Image,
                Config = new Config { Image = c.Parameters.Image, Labels = new Dictionary<string, string>(c.Labels), Healthcheck = c.Parameters.Healthcheck },
                HostConfig = c.Parameters.HostConfig,
                State = new ContainerState
                {
                    Status = c.Status,
                    Running = c.Running,
                    ExitCode = c.ExitCode,
                    Pid = c.Running ? 1000 : 0,
                    StartedAt = Timestamp(c.StartedAt),
                    FinishedAt = Timestamp(c.FinishedAt),
                    Health = c.Health is { } health ? new Health { Status = health } : null,
                },
                NetworkSettings = new NetworkSettings
                {
                    Ports = c.Running ? c.HostPorts : new Dictionary<string, IList<PortBinding>>(),
                    Networks = networks,
                },
            };
        }
    }

    internal ContainerStatsResponse Stats(string id)
    {
        var now = Time.GetUtcNow();
        lock (_gate)
        {
            var c = FindLocked(id);
            // A steady tenth of a core and 32 MiB per running container; a stopped one reads zero.
            var ran = c.Running && c.StartedAt is { } started ? now - started : TimeSpan.Zero;
            var usage = (ulong)(ran.Ticks * 100 / 10);
            var system = (ulong)((now - DateTimeOffset.UnixEpoch).Ticks * 100) * (ulong)Cpus;
            var limit = c.Parameters.HostConfig?.Memory is > 0 and var memory ? (ulong)memory : (ulong)MemoryBytes;
            return new ContainerStatsResponse
            {
                ID = c.Id,
                Name = "/" + c.Name,
                Read = now.UtcDateTime,
                PreRead = now.UtcDateTime,
                CPUStats = new CPUStats { CPUUsage = new CPUUsage { TotalUsage = usage }, SystemUsage = system, OnlineCPUs = (uint)Cpus },
                PreCPUStats = new CPUStats { CPUUsage = new CPUUsage() },
                MemoryStats = c.Running
                    ? new MemoryStats { Usage = 32UL << 20, MaxUsage = 32UL << 20, Limit = limit, Stats = new Dictionary<string, ulong> { ["cache"] = 0, ["inactive_file"] = 0 } }
                    : new MemoryStats(),
            };
        }
    }

    internal NetworkResponse? FindNetwork(string idOrName)
    {
        lock (_gate)
        {
            if (idOrName == "bridge") return Bridge;
            return _networks.TryGetValue(idOrName, out var byName) ? byName : _networks.Values.FirstOrDefault(n => n.ID == idOrName);
        }
    }

    internal IList<NetworkResponse> ListNetworks(NetworksListParameters? parameters)
    {
        var filters = parameters?.Filters ?? new Dictionary<string, IDictionary<string, bool>>();
        foreach (var key in filters.Keys)
        {
            if (key is not ("name" or "label")) throw SimulatedDockerClient.Unsupported($"the network list filter '{key}'");
        }
        lock (_gate)
        {
            return _networks.Values.Prepend(Bridge)
                .Where(n => Matches(filters, "name", f => n.Name.Contains(f, StringComparison.Ordinal)))
                .Where(n => Matches(filters, "label", l => HasLabel(n.Labels ?? new Dictionary<string, string>(), l)))
                .ToList();
        }
    }

    internal NetworksCreateResponse CreateNetwork(NetworksCreateParameters parameters)
    {
        lock (_gate)
        {
            if (_networks.ContainsKey(parameters.Name))
                throw new DockerApiException(HttpStatusCode.Conflict, $"{{\"message\":\"network with name {parameters.Name} already exists\"}}");
            var network = new NetworkResponse
            {
                ID = Guid.NewGuid().ToString("N"),
                Name = parameters.Name,
                Driver = parameters.Driver ?? "bridge",
                Labels = parameters.Labels ?? new Dictionary<string, string>(),
                Created = Time.GetUtcNow().UtcDateTime,
            };
            _networks[network.Name] = network;
            return new NetworksCreateResponse { ID = network.ID };
        }
    }

    internal void DeleteNetwork(string idOrName)
    {
        lock (_gate)
        {
            var network = _networks.Values.FirstOrDefault(n => n.Name == idOrName || n.ID == idOrName)
                          ?? throw new DockerNetworkNotFoundException(HttpStatusCode.NotFound, $"{{\"message\":\"network {idOrName} not found\"}}");
            _networks.Remove(network.Name);
        }
    }

    internal VolumeResponse CreateVolume(VolumesCreateParameters parameters)
    {
        lock (_gate)
        {
            var name = parameters.Name is { Length: > 0 } n ? n : Guid.NewGuid().ToString("N");
            if (_volumes.TryGetValue(name, out var existing)) return existing;
            var volume = new VolumeResponse
            {
                Name = name,
                Driver = parameters.Driver ?? "local",
                Labels = parameters.Labels ?? new Dictionary<string, string>(),
                Options = parameters.DriverOpts ?? new Dictionary<string, string>(),
                Mountpoint = $"/var/lib/docker/volumes/{name}/_data",
                Scope = "local",
                CreatedAt = Timestamp(Time.GetUtcNow()),
            };
            _volumes[name] = volume;
            return volume;
        }
    }

    internal VolumeResponse InspectVolume(string name)
    {
        lock (_gate)
        {
            return _volumes.TryGetValue(name, out var volume)
                ? volume
                : throw new DockerApiException(HttpStatusCode.NotFound, $"{{\"message\":\"get {name}: no such volume\"}}");
        }
    }

    internal void RemoveVolume(string name)
    {
        lock (_gate)
        {
            if (!_volumes.Remove(name)) throw new DockerApiException(HttpStatusCode.NotFound, $"{{\"message\":\"get {name}: no such volume\"}}");
        }
    }

    /// <summary>
    /// Delivers the events that match <paramref name="parameters"/>' filters, the buffered ones
    /// since <c>Since</c> first, until <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    internal async Task MonitorAsync(ContainerEventsParameters parameters, IProgress<Message> progress, CancellationToken cancellationToken)
    {
        var filters = parameters.Filters ?? new Dictionary<string, IDictionary<string, bool>>();
        foreach (var key in filters.Keys)
        {
            if (key is not ("type" or "label" or "event")) throw SimulatedDockerClient.Unsupported($"the event filter '{key}'");
        }
        if (parameters.Until is { Length: > 0 }) throw SimulatedDockerClient.Unsupported("an event stream with 'until'");
        var since = parameters.Since is { Length: > 0 } s ? (long)(double.Parse(s, CultureInfo.InvariantCulture) * 1e9) : long.MaxValue;
        var subscriber = new Subscriber(filters, progress);
        List<Message> replay;
        lock (_gate)
        {
            replay = _recent.Where(m => m.TimeNano >= since && subscriber.Wants(m)).ToList();
            _subscribers.Add(subscriber);
        }
        try
        {
            foreach (var message in replay) progress.Report(message);
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        finally
        {
            lock (_gate) _subscribers.Remove(subscriber);
        }
    }

    private static readonly NetworkResponse Bridge = new()
    {
        ID = "simulated-bridge",
        Name = "bridge",
        Driver = "bridge",
        IPAM = new IPAM { Config = [new IPAMConfig { Subnet = "172.17.0.0/16", Gateway = "172.17.0.1" }] },
        Labels = new Dictionary<string, string>(),
    };

    private Message Die(SimulatedContainer container, int exitCode)
    {
        container.Running = false;
        container.ExitCode = exitCode;
        container.FinishedAt = Time.GetUtcNow();
        container.Health = null;
        var message = Event(container, "die");
        message.Actor.Attributes["exitCode"] = exitCode.ToString(CultureInfo.InvariantCulture);
        return message;
    }

    private Message Event(SimulatedContainer container, string action)
    {
        var nanos = (Time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks * 100;
        var attributes = new Dictionary<string, string>(container.Labels) { ["name"] = container.Name, ["image"] = container.Parameters.Image ?? "" };
        var message = new Message
        {
            Type = "container",
            Action = action,
            Status = action,
            ID = container.Id,
            From = container.Parameters.Image,
            Scope = "local",
            Time = nanos / 1_000_000_000,
            TimeNano = nanos,
            Actor = new Actor { ID = container.Id, Attributes = attributes },
        };
        _recent.AddLast(message);
        if (_recent.Count > RecentEvents) _recent.RemoveFirst();
        return message;
    }

    private void Publish(Message message)
    {
        Subscriber[] subscribers;
        lock (_gate) subscribers = _subscribers.Where(s => s.Wants(message)).ToArray();
        foreach (var subscriber in subscribers) subscriber.Progress.Report(message);
    }

    private Dictionary<string, IList<PortBinding>> AssignPorts(CreateContainerParameters parameters)
    {
        var ports = new Dictionary<string, IList<PortBinding>>(StringComparer.Ordinal);
        foreach (var (port, bindings) in parameters.HostConfig?.PortBindings ?? new Dictionary<string, IList<PortBinding>>())
        {
            ports[port] = (bindings ?? []).Select(b => new PortBinding
            {
                HostIP = b.HostIP is { Length: > 0 } ip ? ip : "0.0.0.0",
                HostPort = b.HostPort is { Length: > 0 } fixedPort && fixedPort != "0" ? fixedPort : (_nextHostPort++).ToString(CultureInfo.InvariantCulture),
            }).ToList();
        }
        return ports;
    }

    private static bool Matches(IDictionary<string, IDictionary<string, bool>> filters, string key, Func<string, bool> match)
    {
        if (!filters.TryGetValue(key, out var values)) return true;
        var wanted = values.Where(v => v.Value).Select(v => v.Key).ToList();
        if (wanted.Count == 0) return true;
        // Docker ANDs label filters and ORs the values of every other filter.
        return key == "label" ? wanted.All(match) : wanted.Any(match);
    }

    private static bool HasLabel(IDictionary<string, string> labels, string filter)
    {
        var equals = filter.IndexOf('=');
        return equals < 0
            ? labels.ContainsKey(filter)
            : labels.TryGetValue(filter[..equals], out var value) && value == filter[(equals + 1)..];
    }

    private static string Timestamp(DateTimeOffset? at)
        => at is { } time ? time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture) : "0001-01-01T00:00:00Z";

    private sealed class Subscriber(IDictionary<string, IDictionary<string, bool>> filters, IProgress<Message> progress)
    {
        public IProgress<Message> Progress { get; } = progress;

        public bool Wants(Message message)
            => Matches(filters, "type", t => t == message.Type)
               && Matches(filters, "label", l => HasLabel(message.Actor.Attributes, l))
               && Matches(filters, "event", e => e == message.Action || message.Action.StartsWith(e + ":", StringComparison.Ordinal));
    }
}

/// <summary>One simulated container. Its fields change only under the engine's lock.</summary>
internal sealed class SimulatedContainer(string id, string name, CreateContainerParameters parameters, DateTimeOffset created)
{
    public string Id { get; } = id;
    public string Name { get; set; } = name;
    public CreateContainerParameters Parameters { get; } = parameters;
    public IDictionary<string, string> Labels { get; } = parameters.Labels ?? new Dictionary<string, string>();
    public DateTimeOffset Created { get; } = created;
    public bool Running { get; set; }
    public bool Starting { get; set; }
    public bool Removed { get; set; }
    public long ExitCode { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public string? Health { get; set; }
    public string? Address { get; set; }
    public Dictionary<string, IList<PortBinding>> HostPorts { get; set; } = new(StringComparer.Ordinal);

    public string Status => Running ? "running" : FinishedAt is null ? "created" : "exited";
}
