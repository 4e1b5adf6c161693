using Microsoft.Extensions.Hosting;
using Serverless.Core.Telemetry;
using Serverless.Worker;
using Serverless.Worker.Pool;

// The worker: registers this Docker host with the control plane and runs the tasks placed on it.
// Settings: Worker__* (WorkerOptions), Ecs__Region / Ecs__AccountId, AzureWebJobsStorage (a connection
// string, or AzureWebJobsStorage__* for a managed identity: StorageAccess).
var builder = Host.CreateApplicationBuilder(args);
// With Pool__Name set it is the pool agent instead (src/Worker/Pool): it starts and stops workers.
if (builder.Configuration["Pool:Name"] is { Length: > 0 }) builder.Services.AddPoolAgent(builder.Configuration);
else builder.Services.AddWorker(builder.Configuration);
builder.Services.AddTelemetry(builder.Configuration, "ecs-worker");
await builder.Build().RunAsync();
