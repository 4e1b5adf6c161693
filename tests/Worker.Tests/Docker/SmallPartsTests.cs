using Serverless.Worker.Docker;

namespace Serverless.Worker.Tests.Docker;

public sealed class SmallPartsTests
{
    [Theory]
    [InlineData("local/busybox:latest", "local/busybox", "latest")]
    [InlineData("busybox", "busybox", "latest")]
    [InlineData("registry:5000/team/app", "registry:5000/team/app", "latest")]
    [InlineData("registry:5000/team/app:1.2", "registry:5000/team/app", "1.2")]
    [InlineData("nonexistent.invalid/none:1", "nonexistent.invalid/none", "1")]
    [InlineData("app@sha256:abc", "app@sha256:abc", null)]
    public void Image_references_are_pulled_by_repository_and_tag(string image, string repository, string? tag)
        => Assert.Equal((repository, tag), ImagePuller.SplitReference(image));

    [Fact]
    public void Docker_since_is_unix_seconds_with_nanoseconds()
        => Assert.Equal("1700000000.123456700", DockerEventWatcher.UnixTime(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123).AddTicks(4567)));

    [Fact]
    public void Task_definition_arns_give_family_and_revision()
    {
        Assert.Equal(("web-api", 12), TaskDefinitionCache.Key("arn:aws:ecs:us-east-1:000000000000:task-definition/web-api:12") is { } k ? (k.Family, k.Revision) : default);
        Assert.Null(TaskDefinitionCache.Key("arn:aws:ecs:us-east-1:000000000000:task-definition/web-api"));
    }
}
