using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Serverless.Core;
using Serverless.Core.Storage;

[assembly: InternalsVisibleTo("Serverless.Functions.Tests")]

namespace Serverless.Functions.Standalone;

/// <summary>What a standalone host is built from; the defaults are those of <c>dotnet run</c>.</summary>
public sealed class StandaloneHostOptions
{
    /// <summary>Where <c>functions.metadata</c>, <c>host.json</c> and <c>local.settings.json</c> are read from.</summary>
    public string BaseDirectory { get; init; } = AppContext.BaseDirectory;

    /// <summary>Runs after <see cref="Composition.ConfigureServices"/>; tests replace services here (a fake clock).</summary>
    public Action<IServiceCollection>? ConfigureServices { get; init; }
}

/// <summary>
/// Runs the Functions app without the Functions host: the functions declared in <c>functions.metadata</c>
/// are served over Kestrel (HTTP), driven by queue polling (queue) and by their schedules (timer), with
/// host.json's settings and the services of <see cref="Composition.ConfigureServices"/>.
/// </summary>
public static partial class StandaloneHost
{
    /// <summary><c>func start</c>'s address, used when no other is configured.</summary>
    public const string DefaultUrls = "http://127.0.0.1:7071";

    // Azure Storage queue names: 3-63 lower-case letters, digits and single dashes, starting and ending alphanumeric.
    private static readonly Regex QueueNamePattern = new("^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$", RegexOptions.Compiled);

    /// <summary>Builds the host, failing fast on any function, setting or binding it cannot serve.</summary>
    /// <param name="args">Command-line arguments: configuration overrides such as <c>--urls</c> or <c>--Ecs:Region=…</c>.</param>
    /// <param name="options">Where to read from and test overrides; null for the defaults.</param>
    /// <exception cref="InvalidOperationException">A function cannot run standalone; the message names it.</exception>
    public static WebApplication Build(string[] args, StandaloneHostOptions? options = null)
    {
        options ??= new StandaloneHostOptions();
        var baseDirectory = options.BaseDirectory;
        var hostJson = HostJson.Load(Path.Combine(baseDirectory, HostJson.FileName));

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = baseDirectory,
        });

        // Lowest first: our logging defaults, host.json logging, local.settings.json, then the builder's own
        // sources (appsettings, environment, command line) stay on top, as with the host.
        LocalSettingsFile.AddBeneath(builder.Configuration, Path.Combine(baseDirectory, LocalSettingsFile.FileName));
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = LoggingDefaults(hostJson) });

        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(console =>
        {
            console.SingleLine = true;
            console.TimestampFormat = "HH:mm:ss.fff ";
        });

        ConfigureKestrel(builder);

        Composition.ConfigureServices(builder.Services, builder.Configuration);
        // The executors IActionResult needs (ObjectResult, JsonResult, …); the worker's ASP.NET Core integration adds MVC too.
        builder.Services.AddMvcCore();
        options.ConfigureServices?.Invoke(builder.Services);

        var functions = LoadFunctions(baseDirectory, hostJson, builder.Configuration);
        var (queues, timers) = ResolveTriggers(functions, builder.Configuration);
        builder.Services.AddHostedService(services =>
        {
            var time = services.GetRequiredService<TimeProvider>();
            return new StandaloneTriggerService(
                queues, timers, hostJson.Queues, TimerTimeZone(builder.Configuration, time),
                services.GetRequiredService<IServiceScopeFactory>(), services.GetRequiredService<QueueWake>(),
                services.GetRequiredService<EcsOptions>(), time, services.GetRequiredService<ILoggerFactory>());
        });

        var app = builder.Build();
        CheckDependencies(functions, app.Services);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Serverless.Functions.Standalone");
        LogStarting(logger, functions.Count, baseDirectory);
        HttpFunctionEndpoints.Map(app, functions, hostJson.RoutePrefix, logger);
        return app;
    }

    /// <summary>
    /// Reads and compiles the functions of <c>functions.metadata</c> in <paramref name="baseDirectory"/>,
    /// keeping those host.json's <c>functions</c> list allows and no <c>AzureWebJobs.&lt;name&gt;.Disabled</c> setting disables.
    /// </summary>
    public static IReadOnlyList<StandaloneFunction> LoadFunctions(string baseDirectory, HostJson hostJson, IConfiguration configuration)
    {
        var declarations = FunctionMetadataReader.ReadFile(Path.Combine(baseDirectory, FunctionMetadataReader.FileName));
        return declarations
            .Where(d => hostJson.Functions is null || hostJson.Functions.Contains(d.Name, StringComparer.OrdinalIgnoreCase))
            .Where(d => !IsDisabled(configuration, d.Name))
            .Select(d => FunctionCompiler.Compile(d, baseDirectory))
            .ToList();
    }

    /// <summary>Resolves queue names, connections and schedules (with their <c>%Setting%</c> placeholders).</summary>
    /// <exception cref="InvalidOperationException">A setting is missing or a value is invalid; the message names the function.</exception>
    public static (IReadOnlyList<QueueTriggerBinding> Queues, IReadOnlyList<TimerTriggerBinding> Timers) ResolveTriggers(
        IEnumerable<StandaloneFunction> functions, IConfiguration configuration)
    {
        var queues = new List<QueueTriggerBinding>();
        var timers = new List<TimerTriggerBinding>();
        foreach (var function in functions)
        {
            try
            {
                switch (function.Kind)
                {
                    case TriggerKind.Queue:
                        var declared = function.Trigger.GetString("queueName")
                                       ?? throw new FormatException("the queue trigger declares no queueName");
                        // Queue names are lower-case; the host coerces rather than fails.
                        var queueName = AppSettingResolver.Resolve(declared, configuration).ToLowerInvariant();
                        if (!QueueNamePattern.IsMatch(queueName))
                        {
                            throw new FormatException($"'{queueName}' is not a valid queue name");
                        }
                        var connection = StorageConnection.Resolve(function.Trigger.GetString("connection"), configuration);
                        StorageConnection.Validate(connection, function.Trigger.GetString("connection"));
                        queues.Add(new QueueTriggerBinding(function, queueName, connection));
                        break;
                    case TriggerKind.Timer:
                        var schedule = function.Trigger.GetString("schedule")
                                       ?? throw new FormatException("the timer trigger declares no schedule");
                        timers.Add(new TimerTriggerBinding(
                            function, TimerSchedule.Resolve(schedule, configuration), function.Trigger.GetBoolean("runOnStartup") ?? false));
                        break;
                }
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                throw new InvalidOperationException($"Function '{function.Name}' cannot run in the standalone host: {e.Message}.", e);
            }
        }
        return (queues, timers);
    }

    /// <summary>
    /// Fails at startup, rather than at the first invocation, when a function class needs a service nobody
    /// registered (checked for classes with a single public constructor, which ActivatorUtilities would use).
    /// </summary>
    /// <exception cref="InvalidOperationException">A constructor parameter is not a registered service.</exception>
    public static void CheckDependencies(IEnumerable<StandaloneFunction> functions, IServiceProvider services)
    {
        var isService = services.GetService<IServiceProviderIsService>();
        if (isService is null) return;
        foreach (var function in functions.Where(f => !f.Method.IsStatic))
        {
            var constructors = function.Method.DeclaringType!.GetConstructors();
            if (constructors.Length != 1) continue;
            foreach (var parameter in constructors[0].GetParameters())
            {
                if (!parameter.HasDefaultValue && !isService.IsService(parameter.ParameterType))
                {
                    throw new InvalidOperationException(
                        $"Function '{function.Name}' cannot run in the standalone host: its class needs '{parameter.ParameterType.FullName}', " +
                        "which is not registered (register it in Composition.ConfigureServices).");
                }
            }
        }
    }

    private static bool IsDisabled(IConfiguration configuration, string function)
    {
        var value = configuration[$"AzureWebJobs.{function}.Disabled"] ?? configuration[$"AzureWebJobs:{function}:Disabled"];
        return value is not null && (value == "1" || (bool.TryParse(value, out var disabled) && disabled));
    }

    private static void ConfigureKestrel(WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        // --urls, ASPNETCORE_URLS and DOTNET_URLS all arrive as "urls"; otherwise Standalone:Urls, then func's port.
        if (string.IsNullOrWhiteSpace(configuration[WebHostDefaults.ServerUrlsKey]))
        {
            var port = configuration["Host:LocalHttpPort"];
            builder.WebHost.UseUrls(configuration["Standalone:Urls"]
                                    ?? (port is null ? DefaultUrls : $"http://127.0.0.1:{port}"));
        }

        // The API refuses large bodies itself (Ecs:MaxRequestBodyBytes) with an AWS-shaped error, below Kestrel's
        // default limit, so Kestrel's default stays; FUNCTIONS_REQUEST_BODY_SIZE_LIMIT overrides it, as it does the host's.
        var bodyLimit = configuration.GetValue<long?>("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT");
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            if (bodyLimit is { } limit) kestrel.Limits.MaxRequestBodySize = limit;
        });
    }

    // Per-request framework logs would cost more than the requests; host.json's levels apply to everything else.
    private static Dictionary<string, string?> LoggingDefaults(HostJson hostJson)
    {
        var levels = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase)
        {
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
            ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Information",
            ["Logging:LogLevel:Azure"] = "Warning",
        };
        foreach (var (category, level) in hostJson.LogLevels)
        {
            var key = string.Equals(category, "default", StringComparison.OrdinalIgnoreCase) ? "Default" : category;
            levels[$"Logging:LogLevel:{key}"] = level;
        }
        return levels;
    }

    // Schedules run in WEBSITE_TIME_ZONE when set (as in Azure), otherwise in the machine's local zone.
    private static TimeZoneInfo TimerTimeZone(IConfiguration configuration, TimeProvider time)
        => configuration["WEBSITE_TIME_ZONE"] is { Length: > 0 } zone ? TimeZoneInfo.FindSystemTimeZoneById(zone) : time.LocalTimeZone;

    [LoggerMessage(Level = LogLevel.Information, Message = "Standalone host: {Count} functions from {BaseDirectory}")]
    private static partial void LogStarting(ILogger logger, int count, string baseDirectory);
}
