using Azure;
using Azure.Data.Tables;
using Serverless.Core.Tags;

namespace Serverless.Core.Clusters;

/// <summary>
/// A cluster row. Partition key is the cluster name, so each cluster is its own partition and
/// nothing cluster-wide is written here per task or instance (counts are read from the
/// resources themselves, see <see cref="IClusterUsage"/>).
/// </summary>
public sealed record ClusterRecord
{
    public const string Active = "ACTIVE";
    public const string Inactive = "INACTIVE";

    public required string Name { get; init; }
    public string Status { get; init; } = Active;
    public IReadOnlyList<Tag> Tags { get; init; } = [];
    /// <summary>JSON arrays/objects exactly as the model shapes them (already validated).</summary>
    public string? Settings { get; init; }
    public string? Configuration { get; init; }
    public string? ServiceConnectDefaults { get; init; }
    public string? CapacityProviders { get; init; }
    public string? DefaultCapacityProviderStrategy { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public ETag ETag { get; init; }

    internal TableEntity ToEntity() => new(Name, "")
    {
        ["Status"] = Status,
        ["Tags"] = Tag.Serialize(Tags),
        ["Settings"] = Settings,
        ["Configuration"] = Configuration,
        ["ServiceConnectDefaults"] = ServiceConnectDefaults,
        ["CapacityProviders"] = CapacityProviders,
        ["DefaultCapacityProviderStrategy"] = DefaultCapacityProviderStrategy,
        ["CreatedAt"] = CreatedAt,
    };

    internal static ClusterRecord FromEntity(TableEntity entity) => new()
    {
        Name = entity.PartitionKey,
        Status = entity.GetString("Status") ?? Active,
        Tags = Tag.Deserialize(entity.GetString("Tags")),
        Settings = entity.GetString("Settings"),
        Configuration = entity.GetString("Configuration"),
        ServiceConnectDefaults = entity.GetString("ServiceConnectDefaults"),
        CapacityProviders = entity.GetString("CapacityProviders"),
        DefaultCapacityProviderStrategy = entity.GetString("DefaultCapacityProviderStrategy"),
        CreatedAt = entity.GetDateTimeOffset("CreatedAt") ?? default,
        ETag = entity.ETag,
    };
}

/// <summary>How many of a cluster's resources exist, for DescribeClusters and DeleteCluster.</summary>
public sealed record ClusterUsage(
    int RegisteredContainerInstances = 0,
    int RunningTasks = 0,
    int PendingTasks = 0,
    int ActiveServices = 0,
    int DrainingServices = 0)
{
    public static ClusterUsage operator +(ClusterUsage a, ClusterUsage b) => new(
        a.RegisteredContainerInstances + b.RegisteredContainerInstances,
        a.RunningTasks + b.RunningTasks,
        a.PendingTasks + b.PendingTasks,
        a.ActiveServices + b.ActiveServices,
        a.DrainingServices + b.DrainingServices);
}

/// <summary>
/// Implemented by each capability that owns cluster-scoped resources (container instances,
/// tasks, services); the cluster's figures are the sum over all registered implementations.
/// </summary>
public interface IClusterUsage
{
    Task<ClusterUsage> CountAsync(string cluster, CancellationToken cancellationToken);
}
