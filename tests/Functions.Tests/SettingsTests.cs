using System.Collections;
using Azure.Storage.Queues;
using Microsoft.Extensions.Configuration;
using Serverless.Functions.Standalone;

namespace Serverless.Functions.Tests;

public sealed class HostJsonTests
{
    [Fact]
    public void Without_settings_the_host_defaults_apply()
    {
        var host = HostJson.Parse("""{ "version": "2.0" }""");

        Assert.Equal("api", host.RoutePrefix);
        Assert.Equal(16, host.Queues.BatchSize);
        Assert.Equal(8 * Environment.ProcessorCount, host.Queues.NewBatchThreshold);
        Assert.Equal(TimeSpan.FromMinutes(1), host.Queues.MaxPollingInterval);
        Assert.Equal(TimeSpan.Zero, host.Queues.VisibilityTimeout);
        Assert.Equal(5, host.Queues.MaxDequeueCount);
        Assert.Equal(QueueMessageEncoding.Base64, host.Queues.MessageEncoding);
        Assert.Null(host.Functions);
    }

    [Fact]
    public void The_apps_host_json_is_read_as_written()
    {
        var host = HostJson.Load(Path.Combine(AppContext.BaseDirectory, HostJson.FileName));

        Assert.Equal("", host.RoutePrefix);
        Assert.Equal(16, host.Queues.BatchSize);
        Assert.Equal(8, host.Queues.NewBatchThreshold);
        Assert.Equal(TimeSpan.FromSeconds(2), host.Queues.MaxPollingInterval);
        Assert.Equal(TimeSpan.FromSeconds(5), host.Queues.VisibilityTimeout);
        Assert.Equal(QueueMessageEncoding.None, host.Queues.MessageEncoding);
    }

    [Fact]
    public void NewBatchThreshold_defaults_to_half_a_batch_per_processor()
    {
        var host = HostJson.Parse("""{ "extensions": { "queues": { "batchSize": 4 } } }""");

        Assert.Equal(2 * Environment.ProcessorCount, host.Queues.NewBatchThreshold);
    }

    [Theory]
    [InlineData("""{ "extensions": { "queues": { "batchSize": 33 } } }""")]
    [InlineData("""{ "extensions": { "queues": { "maxPollingInterval": "00:00:00.050" } } }""")]
    [InlineData("""{ "extensions": { "queues": { "maxDequeueCount": 0 } } }""")]
    [InlineData("""{ "extensions": { "queues": { "messageEncoding": "utf16" } } }""")]
    public void Values_the_host_refuses_are_refused(string json)
        => Assert.Throws<FormatException>(() => HostJson.Parse(json));
}

public sealed class LocalSettingsFileTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"local.settings.{Guid.NewGuid():N}.json");

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void Values_become_configuration_keys_with_double_underscores_as_section_separators()
    {
        File.WriteAllText(_path, """
            {
              "IsEncrypted": false,
              "Values": {
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "Ecs__Region": "eu-west-1",
                "Ecs:AccountId": "123456789012",
                "Ecs__MaxRequestBodyBytes": 2048,
                "AzureWebJobs.Tick.Disabled": true
              },
              "Host": { "LocalHttpPort": 7072 },
              "ConnectionStrings": { "Other": "UseDevelopmentStorage=true" }
            }
            """);

        var settings = LocalSettingsFile.Read(_path);

        Assert.Equal("UseDevelopmentStorage=true", settings["AzureWebJobsStorage"]);
        Assert.Equal("eu-west-1", settings["Ecs:Region"]);
        Assert.Equal("123456789012", settings["Ecs:AccountId"]);
        Assert.Equal("2048", settings["Ecs:MaxRequestBodyBytes"]);
        Assert.Equal("true", settings["AzureWebJobs.Tick.Disabled"]);
        Assert.Equal("7072", settings["Host:LocalHttpPort"]);
        Assert.Equal("UseDevelopmentStorage=true", settings["ConnectionStrings:Other"]);
    }

    [Fact]
    public void A_missing_file_is_no_settings()
        => Assert.Empty(LocalSettingsFile.Read(_path));

    [Fact]
    public void An_encrypted_file_is_refused()
    {
        File.WriteAllText(_path, """{ "IsEncrypted": true, "Values": { "A": "xyz" } }""");

        Assert.Throws<InvalidOperationException>(() => LocalSettingsFile.Read(_path));
    }
}

public sealed class HostModeTests
{
    private static readonly IDictionary NoEnvironment = new Hashtable();

    [Theory]
    [InlineData("--functions-uri", "http://127.0.0.1:51234/")]
    [InlineData("--functions-uri=http://127.0.0.1:51234/", null)]
    [InlineData("--Functions:Worker:HostEndpoint", "http://127.0.0.1:51234/")]
    public void Started_by_the_Functions_host_when_it_passes_its_endpoint(string arg, string? value)
    {
        string[] args = value is null
            ? ["--host", "127.0.0.1", "--port", "51234", arg]
            : ["--host", "127.0.0.1", "--port", "51234", "--workerId", "w", "--requestId", "r", arg, value];

        Assert.True(HostMode.IsFunctionsHost(args, NoEnvironment));
    }

    [Theory]
    [InlineData("Functions__Worker__HostEndpoint")]
    [InlineData("Functions:Worker:HostEndpoint")]
    public void Started_by_the_Functions_host_when_the_endpoint_is_in_the_environment(string variable)
        => Assert.True(HostMode.IsFunctionsHost([], new Hashtable { [variable] = "http://127.0.0.1:51234/" }));

    [Fact]
    public void Standalone_when_only_the_worker_runtime_setting_is_there()
    {
        var environment = new Hashtable { ["FUNCTIONS_WORKER_RUNTIME"] = "dotnet-isolated", ["AzureWebJobsStorage"] = "x" };

        Assert.False(HostMode.IsFunctionsHost(["--urls", "http://127.0.0.1:7071"], environment));
    }
}

public sealed class AppSettingResolverTests
{
    private readonly IConfiguration _configuration =
        new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Ecs:StoragePrefix"] = "t1", ["Queue"] = "reconcile" })
            .Build();

    [Theory]
    [InlineData("reconcile", "reconcile")]
    [InlineData("%Queue%", "reconcile")]
    [InlineData("%Ecs__StoragePrefix%%Queue%", "t1reconcile")]
    [InlineData("%Ecs:StoragePrefix%-task-events", "t1-task-events")]
    public void Placeholders_resolve_from_settings(string value, string expected)
        => Assert.Equal(expected, AppSettingResolver.Resolve(value, _configuration));
}
