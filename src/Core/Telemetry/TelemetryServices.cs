using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Azure.Monitor.OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Serverless.Core.Telemetry;

public static class TelemetryServices
{
    /// <summary>The setting Azure Monitor's exporters are configured by; the Bicep sets it on the Functions app.</summary>
    public const string AzureMonitorSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";

    /// <summary>
    /// Traces and metrics of <paramref name="serviceName"/> through OpenTelemetry, configured by the standard
    /// <c>OTEL_*</c> settings (<c>OTEL_SERVICE_NAME</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c>, <c>OTEL_EXPORTER_OTLP_*</c>).
    /// The OTLP exporter is added only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, Azure Monitor's (traces,
    /// metrics and log lines) only when <see cref="AzureMonitorSetting"/> is, so nothing is exported locally by
    /// default. Log lines carry the trace and span ids of the activity they are written in.
    /// </summary>
    public static IServiceCollection AddTelemetry(this IServiceCollection services, IConfiguration configuration, string serviceName)
    {
        services.Configure<LoggerFactoryOptions>(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        var otlp = !string.IsNullOrEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var azureMonitor = configuration[AzureMonitorSetting] is { Length: > 0 } connectionString ? connectionString : null;
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName))
            .WithTracing(tracing =>
            {
                tracing.AddSource(Telemetry.ControlPlane, Telemetry.Worker);
                if (otlp) tracing.AddOtlpExporter();
                if (azureMonitor is not null) tracing.AddAzureMonitorTraceExporter(o => o.ConnectionString = azureMonitor);
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Telemetry.ControlPlane, Telemetry.Worker);
                if (otlp) metrics.AddOtlpExporter();
                if (azureMonitor is not null) metrics.AddAzureMonitorMetricExporter(o => o.ConnectionString = azureMonitor);
            });
        if (azureMonitor is not null) telemetry.WithLogging(logging => logging.AddAzureMonitorLogExporter(o => o.ConnectionString = azureMonitor));
        return services;
    }
}
