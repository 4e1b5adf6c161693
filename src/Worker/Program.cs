using Microsoft.Extensions.Hosting;
using Serverless.Worker;

// The worker: registers this Docker host with the control plane and runs the tasks placed on it.
// Settings: Worker__* (WorkerOptions), Ecs__Region / Ecs__AccountId, AzureWebJobsStorage.
var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddWorker(builder.Configuration);
await builder.Build().RunAsync();
