using System.Text.Json.Nodes;

namespace Serverless.EndToEnd.Tests;

public static class JsonAssert
{
    /// <summary>
    /// Every member of <paramref name="expected"/> is in <paramref name="actual"/> with an equal
    /// value (recursively; arrays element by element). Members only in <paramref name="actual"/>
    /// (defaults the service fills in) are allowed.
    /// </summary>
    public static void Contains(JsonNode? expected, JsonNode? actual, string path = "$")
    {
        switch (expected)
        {
            case JsonObject obj:
                var actualObject = Assert.IsType<JsonObject>(actual);
                foreach (var (name, value) in obj)
                {
                    Assert.True(actualObject.ContainsKey(name), $"{path}.{name} is missing from {actualObject.ToJsonString()}");
                    Contains(value, actualObject[name], $"{path}.{name}");
                }
                break;
            case JsonArray array:
                var actualArray = Assert.IsType<JsonArray>(actual);
                Assert.True(array.Count == actualArray.Count, $"{path} has {actualArray.Count} items, expected {array.Count}");
                for (var i = 0; i < array.Count; i++) Contains(array[i], actualArray[i], $"{path}[{i}]");
                break;
            default:
                Assert.True(JsonNode.DeepEquals(expected, actual), $"{path}: expected {expected?.ToJsonString()}, got {actual?.ToJsonString()}");
                break;
        }
    }
}
