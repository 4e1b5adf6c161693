using System.Collections;

namespace Serverless.Functions.Standalone;

/// <summary>Tells whether the process was started by the Azure Functions host or by hand.</summary>
public static class HostMode
{
    /// <summary>
    /// True when the Functions host launched this worker. The host passes the address of its gRPC endpoint
    /// as <c>--functions-uri</c>, which the worker reads as <c>Functions:Worker:HostEndpoint</c> (and which
    /// FunctionsNetHost passes as an environment variable, or it loads the app in-process and sets the
    /// <c>AZURE_FUNCTIONS_NATIVE_HOST</c> switch). Without that endpoint the worker cannot start, so its
    /// absence is the reliable sign of a standalone run. <c>FUNCTIONS_WORKER_RUNTIME</c> is not used:
    /// local.settings.json and developer shells set it too.
    /// </summary>
    public static bool IsFunctionsHost(string[] args) => IsFunctionsHost(args, Environment.GetEnvironmentVariables());

    internal static bool IsFunctionsHost(string[] args, IDictionary environment)
    {
        foreach (var arg in args)
        {
            var name = arg.TrimStart('-', '/').Split('=', 2)[0];
            if (IsHostEndpointKey(name) && arg.StartsWith('-')) return true;
        }
        foreach (DictionaryEntry variable in environment)
        {
            if (variable.Key is string key && IsHostEndpointKey(key) && !string.IsNullOrWhiteSpace(variable.Value as string))
            {
                return true;
            }
        }
        return AppContext.GetData("AZURE_FUNCTIONS_NATIVE_HOST") is not null;
    }

    private static bool IsHostEndpointKey(string key)
        => string.Equals(key, "functions-uri", StringComparison.OrdinalIgnoreCase)
           || string.Equals(key.Replace("__", ":", StringComparison.Ordinal), "Functions:Worker:HostEndpoint", StringComparison.OrdinalIgnoreCase);
}
