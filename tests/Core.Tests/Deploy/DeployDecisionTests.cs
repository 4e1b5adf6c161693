using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Deploy;
using Serverless.Core.Services;

namespace Serverless.Core.Tests.Deploy;

/// <summary>The webhook's pure decisions: signatures, image references, payloads, and what a status URL says.</summary>
public sealed class DeployDecisionTests
{
    private static readonly byte[] Body = Encoding.UTF8.GetBytes("""{"service":"web","image":"app:v2"}""");

    [Fact]
    public void A_signature_is_checked_against_every_secret_so_one_can_be_rotated()
    {
        // GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
        Assert.Equal("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            WebhookSignature.Sign("Hello, World!"u8, "It's a Secret to Everybody"));

        var header = WebhookSignature.Sign(Body, "new");
        Assert.True(WebhookSignature.IsValid(Body, header, ["old", "new"]));
        Assert.False(WebhookSignature.IsValid(Body, header, ["old"]));
        Assert.False(WebhookSignature.IsValid(Body, header, []));
        Assert.False(WebhookSignature.IsValid("{}"u8, header, ["new"]));
        Assert.False(WebhookSignature.IsValid(Body, header.ToUpperInvariant(), ["new"]));
        Assert.False(WebhookSignature.IsValid(Body, header.Replace("sha256=", "sha1="), ["new"]));
        Assert.False(WebhookSignature.IsValid(Body, header[..^2], ["new"]));
        Assert.False(WebhookSignature.IsValid(Body, header[..^2] + "zz", ["new"]));
        Assert.False(WebhookSignature.IsValid(Body, null, ["new"]));
    }

    [Theory]
    [InlineData("busybox", "busybox", null, null)]
    [InlineData("local/busybox:webhook-v2", "local/busybox", "webhook-v2", null)]
    [InlineData("ghcr.io/acme/app:v1.2.3", "ghcr.io/acme/app", "v1.2.3", null)]
    [InlineData("localhost:5000/a/b__c-d:latest", "localhost:5000/a/b__c-d", "latest", null)]
    [InlineData("ghcr.io/acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "ghcr.io/acme/app", null, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void Valid_references_parse_into_repository_tag_and_digest(string image, string repository, string? tag, string? digest)
        => Assert.Equal(new ImageReference(repository, tag, digest), ImageReference.TryParse(image, out _));

    [Theory]
    [InlineData("")]
    [InlineData("Ghcr.io/Acme/App")]
    [InlineData("app:")]
    [InlineData("app:-tag")]
    [InlineData("app@sha256:short")]
    [InlineData("a//b")]
    [InlineData("app:v1 ")]
    [InlineData("-app")]
    public void Invalid_references_are_refused_with_a_reason(string image)
    {
        Assert.Null(ImageReference.TryParse(image, out var problem));
        Assert.Contains("image", problem);
    }

    [Fact]
    public void Docker_Hub_spellings_of_one_repository_are_one_repository()
    {
        var names = new[] { "busybox", "docker.io/busybox", "docker.io/library/busybox:1", "index.docker.io/library/busybox" }
            .Select(n => ImageReference.TryParse(n, out _)!.CanonicalRepository).Distinct();
        Assert.Equal(["docker.io/library/busybox"], names);
        Assert.Equal("local.registry/busybox", ImageReference.TryParse("local.registry/busybox", out _)!.CanonicalRepository);
    }

    [Fact]
    public void Without_a_container_name_every_container_of_the_repository_gets_the_image()
    {
        var containers = JsonNode.Parse("""
            [{"name":"a","image":"ghcr.io/acme/app:v1"},{"name":"b","image":"ghcr.io/acme/app:v1"},{"name":"c","image":"busybox"}]
            """)!.AsArray();

        var replaced = ImageReference.Replace(containers, "ghcr.io/acme/app:v2", null, out var changed, out _)!;
        Assert.True(changed);
        Assert.Equal(["ghcr.io/acme/app:v2", "ghcr.io/acme/app:v2", "busybox"], replaced.Select(c => c!["image"]!.GetValue<string>()));
        Assert.Equal("ghcr.io/acme/app:v1", containers[0]!["image"]!.GetValue<string>());

        var named = ImageReference.Replace(containers, "docker.io/library/busybox:2", "c", out _, out _)!;
        Assert.Equal("docker.io/library/busybox:2", named[2]!["image"]!.GetValue<string>());
        Assert.Null(ImageReference.Replace(containers, "busybox:2", "d", out _, out var problem));
        Assert.Equal("The task definition has no container named 'd'.", problem);
        _ = ImageReference.Replace(containers, "busybox", null, out var same, out _);
        Assert.False(same);
    }

    [Theory]
    [InlineData("[]", "The body must be a JSON object.")]
    [InlineData("""{"service":"web"}""", "Missing member \"image\": the image reference to deploy.")]
    [InlineData("""{"service":"web","image":7}""", "\"image\" must be a string.")]
    [InlineData("""{"service":"a/b","image":"app"}""", "\"service\" must be a service name or ARN (letters, numbers, hyphens and underscores).")]
    [InlineData("""{"service":"web","image":"app","force":"yes"}""", "\"force\" must be true or false.")]
    public void Generic_payloads_missing_or_mistyped_members_are_refused_by_name(string body, string message)
        => Assert.Equal(message, Assert.Throws<DeployPayloadException>(() => DeployPayload.Parse(null, Encoding.UTF8.GetBytes(body), null)).Message);

    [Fact]
    public void The_generic_payload_defaults_to_the_default_cluster_and_takes_arns()
    {
        var parsed = DeployPayload.Parse(null, """{"service":"arn:aws:ecs:us-east-1:000000000000:service/prod/web","image":"app:v2","container":"main","force":true}"""u8, null);
        Assert.Equal(new DeployRequest.Service(new DeployTarget("default", "web", "app:v2", "main", true)), parsed);
        Assert.IsType<DeployRequest.Ping>(DeployPayload.Parse("ping", "not even json"u8, null));
        Assert.Throws<DeployPayloadException>(() => DeployPayload.Parse("push", "{}"u8, null));
    }

    [Fact]
    public void An_untagged_package_version_deploys_by_digest_and_other_packages_are_ignored()
    {
        var digest = "sha256:" + new string('a', 64);
        var body = """{"action":"published","package":{"name":"app","namespace":"acme","package_type":"container","package_version":{"version":"DIGEST","container_metadata":{"tag":{"name":"","digest":"DIGEST"}}}}}""";
        var parsed = DeployPayload.Parse("package", Encoding.UTF8.GetBytes(body.Replace("DIGEST", digest)), "prod");
        var package = Assert.IsType<DeployRequest.Package>(parsed);
        Assert.Equal(("prod", $"ghcr.io/acme/app@{digest}"), (package.Cluster, package.Image));

        Assert.IsType<DeployRequest.Ignored>(DeployPayload.Parse("package", """{"action":"published","package":{"package_type":"npm"}}"""u8, null));
    }

    private static readonly DeploymentStatusLink Link = new("c", "web", "ecs-svc/1111111111111111111", "arn:td/web:2");

    private static ServiceRecord Service(IReadOnlyList<Deployment> deployments, params string[] events) => new()
    {
        Cluster = "c",
        Name = "web",
        TaskDefinitionArn = "arn:td/web:1",
        DesiredCount = 2,
        Deployments = deployments,
        Events = events.Select(e => new ServiceEvent(Guid.NewGuid().ToString(), DateTimeOffset.UnixEpoch, e)).ToList(),
    };

    [Fact]
    public void A_listed_deployment_answers_its_rollout_state_and_counts()
    {
        var deployment = new Deployment
        {
            Id = Link.DeploymentId, Status = DeploymentStatus.Primary, TaskDefinitionArn = "arn:td/web:2",
            DesiredCount = 2, RunningCount = 1, PendingCount = 1, RolloutState = DeploymentRolloutState.InProgress, RolloutStateReason = "in progress",
        };
        var answer = DeploymentStatusReader.Describe(Link, Service([deployment]), "arn:svc");
        Assert.Equal(("IN_PROGRESS", 1, 2), (answer["rolloutState"]!.GetValue<string>(), answer["runningCount"]!.GetValue<int>(), answer["desiredCount"]!.GetValue<int>()));
    }

    [Fact]
    public void A_deployment_the_circuit_breaker_rolled_back_answers_failed_with_the_reason()
    {
        var service = Service([],
            "(service web) rolling back to deployment ecs-svc/2.",
            $"(service web) (deployment {Link.DeploymentId}) deployment failed: tasks failed to start.");
        var answer = DeploymentStatusReader.Describe(Link, service, "arn:svc");
        Assert.Equal("FAILED", answer["rolloutState"]!.GetValue<string>());
        Assert.Equal($"(service web) (deployment {Link.DeploymentId}) deployment failed: tasks failed to start. (service web) rolling back to deployment ecs-svc/2.",
            answer["rolloutStateReason"]!.GetValue<string>());

        var completed = DeploymentStatusReader.Describe(Link, Service([], $"(service web) (deployment {Link.DeploymentId}) deployment completed."), "arn:svc");
        Assert.Equal("COMPLETED", completed["rolloutState"]!.GetValue<string>());
        Assert.Equal("INACTIVE", DeploymentStatusReader.Describe(Link, Service([]), "arn:svc")["rolloutState"]!.GetValue<string>());
        Assert.Equal("FAILED", DeploymentStatusReader.Describe(Link, null, "arn:svc")["rolloutState"]!.GetValue<string>());
    }
}
