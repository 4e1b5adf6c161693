using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serverless.Functions;
using Serverless.Functions.Standalone;

if (HostMode.IsFunctionsHost(args))
{
    // Started by the Functions host (func start, or Azure): the isolated worker with ASP.NET Core integration.
    var builder = FunctionsApplication.CreateBuilder(args);
    builder.ConfigureFunctionsWebApplication();
    builder.UseMiddleware<QueueMessageAge>();
    Composition.ConfigureServices(builder.Services, builder.Configuration);
    // The host's invocation spans become the parents of ours, and its resource (the app, the instance) ours.
    builder.Services.AddOpenTelemetry().UseFunctionsWorkerDefaults();
    builder.Build().Run();
}
else
{
    // Started by hand (dotnet run): serve the same functions from functions.metadata without the host.
    StandaloneHost.Build(args).Run();
}
