using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Core.Api;
using Serverless.Core.Storage;

namespace Serverless.Core.Secrets;

public static class SecretsServices
{
    /// <summary>Secrets Manager and the SSM Parameter Store at the one endpoint, from section <c>Secrets</c>.</summary>
    public static IServiceCollection AddSecrets(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new SecretsOptions();
        configuration.GetSection("Secrets").Bind(options);
        services.AddSingleton(options);
        // With a Key Vault key the keys come from the ring it wraps, reached with the app's identity.
        services.AddSingleton(sp => sp.GetRequiredService<SecretsOptions>() is { KeyVaultKeyId.Length: > 0 } vaulted
            ? new KeyEncryptionKeys(vaulted, new KeyVaultKeyRing(
                sp.GetRequiredService<StorageClients>(), vaulted, StorageAccess.From(configuration).Credential(), new HttpClient()))
            : new KeyEncryptionKeys(sp.GetRequiredService<SecretsOptions>()));
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
