using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Serverless.Core.Telemetry;

public static class TelemetryServices
{
    /// <summary>
    /// Traces and metrics of <paramref name="serviceName"/> through OpenTelemetry, configured by the standard
    /// <c>OTEL_*</c> settings (<c>OTEL_SERVICE_NAME</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c>, <c>OTEL_EXPORTER_OTLP_*</c>).
    /// The OTLP exporter is added only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, so nothing is exported
    /// locally by default. Log lines carry the trace and span ids of the activity they are written in.
    /// </summary>
    public static IServiceCollection AddTelemetry(this IServiceCollection services, IConfiguration configuration, string serviceName)
    {
        services.Configure<LoggerFactoryOptions>(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        var otlp = !string.IsNullOrEmpty(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName))
            .WithTracing(tracing =>
            {
                tracing.AddSource(Telemetry.ControlPlane, Telemetry.Worker);
                if (otlp) tracing.AddOtlpExporter();
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Telemetry.ControlPlane, Telemetry.Worker);
                if (otlp) metrics.AddOtlpExporter();
            });
        return services;
    }
}
