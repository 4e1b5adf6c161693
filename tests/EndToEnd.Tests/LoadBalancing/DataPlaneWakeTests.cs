using System.Diagnostics;
using System.Net;
using Serverless.TestSupport;
using Serverless.TestSupport.Storage;
using Xunit.Abstractions;

namespace Serverless.EndToEnd.Tests.LoadBalancing;

/// <summary>
/// The data plane learns of a change by the wake the API sends once the change is committed, not by
/// reading storage on a short timer: so an idle data plane costs its slow fallback read and little more.
/// </summary>
[Collection("control plane")]
public sealed class DataPlaneWakeTests(ControlPlaneFixture plane, ITestOutputHelper output)
{
    private Task<CliResult> Elb(params string[] args) => plane.AwsAsync(["elbv2", .. args]);

    [Fact]
    public async Task A_listener_created_while_the_fallback_read_is_an_hour_away_is_served_through_the_wake()
    {
        await using var balancer = LoadBalancerProcess.Start(plane, new Dictionary<string, string> { ["LoadBalancer__RefreshMilliseconds"] = "3600000" });
        // Registered for wakes before its first read, so everything after this reaches it by a wake or not at all.
        await WaitForLogAsync(balancer, "Configuration loaded");

        var lbArn = (await Elb("create-load-balancer", "--name", "wake-web")).Json["LoadBalancers"]![0]!["LoadBalancerArn"]!.GetValue<string>();
        var port = ControlPlaneFixture.FreePort();
        await Elb("create-listener", "--load-balancer-arn", lbArn, "--protocol", "HTTP", "--port", port.ToString(),
            "--default-actions", "Type=fixed-response,FixedResponseConfig={StatusCode=418,ContentType=text/plain,MessageBody=woken}");

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        var deadline = DateTime.UtcNow.AddSeconds(30);
        HttpResponseMessage? answer = null;
        while (answer is null && DateTime.UtcNow < deadline)
        {
            try
            {
                answer = await http.GetAsync("/");
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
        }
        Assert.True(answer is not null, $"The listener never opened: the wake did not reach the data plane.\n{balancer.Log}");
        Assert.Equal((HttpStatusCode)418, answer.StatusCode);
        Assert.Equal("woken", await answer.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_idle_data_plane_makes_one_storage_transaction_per_fallback_read_and_nothing_else()
    {
        // A proxy of its own in front of the fixture's storage counts this data plane's requests alone.
        await using var counting = new StorageProxy();
        await counting.StartAsync(plane.Storage.Proxy.TableRoot, plane.Storage.Proxy.QueueRoot, CancellationToken.None);
        var storage = $"DefaultEndpointsProtocol=http;AccountName={AzuriteFixture.AccountName};AccountKey={AzuriteFixture.AccountKey};" +
                      $"BlobEndpoint={plane.Storage.BlobEndpoint};QueueEndpoint={counting.QueueRoot}{AzuriteFixture.AccountName};" +
                      $"TableEndpoint={counting.TableRoot}{AzuriteFixture.AccountName};";
        const int refresh = 1000;
        await using var balancer = LoadBalancerProcess.Start(plane, new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = storage,
            ["LoadBalancer__RefreshMilliseconds"] = refresh.ToString(),
        });
        await WaitForLogAsync(balancer, "Configuration loaded");
        await Task.Delay(refresh);

        var before = counting.Requests;
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(6));
        var requests = counting.Requests - before;
        var elapsed = clock.Elapsed;

        // Idle, the data plane's only storage traffic is the fallback read: at most one per refresh.
        var reads = (int)(elapsed.TotalMilliseconds / refresh) + 1;
        Assert.InRange(requests, 1, reads);
        // The same reads at the shipped 30 s fallback, plus the hourly renewal of its wake registration (a write and a query).
        var perHour = requests / elapsed.TotalSeconds * refresh / 30_000 * 3600 + 2;
        output.WriteLine($"Idle data plane: {requests} storage requests in {elapsed.TotalSeconds:0.0} s at a {refresh} ms fallback read; " +
                         $"at the shipped 30 s fallback: {perHour:0} transactions/hour (was 7,200 at the former 500 ms read)");
    }

    private static async Task WaitForLogAsync(LoadBalancerProcess balancer, string text)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!balancer.Log.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The data plane never logged '{text}':\n{balancer.Log}");
            await Task.Delay(100);
        }
    }
}
