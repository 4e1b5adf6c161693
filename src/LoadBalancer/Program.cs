using Serverless.Core;
using Serverless.Core.LoadBalancing;
using Serverless.Core.Reconciliation;
using Serverless.Core.Storage;
using Serverless.LoadBalancer;

// The ELBv2 data plane: serves every listener defined through the API on its port, routes by the
// listener's rules, forwards with YARP, health-checks targets and drains deregistered ones.
// Settings: LoadBalancer__* (DataPlaneOptions), Ecs__StoragePrefix, AzureWebJobsStorage.
var builder = Host.CreateApplicationBuilder(args);
// YARP's forwarder logs two Information lines per request ("Proxying to ...", "Received ... response"):
// at a listener's rate, console output was the data plane's largest cost per request. A failed forward is
// logged once by ProxyHandler.
builder.Logging.AddFilter("Yarp", LogLevel.Warning);
var ecs = new EcsOptions();
builder.Configuration.GetSection("Ecs").Bind(ecs);
var options = new DataPlaneOptions();
builder.Configuration.GetSection("LoadBalancer").Bind(options);
builder.Services.AddSingleton(ecs);
builder.Services.AddSingleton(options);
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton(StorageAccess.From(builder.Configuration).CreateClients(ecs));
builder.Services.AddSingleton<QueueWake>();
builder.Services.AddSingleton<LoadBalancingStore>();
builder.Services.AddSingleton<ReconcileQueue>();
builder.Services.AddHttpForwarder();
builder.Services.AddSingleton<RoutingState>();
builder.Services.AddSingleton<ProxyHandler>();
builder.Services.AddSingleton<ListenerServers>();
builder.Services.AddHostedService<ConfigWatcher>();
builder.Services.AddHostedService<HealthChecker>();
await builder.Build().RunAsync();
