using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;
using Serverless.Functions;
using Serverless.Functions.Standalone;

if (HostMode.IsFunctionsHost(args))
{
    // Started by the Functions host (func start, or Azure): the isolated worker with ASP.NET Core integration.
    var builder = FunctionsApplication.CreateBuilder(args);
    builder.ConfigureFunctionsWebApplication();
    Composition.ConfigureServices(builder.Services, builder.Configuration);
    builder.Build().Run();
}
else
{
    // Started by hand (dotnet run): serve the same functions from functions.metadata without the host.
    StandaloneHost.Build(args).Run();
}
