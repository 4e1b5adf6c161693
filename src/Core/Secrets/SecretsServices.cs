using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;

namespace Serverless.Core.Secrets;

public static class SecretsServices
{
    /// <summary>Secrets Manager and the SSM Parameter Store at the one endpoint, from section <c>Secrets</c>.</summary>
    public static IServiceCollection AddSecrets(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new SecretsOptions();
        configuration.GetSection("Secrets").Bind(options);
        services.AddSingleton(options);
        services.AddSingleton<KeyEncryptionKeys>();
        services.AddSingleton<SecretStore>();
        services.AddSingleton<SecretsManagerActions>();
        services.AddSingleton<IActionSource>(sp => sp.GetRequiredService<SecretsManagerActions>());
        // Both answer a request that breaks their model with ValidationException (as AWS does, though
        // Secrets Manager's model does not list it).
        services.AddSingleton(ServiceModel.Load("secretsmanager").WithValidationErrorType("ValidationException"));
        services.AddSingleton<ParameterStore>();
        services.AddSingleton<ParameterActions>();
        services.AddSingleton<IActionSource>(sp => sp.GetRequiredService<ParameterActions>());
        services.AddSingleton(ServiceModel.Load("ssm").WithValidationErrorType("ValidationException"));
        services.AddSingleton<TaskSecretsStore>();
        services.AddSingleton<TaskSecretsSealer>();
        return services;
    }
}
