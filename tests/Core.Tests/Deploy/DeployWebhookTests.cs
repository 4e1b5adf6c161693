using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Deploy;
using Serverless.Core.Services;
using Serverless.TestSupport;

namespace Serverless.Core.Tests.Deploy;

/// <summary>The deploy webhook over real Table Storage (Azurite), composed as the app composes it.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class DeployWebhookTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _prefix = TestNames.Unique("Deploy");
    private readonly CancellationToken _token = new CancellationTokenSource(TimeSpan.FromMinutes(2)).Token;
    private DeployHarness? _plane;

    private DeployHarness Plane => _plane ??= new DeployHarness(azurite, _prefix);

    public void Dispose() => _plane?.Dispose();

    private static string Delivery() => Guid.NewGuid().ToString();

    private async Task<JsonObject> EcsAsync(string action, string json)
    {
        var answer = await Plane.Api.EcsAsync(action, json, _token);
        Assert.True(answer.Status == 200, answer.Raw);
        return answer.Body!;
    }

    /// <summary>Cluster <c>c</c>, family <c>web</c> (app on ghcr.io/acme/app:v1 plus a busybox sidecar, tagged), service <c>web</c> on it.</summary>
    private async Task SetUpAsync(string service = "web", string serviceTags = "")
    {
        await EcsAsync("CreateCluster", """{"clusterName":"c"}""");
        await EcsAsync("RegisterTaskDefinition", """
            {"family":"web","cpu":"256","containerDefinitions":[
              {"name":"app","image":"ghcr.io/acme/app:v1","memory":64,"environment":[{"name":"MODE","value":"prod"}]},
              {"name":"sidecar","image":"local/busybox:latest","memory":32,"essential":false}],
             "tags":[{"key":"team","value":"web"}]}
            """);
        await EcsAsync("CreateService", $$"""{"cluster":"c","serviceName":"{{service}}","taskDefinition":"web","desiredCount":1{{serviceTags}}}""");
    }

    private async Task<JsonObject> DefinitionAsync(string reference)
        => await EcsAsync("DescribeTaskDefinition", $$"""{"taskDefinition":"{{reference}}","include":["TAGS"]}""");

    private async Task<int> RevisionsAsync()
        => (await EcsAsync("ListTaskDefinitions", """{"familyPrefix":"web"}"""))["taskDefinitionArns"]!.AsArray().Count;

    private async Task<JsonObject> ServiceAsync(string name = "web")
        => (await EcsAsync("DescribeServices", $$"""{"cluster":"c","services":["{{name}}"]}"""))["services"]![0]!.AsObject();

    private const string V2 = """{"cluster":"c","service":"web","image":"ghcr.io/acme/app:v2"}""";

    [Fact]
    public async Task A_signed_delivery_registers_a_revision_with_only_the_image_changed_and_deploys_it()
    {
        await SetUpAsync();

        var reply = await Plane.DeliverAsync(V2, Delivery(), _token);

        Assert.Equal(202, reply.Status);
        var arn = reply.Member("taskDefinitionArn");
        Assert.EndsWith("task-definition/web:2", arn);
        Assert.EndsWith("service/c/web", reply.Member("serviceArn"));
        Assert.Matches("^http://deploy.harness.test/deploy/status/[A-Za-z0-9_-]{43}$", reply.Member("statusUrl"));

        var before = await DefinitionAsync("web:1");
        var after = await DefinitionAsync("web:2");
        Assert.Equal("ghcr.io/acme/app:v2", after["taskDefinition"]!["containerDefinitions"]![0]!["image"]!.GetValue<string>());
        // Everything else is as it was: the container definitions but for the image, the task size, the tags.
        before["taskDefinition"]!["containerDefinitions"]![0]!["image"] = "ghcr.io/acme/app:v2";
        Assert.Equal(before["taskDefinition"]!["containerDefinitions"]!.ToJsonString(), after["taskDefinition"]!["containerDefinitions"]!.ToJsonString());
        Assert.Equal("256", after["taskDefinition"]!["cpu"]!.GetValue<string>());
        Assert.Equal("""[{"key":"team","value":"web"}]""", after["tags"]!.ToJsonString());

        var service = await ServiceAsync();
        Assert.Equal(arn, service["taskDefinition"]!.GetValue<string>());
        var primary = service["deployments"]!.AsArray().Single(d => d!["status"]!.GetValue<string>() == "PRIMARY")!;
        Assert.Equal(reply.Member("deploymentId"), primary["id"]!.GetValue<string>());

        var status = await Plane.StatusAsync(reply.Member("statusUrl"), _token);
        Assert.Equal(200, status.Status);
        Assert.Equal("IN_PROGRESS", status.Member("rolloutState"));
        Assert.Equal(1, status.Body["desiredCount"]!.GetValue<int>());
        Assert.Equal(0, status.Body["runningCount"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_repeated_delivery_answers_as_the_first_and_registers_nothing()
    {
        await SetUpAsync();
        var id = Delivery();
        var first = await Plane.DeliverAsync(V2, id, _token);

        // Even after the service moved on (another delivery), the repeat answers as the first did.
        await Plane.DeliverAsync("""{"cluster":"c","service":"web","image":"ghcr.io/acme/app:v3"}""", Delivery(), _token);
        var again = await Plane.DeliverAsync(V2, id, _token, secret: DeployHarness.OldSecret);

        Assert.Equal(first.Status, again.Status);
        Assert.Equal(first.Body.ToJsonString(), again.Body.ToJsonString());
        Assert.Equal(3, await RevisionsAsync());

        var reused = await Plane.DeliverAsync("""{"cluster":"c","service":"web","image":"ghcr.io/acme/app:v9"}""", id, _token);
        Assert.Equal(409, reused.Status);
    }

    [Fact]
    public async Task A_repeat_answers_as_the_first_even_after_the_service_was_deleted()
    {
        // The delivery's row and the service are read together now: the row still decides first.
        await SetUpAsync();
        var id = Delivery();
        var first = await Plane.DeliverAsync(V2, id, _token);
        Assert.Equal(202, first.Status);
        await EcsAsync("DeleteService", """{"cluster":"c","service":"web","force":true}""");

        var again = await Plane.DeliverAsync(V2, id, _token);
        Assert.Equal((202, first.Body.ToJsonString()), (again.Status, again.Body.ToJsonString()));
        var fresh = await Plane.DeliverAsync(V2, Delivery(), _token);
        Assert.Equal((404, "Service web not found in cluster c."), (fresh.Status, fresh.Message));
    }

    [Fact]
    public async Task A_service_behind_its_family_gets_a_revision_of_its_own_definition_after_the_latest()
    {
        // The service runs web:1 while web:2 (another image, another environment) was registered and never deployed:
        // the delivery changes the service's definition, not the family's latest, and registers web:3.
        await SetUpAsync();
        await EcsAsync("RegisterTaskDefinition", """
            {"family":"web","containerDefinitions":[{"name":"app","image":"ghcr.io/acme/app:v1","memory":128,"environment":[{"name":"MODE","value":"test"}]}]}
            """);

        var reply = await Plane.DeliverAsync(V2, Delivery(), _token);

        Assert.Equal(202, reply.Status);
        Assert.EndsWith("task-definition/web:3", reply.Member("taskDefinitionArn"));
        var before = (await DefinitionAsync("web:1"))["taskDefinition"]!["containerDefinitions"]!;
        before[0]!["image"] = "ghcr.io/acme/app:v2";
        Assert.Equal(before.ToJsonString(), (await DefinitionAsync("web:3"))["taskDefinition"]!["containerDefinitions"]!.ToJsonString());
        Assert.EndsWith("task-definition/web:3", (await ServiceAsync())["taskDefinition"]!.GetValue<string>());
    }

    [Fact]
    public async Task Identical_deliveries_at_once_to_two_control_planes_register_one_revision()
    {
        await SetUpAsync();
        using var other = new DeployHarness(azurite, _prefix);
        var id = Delivery();

        var replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => (i % 2 == 0 ? Plane : other).DeliverAsync(V2, id, _token)));

        Assert.All(replies, r => Assert.Equal(202, r.Status));
        Assert.Single(replies.Select(r => r.Body.ToJsonString()).Distinct());
        Assert.Equal(2, await RevisionsAsync());
    }

    [Fact]
    public async Task Deliveries_for_one_service_at_once_are_applied_one_after_another_and_none_is_lost()
    {
        await SetUpAsync();

        var replies = await Task.WhenAll(
            Plane.DeliverAsync(V2, Delivery(), _token),
            Plane.DeliverAsync("""{"cluster":"c","service":"web","image":"local/busybox:webhook-v2","container":"sidecar"}""", Delivery(), _token));

        Assert.All(replies, r => Assert.Equal(202, r.Status));
        var final = await DefinitionAsync((await ServiceAsync())["taskDefinition"]!.GetValue<string>());
        var images = final["taskDefinition"]!["containerDefinitions"]!.AsArray().Select(c => c!["image"]!.GetValue<string>()).ToArray();
        Assert.Equal(["ghcr.io/acme/app:v2", "local/busybox:webhook-v2"], images);
        Assert.Equal(3, await RevisionsAsync());
    }

    [Fact]
    public async Task The_same_image_deploys_nothing_unless_forced()
    {
        await SetUpAsync();
        var current = (await ServiceAsync())["deployments"]![0]!["id"]!.GetValue<string>();

        var same = await Plane.DeliverAsync("""{"cluster":"c","service":"web","image":"ghcr.io/acme/app:v1"}""", Delivery(), _token);
        Assert.Equal(200, same.Status);
        Assert.Equal(current, same.Member("deploymentId"));
        Assert.Equal(1, await RevisionsAsync());

        var forced = await Plane.DeliverAsync("""{"cluster":"c","service":"web","image":"ghcr.io/acme/app:v1","force":true}""", Delivery(), _token);
        Assert.Equal(202, forced.Status);
        Assert.NotEqual(current, forced.Member("deploymentId"));
        Assert.Equal(2, await RevisionsAsync());
    }

    [Fact]
    public async Task Bad_deliveries_get_their_status_and_change_nothing()
    {
        await SetUpAsync();

        Assert.Equal(401, (await Plane.DeliverAsync(V2, Delivery(), _token, secret: null)).Status);
        var wrong = await Plane.DeliverAsync(V2, Delivery(), _token, secret: "not-the-secret");
        Assert.Equal(401, wrong.Status);
        Assert.Equal("The request signature is missing or invalid.", wrong.Message);
        // A signature of another body is as wrong as no signature, and answered the same.
        var forged = await Plane.SendAsync(Encoding.UTF8.GetBytes(V2), [(WebhookSignature.Header, WebhookSignature.Sign("{}"u8, DeployHarness.NewSecret)), (DeployWebhook.DeliveryHeader, Delivery())], _token);
        Assert.Equal((401, wrong.Message), (forged.Status, forged.Message));

        var malformed = await Plane.DeliverAsync("""{"cluster":"c",""", Delivery(), _token);
        Assert.Equal(400, malformed.Status);
        Assert.StartsWith("Malformed JSON body", malformed.Message);
        var noService = await Plane.DeliverAsync("""{"cluster":"c","image":"ghcr.io/acme/app:v2"}""", Delivery(), _token);
        Assert.Equal((400, "Missing member \"service\": the service name."), (noService.Status, noService.Message));
        var badImage = await Plane.DeliverAsync("""{"cluster":"c","service":"web","image":"GHCR.io/Acme/App:v2"}""", Delivery(), _token);
        Assert.Equal(400, badImage.Status);
        Assert.Contains("is not a valid Docker image reference", badImage.Message);
        var noContainer = await Plane.DeliverAsync("""{"cluster":"c","service":"web","image":"ghcr.io/acme/other:v2"}""", Delivery(), _token);
        Assert.Equal(400, noContainer.Status);
        Assert.Contains("No container of the task definition runs an image of repository 'ghcr.io/acme/other'", noContainer.Message);
        Assert.Equal(400, (await Plane.DeliverAsync(V2, null, _token)).Status);

        var noCluster = await Plane.DeliverAsync("""{"cluster":"nope","service":"web","image":"ghcr.io/acme/app:v2"}""", Delivery(), _token);
        Assert.Equal((404, "Cluster nope not found."), (noCluster.Status, noCluster.Message));
        var unknown = await Plane.DeliverAsync("""{"cluster":"c","service":"nope","image":"ghcr.io/acme/app:v2"}""", Delivery(), _token);
        Assert.Equal((404, "Service nope not found in cluster c."), (unknown.Status, unknown.Message));

        // Over 1 MiB: refused on the declared length, before a byte is read.
        var unread = new CountingStream();
        var large = await Plane.SendAsync([], [], _token, contentLength: DeployWebhook.MaxBodyBytes + 1, stream: unread);
        Assert.Equal(413, large.Status);
        Assert.Equal(0, unread.Reads);
        // Without a declared length: refused once the limit is passed, not read to the end.
        var endless = new CountingStream(endless: true);
        var chunked = await Plane.SendAsync([], [], _token, stream: endless, contentLength: -1);
        Assert.Equal(413, chunked.Status);
        Assert.True(endless.Bytes < 2 * DeployWebhook.MaxBodyBytes);

        Assert.Equal(1, await RevisionsAsync());
        Assert.Single((await ServiceAsync())["deployments"]!.AsArray());
    }

    [Fact]
    public async Task A_ping_is_answered_and_a_package_published_deploys_to_the_services_that_opted_in()
    {
        await SetUpAsync(serviceTags: """, "tags":[{"key":"deploy:repository","value":"ghcr.io/acme/app"}]""");
        await EcsAsync("CreateService", """{"cluster":"c","serviceName":"not-opted-in","taskDefinition":"web:1","desiredCount":1}""");

        var ping = await Plane.DeliverAsync("""{"zen":"Keep it logically awesome.","hook_id":1}""", Delivery(), _token, gitHubEvent: "ping");
        Assert.Equal((200, "pong"), (ping.Status, ping.Message));

        var published = """
            {"action":"published","registry_package":{"name":"App","namespace":"Acme","package_type":"CONTAINER",
             "registry":{"host":"ghcr.io","url":"https://ghcr.io"},
             "package_version":{"version":"sha256:0123","container_metadata":{"tag":{"name":"v7","digest":"sha256:0123"}}}}}
            """;
        var reply = await Plane.DeliverAsync(published, Delivery(), _token, gitHubEvent: "registry_package", query: "?cluster=c");

        Assert.Equal(202, reply.Status);
        var deployment = Assert.Single(reply.Body["deployments"]!.AsArray())!;
        Assert.EndsWith("service/c/web", deployment["serviceArn"]!.GetValue<string>());
        var image = (await DefinitionAsync((await ServiceAsync())["taskDefinition"]!.GetValue<string>()))["taskDefinition"]!["containerDefinitions"]![0]!["image"]!.GetValue<string>();
        Assert.Equal("ghcr.io/acme/app:v7", image);
        Assert.EndsWith("web:1", (await ServiceAsync("not-opted-in"))["taskDefinition"]!.GetValue<string>());

        var updated = await Plane.DeliverAsync(published.Replace("\"published\"", "\"updated\""), Delivery(), _token, gitHubEvent: "registry_package", query: "?cluster=c");
        Assert.Equal(200, updated.Status);
    }

    [Fact]
    public async Task A_delivery_whose_attempt_died_after_registering_is_finished_by_the_sweep_without_another_revision()
    {
        await SetUpAsync();
        // What a control plane that crashed between registering and updating the service leaves behind.
        var registered = await EcsAsync("RegisterTaskDefinition", """
            {"family":"web","containerDefinitions":[{"name":"app","image":"ghcr.io/acme/app:v2","memory":64}]}
            """);
        var arn = registered["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var id = Delivery();
        var longAgo = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(2);
        var store = Plane.Api.Get<DeliveryStore>();
        Assert.NotNull(await store.TryInsertAsync(new Delivery
        {
            Id = id,
            Fingerprint = DeliveryStore.Fingerprint(Encoding.UTF8.GetBytes(V2)),
            Single = true,
            StatusBase = "http://deploy.harness.test",
            ReceivedAt = longAgo,
            ClaimedAt = longAgo,
            Targets = [new PlannedDeployment { Cluster = "c", Service = "web", Image = "ghcr.io/acme/app:v2", StatusToken = new string('a', 43), TaskDefinitionArn = arn }],
        }, _token));

        await Plane.Api.Get<DeploySweep>().SweepAsync(_token);

        Assert.Equal(arn, (await ServiceAsync())["taskDefinition"]!.GetValue<string>());
        Assert.Equal(2, await RevisionsAsync());
        var repeat = await Plane.DeliverAsync(V2, id, _token);
        Assert.Equal(202, repeat.Status);
        Assert.Equal(arn, repeat.Member("taskDefinitionArn"));
        Assert.Equal("IN_PROGRESS", (await Plane.StatusAsync(repeat.Member("statusUrl"), _token)).Member("rolloutState"));
        Assert.Equal(2, await RevisionsAsync());
    }

    [Fact]
    public async Task A_delivery_whose_attempt_died_right_after_registering_adopts_that_revision()
    {
        await SetUpAsync();
        // The attempt recorded its intent (family at revision 1), registered web:2 as the webhook, and died.
        var described = (await DefinitionAsync("web:1"))["taskDefinition"]!.AsObject();
        described["containerDefinitions"]![0]!["image"] = "ghcr.io/acme/app:v2";
        var request = new JsonObject
        {
            ["family"] = "web",
            ["cpu"] = "256",
            ["containerDefinitions"] = described["containerDefinitions"]!.DeepClone(),
            ["tags"] = new JsonArray(new JsonObject { ["key"] = "team", ["value"] = "web" }),
        };
        Assert.True(Plane.Api.Get<Serverless.Core.Api.ActionRegistry>().TryGet("AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition", out var register));
        var arn = (await register(request, new Serverless.Core.Api.RequestContext(DeployRunner.Caller), _token))["taskDefinition"]!["taskDefinitionArn"]!.GetValue<string>();
        var id = Delivery();
        var longAgo = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(2);
        Assert.NotNull(await Plane.Api.Get<DeliveryStore>().TryInsertAsync(new Delivery
        {
            Id = id,
            Fingerprint = DeliveryStore.Fingerprint(Encoding.UTF8.GetBytes(V2)),
            Single = true,
            StatusBase = "http://deploy.harness.test",
            ReceivedAt = longAgo,
            ClaimedAt = longAgo,
            Targets = [new PlannedDeployment { Cluster = "c", Service = "web", Image = "ghcr.io/acme/app:v2", StatusToken = new string('c', 43), RegisteringAfter = 1 }],
        }, _token));

        var repeat = await Plane.DeliverAsync(V2, id, _token);

        Assert.Equal(202, repeat.Status);
        Assert.Equal(arn, repeat.Member("taskDefinitionArn"));
        Assert.Equal(arn, (await ServiceAsync())["taskDefinition"]!.GetValue<string>());
        Assert.Equal(2, await RevisionsAsync());
    }

    [Fact]
    public async Task A_status_url_nobody_was_given_is_not_found()
    {
        var reply = await Plane.StatusAsync("http://x/deploy/status/" + new string('b', 43), _token);
        Assert.Equal(404, reply.Status);
        Assert.Equal(404, (await Plane.StatusAsync("http://x/deploy/status/short", _token)).Status);
    }

    /// <summary>A request body that counts what is read from it; endless: never ends.</summary>
    private sealed class CountingStream(bool endless = false) : Stream
    {
        public int Reads { get; private set; }
        public long Bytes { get; private set; }
        public override int Read(byte[] buffer, int offset, int count)
        {
            Reads++;
            if (!endless) return 0;
            Array.Fill(buffer, (byte)' ', offset, count);
            Bytes += count;
            return count;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Bytes; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
