using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Storage;
using Serverless.Core.TaskDefinitions;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.TaskDefinitions;

/// <summary>
/// Task definition stores over real Table Storage (Azurite), each on tables of its own: every
/// call to <see cref="NewStore"/> gets a fresh table prefix unless one is given, so tests never
/// see each other's rows. Several stores on one prefix behave as several control planes.
/// </summary>
public sealed class TaskDefinitionTables(string connectionString)
{
    public static readonly DateTimeOffset Start = new(2025, 11, 25, 4, 0, 0, TimeSpan.Zero);

    public FakeTimeProvider Time { get; } = new(Start);

    public EcsOptions Options(string prefix) => new() { Region = "us-east-1", AccountId = "000000000000", StoragePrefix = prefix };

    public static string NewPrefix() => TestNames.Unique("TaskDefinitions");

    public TaskDefinitionStore NewStore(string? prefix = null)
    {
        var options = Options(prefix ?? NewPrefix());
        return new TaskDefinitionStore(new StorageClients(connectionString, options), new Arns(options), Time, NullLogger<TaskDefinitionStore>.Instance);
    }

    public Arns Arns { get; } = new(new EcsOptions { Region = "us-east-1", AccountId = "000000000000" });
}
