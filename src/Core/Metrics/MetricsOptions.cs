using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;

namespace Serverless.Core.Metrics;

/// <summary>Settings of task metrics and CloudWatch (section <c>Metrics</c>, app settings <c>Metrics__*</c>).</summary>
public sealed class MetricsOptions
{
    /// <summary>Days datapoints are kept: CloudWatch keeps 1-minute data for 15 days.</summary>
    public int RetentionDays { get; set; } = 15;
}

public static class MetricsServices
{
    /// <summary>Task metrics storage, their ingest and retention, and CloudWatch at the endpoint.</summary>
    public static IServiceCollection AddMetrics(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new MetricsOptions();
        configuration.GetSection("Metrics").Bind(options);
        services.AddSingleton(options);
        services.AddSingleton<MetricStore>();
        services.AddSingleton<CustomMetricStore>();
        services.AddSingleton<MetricReader>();
        services.AddSingleton<MetricsIngest>();
        services.AddSingleton<MetricRetention>();
        services.AddSingleton(CloudWatchActions.Model);
        services.AddSingleton<RpcV2CborEndpoint>();
        services.AddSingleton<IActionSource, CloudWatchActions>();
        return services;
    }
}
