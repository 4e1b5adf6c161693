using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Identity;
using Microsoft.Extensions.Logging;
using Serverless.Core.ContainerInstances;

namespace Serverless.Core.Capacity;

/// <summary>
/// A worker pool that is an Azure VM scale set (<c>Capacity__ScaleSets__N__*</c>): what an Auto Scaling
/// group is to ECS, in Azure.
/// </summary>
public sealed class ScaleSetOptions
{
    /// <summary>The pool's name: the Auto Scaling group name in the capacity provider's <c>autoScalingGroupArn</c>.</summary>
    public string? Pool { get; set; }
    /// <summary>The scale set's resource id (<c>/subscriptions/.../virtualMachineScaleSets/NAME</c>).</summary>
    public string? ResourceId { get; set; }
    /// <summary>The cluster its hosts' workers register with (their <c>Worker__Cluster</c>).</summary>
    public string Cluster { get; set; } = "default";
    public int MinSize { get; set; }
    public int MaxSize { get; set; } = 10;
    /// <summary>One host's cpu units and MiB as its worker registers them (0: learnt from the first that registers).</summary>
    public int InstanceCpu { get; set; }
    public int InstanceMemory { get; set; }
}

/// <summary>
/// The pool agent of scale-set pools, run by the control plane with its managed identity (Azure
/// Resource Manager's REST API, <c>Virtual Machine Contributor</c> on each scale set, granted by the
/// Bicep): it does for a VM scale set what <c>PoolAgent</c> does for worker processes on one machine.
/// Each pass writes the sizes the settings allow, deletes the VMs whose container instances managed
/// scaling named for termination (drained and idle; it never picks one itself, so managed termination
/// protection holds), sets the scale set's capacity to the pool's desired size, and reports as running
/// the container instances whose host (its <c>ec2InstanceId</c>, the VM's computer name, which the worker
/// registers by default) is a VM of the scale set that is not being deleted. The capacity loop then
/// deregisters a terminated instance once it is no longer reported, as for local pools.
/// </summary>
public sealed class ScaleSetPools(
    CapacityOptions options,
    WorkerPoolStore pools,
    ContainerInstanceStore instances,
    TokenCredential credential,
    HttpClient http,
    ILogger<ScaleSetPools> logger)
{
    public const string ApiVersion = "2024-07-01";
    private static readonly string[] Scopes = ["https://management.azure.com/.default"];

    /// <summary>One pass over every configured scale set; a failure of one is logged and left to the next pass.</summary>
    public async Task ConvergeAllAsync(CancellationToken cancellationToken)
    {
        foreach (var scaleSet in options.ScaleSets)
        {
            try
            {
                await ConvergeAsync(scaleSet, cancellationToken);
            }
            catch (Exception e) when (e is HttpRequestException or AuthenticationFailedException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                logger.LogWarning("Scale set pool {Pool}: {Error}; tried again at the next pass", scaleSet.Pool, e.Message);
            }
        }
    }

    public async Task ConvergeAsync(ScaleSetOptions scaleSet, CancellationToken cancellationToken)
    {
        var name = scaleSet.Pool ?? throw new InvalidOperationException("Capacity:ScaleSets: a scale set without Pool.");
        var resource = scaleSet.ResourceId ?? throw new InvalidOperationException($"Capacity:ScaleSets: pool {name} has no ResourceId.");
        var pool = await pools.UpdateAsync(name, p =>
            p.MinSize == scaleSet.MinSize && p.MaxSize == scaleSet.MaxSize && p.InstanceCpu == scaleSet.InstanceCpu && p.InstanceMemory == scaleSet.InstanceMemory
                ? null
                : p with
                {
                    MinSize = scaleSet.MinSize,
                    MaxSize = scaleSet.MaxSize,
                    DesiredCapacity = Math.Clamp(p.DesiredCapacity, scaleSet.MinSize, scaleSet.MaxSize),
                    InstanceCpu = scaleSet.InstanceCpu,
                    InstanceMemory = scaleSet.InstanceMemory,
                },
            cancellationToken,
            () => new WorkerPoolRecord { Name = name, MinSize = scaleSet.MinSize, MaxSize = scaleSet.MaxSize, DesiredCapacity = scaleSet.MinSize });

        var vms = await ListVmsAsync(resource, cancellationToken);
        var hosts = (await instances.ListAsync(scaleSet.Cluster, cancellationToken))
            .Where(i => i.Status != ContainerInstanceRecord.Inactive && i.Ec2InstanceId.Length > 0)
            .GroupBy(i => i.Ec2InstanceId, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Select(i => i.Id).ToList(), StringComparer.OrdinalIgnoreCase);

        // Scale-in: the VMs of the instances managed scaling named. Deleting them lowers the capacity with them.
        var terminate = vms.Where(vm => !vm.Deleting && hosts.TryGetValue(vm.ComputerName, out var ids) && ids.Any(pool!.Terminate.Contains)).ToList();
        if (terminate.Count > 0)
        {
            await SendAsync(HttpMethod.Post, $"{resource}/delete", new JsonObject { ["instanceIds"] = new JsonArray([.. terminate.Select(vm => JsonValue.Create(vm.InstanceId))]) }, cancellationToken);
            logger.LogInformation("Scale set pool {Pool}: deleting VMs {Vms} (scale-in)", name, string.Join(' ', terminate.Select(vm => vm.ComputerName)));
        }
        else
        {
            var capacity = await CapacityAsync(resource, cancellationToken);
            var desired = Math.Min(pool!.DesiredCapacity, scaleSet.MaxSize);
            if (capacity != desired)
            {
                await SendAsync(HttpMethod.Patch, resource, new JsonObject { ["sku"] = new JsonObject { ["capacity"] = desired } }, cancellationToken);
                logger.LogInformation("Scale set pool {Pool}: capacity {Capacity} -> {Desired}", name, capacity, desired);
            }
        }

        var leaving = terminate.Select(vm => vm.ComputerName).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var running = vms.Where(vm => !vm.Deleting && !leaving.Contains(vm.ComputerName))
            .SelectMany(vm => hosts.GetValueOrDefault(vm.ComputerName) ?? [])
            .Order(StringComparer.Ordinal).ToList();
        if (!running.SequenceEqual(pool!.Running))
            await pools.UpdateAsync(name, p => p.Running.SequenceEqual(running) ? null : p with { Running = running }, cancellationToken);
    }

    /// <summary>A VM of the scale set: the id the delete call takes and the computer name its worker registers as its host.</summary>
    private sealed record Vm(string InstanceId, string ComputerName, bool Deleting);

    private async Task<List<Vm>> ListVmsAsync(string resource, CancellationToken cancellationToken)
    {
        var vms = new List<Vm>();
        string? next = $"{resource}/virtualMachines";
        while (next is not null)
        {
            var page = await SendAsync(HttpMethod.Get, next, null, cancellationToken);
            foreach (var vm in page?["value"]?.AsArray() ?? [])
            {
                var properties = vm?["properties"];
                var computerName = properties?["osProfile"]?["computerName"]?.GetValue<string>();
                var id = vm?["instanceId"]?.GetValue<string>();
                if (id is null || computerName is null) continue;
                vms.Add(new Vm(id, computerName, properties?["provisioningState"]?.GetValue<string>() == "Deleting"));
            }
            next = page?["nextLink"]?.GetValue<string>();
        }
        return vms;
    }

    private async Task<int> CapacityAsync(string resource, CancellationToken cancellationToken)
        => (await SendAsync(HttpMethod.Get, resource, null, cancellationToken))?["sku"]?["capacity"]?.GetValue<int>()
           ?? throw new HttpRequestException($"The scale set {resource} has no sku.capacity.");

    /// <summary>One ARM call: a path (or a <c>nextLink</c>) with the api-version, a bearer token of the control plane's identity.</summary>
    private async Task<JsonNode?> SendAsync(HttpMethod method, string pathOrLink, JsonObject? body, CancellationToken cancellationToken)
    {
        var uri = pathOrLink.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || pathOrLink.StartsWith("http://", StringComparison.OrdinalIgnoreCase)
            ? new Uri(pathOrLink)
            : new Uri(new Uri(options.ArmEndpoint), $"{pathOrLink.TrimStart('/')}?api-version={ApiVersion}");
        var token = await credential.GetTokenAsync(new TokenRequestContext(Scopes), cancellationToken);
        using var request = new HttpRequestMessage(method, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Token);
        if (body is not null) request.Content = JsonContent.Create(body);
        using var response = await http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"{method} {uri.AbsolutePath}: {(int)response.StatusCode} {ErrorMessage(text) ?? response.ReasonPhrase}");
        return text.Length > 0 ? JsonNode.Parse(text) : null;
    }

    /// <summary>ARM's <c>error.message</c>, when the answer is ARM's error JSON.</summary>
    private static string? ErrorMessage(string text)
    {
        try
        {
            return JsonNode.Parse(text)?["error"]?["message"]?.GetValue<string>();
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
