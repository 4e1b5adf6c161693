using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Serverless.Core.Deploy;

/// <summary>Settings of the deploy webhook (section <c>Deploy</c>, or flat <c>Deploy__*</c> app settings).</summary>
public sealed class DeployOptions
{
    /// <summary>
    /// The webhook secrets, separated by <c>;</c>. A delivery signed with any of them is accepted, so
    /// a secret is rotated by adding the new one, switching the senders, then removing the old one.
    /// None: every delivery is refused. In Azure this is a Key Vault reference.
    /// </summary>
    public string WebhookSecrets { get; set; } = "";

    /// <summary>
    /// The base of the status URLs handed out (<c>https://ecs.example.com</c>). Empty: the scheme and
    /// host the delivery came to, which is right unless a proxy in front rewrites them.
    /// </summary>
    public string PublicUrl { get; set; } = "";

    public IReadOnlyList<string> Secrets
        => WebhookSecrets.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

public static class DeployServices
{
    /// <summary>The deploy webhook (<c>POST /deploy</c>), its status URLs and its sweep, from section <c>Deploy</c>.</summary>
    public static IServiceCollection AddDeploy(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new DeployOptions();
        configuration.GetSection("Deploy").Bind(options);
        services.AddSingleton(options);
        services.AddSingleton<DeliveryStore>();
        services.AddSingleton<DeployRunner>();
        services.AddSingleton<DeployWebhook>();
        services.AddSingleton<DeploymentStatusReader>();
        services.AddSingleton<DeploySweep>();
        return services;
    }
}
