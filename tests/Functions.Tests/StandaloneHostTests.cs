using System.Net;
using System.Text;
using System.Text.Json;
using Azure.Storage.Queues;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Serverless.Functions.Standalone;
using Serverless.TestSupport;

namespace Serverless.Functions.Tests;

/// <summary>A base directory laid out like the build output: functions.metadata, host.json, local.settings.json.</summary>
internal sealed class TestApp : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("standalone-").FullName;
    private WebApplication? _app;

    public Recorder Recorder { get; } = new();

    public HttpClient Client { get; private set; } = new();

    public WebApplication App => _app ?? throw new InvalidOperationException("Not built.");

    public TestApp WithFunctions(params string[] declarations)
    {
        File.WriteAllText(Path.Combine(_directory, FunctionMetadataReader.FileName), $"[{string.Join(',', declarations)}]");
        return this;
    }

    public TestApp WithHostJson(string json)
    {
        File.WriteAllText(Path.Combine(_directory, HostJson.FileName), json);
        return this;
    }

    public TestApp WithLocalSettings(string json)
    {
        File.WriteAllText(Path.Combine(_directory, LocalSettingsFile.FileName), json);
        return this;
    }

    public WebApplication Build(params string[] args)
    {
        _app = StandaloneHost.Build(["--urls", "http://127.0.0.1:0", .. args], new StandaloneHostOptions
        {
            BaseDirectory = _directory,
            ConfigureServices = services => services.AddSingleton(Recorder).AddScoped<PerInvocation>(),
        });
        return _app;
    }

    public async Task<TestApp> StartAsync(params string[] args)
    {
        var app = Build(args);
        await app.StartAsync();
        Client = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };
        return this;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        Directory.Delete(_directory, recursive: true);
    }
}

public sealed class StandaloneHttpTests : IAsyncLifetime
{
    private readonly TestApp _app = new();

    private static string Http(string name, string method, string? route, params string[] methods)
        => Declarations.Json(name, Declarations.EntryPoint<TestFunctions>(method),
            $$"""
              {"name":"request","direction":"In","type":"httpTrigger","authLevel":"Anonymous",
               "methods":[{{string.Join(',', methods.Select(m => $"\"{m}\""))}}]{{(route is null ? "" : $",\"route\":\"{route}\"")}}},
              {"name":"$return","type":"http","direction":"Out"}
              """);

    public async Task InitializeAsync()
    {
        _app.WithHostJson("""{ "version": "2.0", "extensions": { "http": { "routePrefix": "v1" } } }""")
            .WithFunctions(
                Http("Hello", nameof(TestFunctions.Hello), "", "get"),
                Http("Echo", nameof(TestFunctions.Echo), "echo", "post", "put"),
                Http("Item", nameof(TestFunctions.Item), "items/{id}/{version:int?}", "get"),
                Http("Boom", nameof(TestFunctions.Boom), "boom"),
                Http("Context", nameof(TestFunctions.Context), "context", "get"),
                Http("Minimal", nameof(TestFunctions.Minimal), null, "get"));
        await _app.StartAsync();
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private async Task<JsonElement> GetJsonAsync(string path)
    {
        var response = await _app.Client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    [Fact]
    public async Task A_function_is_served_under_the_route_prefix_and_its_result_executed()
    {
        var body = await GetJsonAsync("/v1");

        Assert.Equal("hello", body.GetProperty("greeting").GetString());
    }

    [Fact]
    public async Task Only_the_declared_methods_are_served()
    {
        var put = await _app.Client.PutAsync("/v1/echo", new StringContent("payload", Encoding.UTF8));
        var get = await _app.Client.GetAsync("/v1/echo");

        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal("payload", await put.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.StatusCode);
    }

    [Fact]
    public async Task Route_parameters_become_route_values_and_bind_to_parameters_of_the_same_name()
    {
        var withVersion = await GetJsonAsync("/v1/items/abc/7");
        var withoutVersion = await GetJsonAsync("/v1/items/xyz");

        Assert.Equal(("abc", 7, "abc"), (withVersion.GetProperty("id").GetString(), withVersion.GetProperty("version").GetInt32(),
            withVersion.GetProperty("routeId").GetString()));
        Assert.Equal(JsonValueKind.Null, withoutVersion.GetProperty("version").ValueKind);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Client.GetAsync("/v1/items/abc/not-a-number")).StatusCode);
    }

    [Fact]
    public async Task A_function_without_a_route_is_served_at_its_name()
        => Assert.Equal(HttpStatusCode.Accepted, (await _app.Client.GetAsync("/v1/Minimal")).StatusCode);

    [Fact]
    public async Task A_function_that_throws_answers_500_without_details()
    {
        var response = await _app.Client.PostAsync("/v1/boom", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.DoesNotContain("secret", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_FunctionContext_shares_the_requests_HttpContext_and_scope_and_each_request_has_its_own()
    {
        var first = await GetJsonAsync("/v1/context");
        var second = await GetJsonAsync("/v1/context");

        Assert.Equal("Context", first.GetProperty("name").GetString());
        Assert.True(first.GetProperty("sameHttpContext").GetBoolean());
        Assert.True(first.GetProperty("sameScope").GetBoolean());
        Assert.NotEqual(first.GetProperty("invocationId").GetString(), second.GetProperty("invocationId").GetString());
        Assert.Equal(first.GetProperty("functionId").GetString(), second.GetProperty("functionId").GetString());
        Assert.Equal(2, _app.Recorder.Scopes.Distinct().Count());
    }

    [Fact]
    public async Task An_unknown_path_is_404()
        => Assert.Equal(HttpStatusCode.NotFound, (await _app.Client.GetAsync("/v1/nothing-here")).StatusCode);
}

[Collection(AzuriteCollection.Name)]
public sealed class StandaloneTriggerTests(AzuriteFixture azurite)
{
    private string LocalSettings(params (string Key, string Value)[] values)
        => JsonSerializer.Serialize(new
        {
            IsEncrypted = false,
            Values = new Dictionary<string, string>(values.Select(v => KeyValuePair.Create(v.Key, v.Value)))
            {
                ["AzureWebJobsStorage"] = azurite.ConnectionString,
                ["FUNCTIONS_WORKER_RUNTIME"] = "dotnet-isolated",
            },
        });

    [Fact]
    public async Task Queue_and_timer_functions_run_from_the_metadata_with_settings_from_local_settings_json()
    {
        var queueName = $"orders-{Guid.NewGuid():N}"[..30];
        await using var app = new TestApp()
            .WithHostJson("""{ "version": "2.0", "extensions": { "queues": { "maxPollingInterval": "00:00:00.500", "messageEncoding": "base64" } } }""")
            .WithLocalSettings(LocalSettings(("Queues__Orders", queueName)))
            .WithFunctions(
                Declarations.Json("Orders", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Poco)),
                    """{"name":"message","direction":"In","type":"queueTrigger","queueName":"%Queues__Orders%"}"""),
                Declarations.Json("Tick", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Tick)),
                    """{"name":"timer","direction":"In","type":"timerTrigger","schedule":"01:00:00","runOnStartup":true}"""));
        await app.StartAsync();

        var queue = new QueueClient(azurite.ConnectionString, queueName, new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 });
        await Eventually.TrueAsync(async () => (await queue.ExistsAsync()).Value, "the listener to create the queue");
        await queue.SendMessageAsync("""{"id":"o-7","quantity":2}""");
        await Eventually.TrueAsync(() => app.Recorder.Calls.OfType<Order>().Any(), "the order to arrive");
        await Eventually.TrueAsync(() => app.Recorder.Calls.OfType<Microsoft.Azure.Functions.Worker.TimerInfo>().Any(), "the startup tick");

        Assert.Equal(new Order("o-7", 2), app.Recorder.Calls.OfType<Order>().Single());
    }

    [Fact]
    public async Task Settings_come_from_local_settings_json_then_environment_then_command_line()
    {
        var variable = $"SERVERLESS_TEST_{Guid.NewGuid():N}";
        Environment.SetEnvironmentVariable($"{variable}__FromEnvironment", "environment");
        Environment.SetEnvironmentVariable($"{variable}__Overridden", "environment");
        try
        {
            await using var app = new TestApp()
                .WithLocalSettings(LocalSettings(
                    ($"{variable}__FromFile", "file"), ($"{variable}__FromEnvironment", "file"), ($"{variable}__Overridden", "file")))
                .WithFunctions();
            var configuration = app.Build($"--{variable}:Overridden=command-line").Configuration;

            Assert.Equal("file", configuration[$"{variable}:FromFile"]);
            Assert.Equal("environment", configuration[$"{variable}:FromEnvironment"]);
            Assert.Equal("command-line", configuration[$"{variable}:Overridden"]);
        }
        finally
        {
            Environment.SetEnvironmentVariable($"{variable}__FromEnvironment", null);
            Environment.SetEnvironmentVariable($"{variable}__Overridden", null);
        }
    }

    [Fact]
    public async Task A_queue_function_without_a_storage_connection_fails_at_startup_naming_it()
    {
        await using var app = new TestApp()
            .WithFunctions(Declarations.Json("Orders", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Text)),
                """{"name":"message","direction":"In","type":"queueTrigger","queueName":"orders","connection":"Nowhere"}"""));

        var error = Assert.Throws<InvalidOperationException>(() => app.Build());

        Assert.Contains("'Orders'", error.Message);
        Assert.Contains("Nowhere", error.Message);
    }

    [Fact]
    public async Task A_function_disabled_by_setting_or_left_out_of_host_json_is_not_run()
    {
        await using var app = new TestApp()
            .WithHostJson("""{ "version": "2.0", "functions": [ "Kept", "Disabled" ] }""")
            .WithLocalSettings(LocalSettings(("AzureWebJobs.Disabled.Disabled", "true")))
            .WithFunctions(
                Declarations.Json("Kept", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Tick)),
                    """{"name":"timer","direction":"In","type":"timerTrigger","schedule":"01:00:00"}"""),
                Declarations.Json("Disabled", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Tick)),
                    """{"name":"timer","direction":"In","type":"timerTrigger","schedule":"01:00:00"}"""),
                Declarations.Json("Unlisted", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Tick)),
                    """{"name":"timer","direction":"In","type":"timerTrigger","schedule":"not a schedule"}"""));
        // Building succeeds although "Unlisted" has no valid schedule: it is never compiled.
        var built = app.Build();
        var directory = built.Environment.ContentRootPath;

        var functions = StandaloneHost.LoadFunctions(
            directory, HostJson.Load(Path.Combine(directory, HostJson.FileName)), built.Configuration);

        Assert.Equal(["Kept"], functions.Select(f => f.Name));
    }
}

public sealed class StandaloneStartupTests
{
    [Fact]
    public async Task A_function_class_needing_an_unregistered_service_fails_at_startup_naming_both()
    {
        await using var app = new UnregisteredServicesApp()
            .WithFunctions(Declarations.Json("Hello", Declarations.EntryPoint<TestFunctions>(nameof(TestFunctions.Hello)),
                """{"name":"request","direction":"In","type":"httpTrigger","methods":["get"],"route":"hello"}"""));

        var error = Assert.Throws<InvalidOperationException>(() => app.Build());

        Assert.Contains("'Hello'", error.Message);
        Assert.Contains(nameof(Recorder), error.Message);
    }

    // Registers nothing of its own, so TestFunctions' dependencies are missing.
    private sealed class UnregisteredServicesApp : IAsyncDisposable
    {
        private readonly string _directory = Directory.CreateTempSubdirectory("standalone-").FullName;

        public UnregisteredServicesApp WithFunctions(params string[] declarations)
        {
            File.WriteAllText(Path.Combine(_directory, FunctionMetadataReader.FileName), $"[{string.Join(',', declarations)}]");
            return this;
        }

        public WebApplication Build() => StandaloneHost.Build([], new StandaloneHostOptions { BaseDirectory = _directory });

        public ValueTask DisposeAsync()
        {
            Directory.Delete(_directory, recursive: true);
            return ValueTask.CompletedTask;
        }
    }
}
