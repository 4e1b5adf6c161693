using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;

namespace Serverless.Core.AutoScaling;

/// <summary>Settings of Application Auto Scaling (section <c>AutoScaling</c>, app settings <c>AutoScaling__*</c>).</summary>
public sealed class AutoScalingOptions
{
    /// <summary>The alarms' period: ECS publishes its metrics every 60 s, and target tracking alarms use that period.</summary>
    public int MetricPeriodSeconds { get; set; } = 60;

    /// <summary>How often the targets are evaluated (CloudWatch evaluates alarms once a minute).</summary>
    public int EvaluationSeconds { get; set; } = 60;

    /// <summary>A target tracking policy's cooldowns when it sets none (300 s for ECS).</summary>
    public int DefaultCooldownSeconds { get; set; } = 300;
}

public static class AutoScalingServices
{
    public static IServiceCollection AddAutoScaling(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new AutoScalingOptions();
        configuration.GetSection("AutoScaling").Bind(options);
        services.AddSingleton(options);
        services.AddSingleton<AutoScalingStore>();
        services.AddSingleton<IActionSource, AutoScalingActions>();
        services.AddSingleton<ScheduledActionStore>();
        services.AddSingleton<IActionSource, ScheduledActionActions>();
        services.AddSingleton<IActionSource, ScalableTargetTags>();
        services.AddSingleton<ScalingEvaluator>();
        return services;
    }
}
