using Serverless.TestSupport;

namespace Serverless.Core.Tests;

/// <summary>
/// One private Azurite for every storage test class in this assembly. Join with
/// <c>[Collection(AzuriteCollection.Name)]</c>, take <see cref="AzuriteFixture"/> in the constructor,
/// and keep to tables and queues named with <see cref="TestNames.Unique(string)"/>.
/// </summary>
[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "azurite";
}
