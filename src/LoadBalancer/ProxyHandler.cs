using System.Diagnostics;
using System.Net;
using System.Text;
using Microsoft.Extensions.Primitives;
using Serverless.Core.LoadBalancing;
using Yarp.ReverseProxy.Forwarder;

namespace Serverless.LoadBalancer;

/// <summary>
/// One request through a listener: the first matching rule by priority decides; a forward picks a target
/// group by weight and a target among those that may take new requests (never a draining one) as
/// <see cref="TargetSelection"/> decides (round robin, slow start, <c>lb_cookie</c> stickiness), and YARP forwards to it. ALB's answers where it has no target: 503 with no eligible target, 502 when the
/// target fails, 504 when it does not answer in time. A failing target costs only its own requests.
/// </summary>
public sealed class ProxyHandler(RoutingState state, IHttpForwarder forwarder, DataPlaneOptions options, TimeProvider time, ILogger<ProxyHandler> logger)
{
    private readonly HttpMessageInvoker _client = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ActivityHeadersPropagator = null,
        EnableMultipleHttp2Connections = true,
    });

    private readonly ForwarderRequestConfig _config = new() { ActivityTimeout = TimeSpan.FromSeconds(options.IdleTimeoutSeconds) };

    public async Task HandleAsync(HttpContext context, int port)
    {
        var table = state.Table;
        var listener = table.Listeners.FirstOrDefault(l => l.Port == port);
        if (listener is null)
        {
            await WriteAsync(context, 503, "text/plain", "Service Temporarily Unavailable");
            return;
        }
        var request = context.Request;
        var route = new RouteRequest(request.Host.Value ?? "", request.Path.Value ?? "/",
            name => request.Headers.TryGetValue(name, out var values) ? values.Select(v => v ?? "") : [],
            () => request.Query.SelectMany(q => q.Value.Select(v => (q.Key, v ?? ""))));
        var rule = Routing.Match(listener, route);
        switch (rule?.Action)
        {
            case FixedResponseAction fixedResponse:
                await WriteAsync(context, fixedResponse.StatusCode, fixedResponse.ContentType ?? "text/plain", fixedResponse.Body ?? "");
                return;
            case RedirectAction redirect:
                context.Response.StatusCode = redirect.StatusCode;
                context.Response.Headers.Location = Routing.RedirectLocation(redirect, request.Scheme, request.Host.Value ?? "", port, request.Path.Value ?? "/", request.QueryString.Value ?? "");
                return;
            case ForwardAction forward:
                await ForwardAsync(context, table, forward);
                return;
            default:
                await WriteAsync(context, 503, "text/plain", "Service Temporarily Unavailable");
                return;
        }
    }

    private async Task ForwardAsync(HttpContext context, RoutingTable table, ForwardAction forward)
    {
        var arn = forward.Groups.Count == 1 ? forward.Groups[0].TargetGroupArn : Routing.PickGroup(forward, Random.Shared.NextDouble());
        if (!table.TargetGroups.TryGetValue(arn, out var group))
        {
            await WriteAsync(context, 503, "text/plain", "Service Temporarily Unavailable");
            return;
        }
        var eligible = Routing.Eligible(group.Targets, t => state.HealthOf(group, t));
        if (eligible.Count == 0)
        {
            await WriteAsync(context, 503, "text/plain", "Service Temporarily Unavailable");
            return;
        }
        var target = Choose(context.Request, group, eligible);
        if (group.StickySeconds is { } sticky)
        {
            // On every response, as ALB renews its cookie; set when the response starts, after YARP copied the target's headers.
            context.Response.OnStarting(() =>
            {
                foreach (var cookie in TargetSelection.SetCookies(group.Id, target, sticky, time.GetUtcNow())) context.Response.Headers.Append("Set-Cookie", cookie);
                return Task.CompletedTask;
            });
        }
        var address = Routing.Address(group, target, options.InstanceAddress);
        var destination = $"http://{(address.Contains(':') ? $"[{address}]" : address)}:{target.Port}/";
        var error = await forwarder.SendAsync(context, destination, _client, _config, HttpTransformer.Default);
        if (error == ForwarderError.None) return;

        var failure = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled)
        {
            // The client went away (e.g. a load generator stopping with requests in flight): not the target's failure.
            logger.LogDebug("Forward to {Target}:{Port} of {TargetGroupArn} canceled by the client: {Error}", target.Id, target.Port, arn, error);
            return;
        }
        logger.LogWarning("Forward to {Target}:{Port} of {TargetGroupArn} failed: {Error} {Message}", target.Id, target.Port, arn, error, failure?.Message);
        if (context.Response.HasStarted) return;
        var status = error is ForwarderError.RequestTimedOut ? 504 : 502;
        await WriteAsync(context, status, "text/plain", status == 504 ? "Gateway Timeout" : "Bad Gateway");
    }

    /// <summary>
    /// The target of this request: the one its stickiness cookie names while that one may take requests; otherwise
    /// round robin, weighted by the slow-start shares when a target of the group is ramping up.
    /// </summary>
    private TargetRow Choose(HttpRequest request, RouteTargetGroup group, IReadOnlyList<TargetRow> eligible)
    {
        if (group.StickySeconds is not null)
        {
            var cookie = request.Cookies[TargetSelection.StickyCookie] ?? request.Cookies[TargetSelection.StickyCorsCookie];
            if (TargetSelection.Sticky(cookie, group.Id, eligible) is { } pinned) return pinned;
        }
        var next = state.NextIndex(group.Arn);
        if (group.SlowStartSeconds == 0 || eligible.Count == 1) return eligible[next % eligible.Count];
        var now = time.GetUtcNow();
        var shares = new double[eligible.Count];
        for (var i = 0; i < shares.Length; i++) shares[i] = state.Share(group, eligible[i], now);
        return TargetSelection.Pick(eligible, shares, next, Random.Shared.NextDouble());
    }

    private static Task WriteAsync(HttpContext context, int status, string contentType, string body)
    {
        if (context.Response.HasStarted) return Task.CompletedTask;
        context.Response.Clear();
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        var bytes = Encoding.UTF8.GetBytes(body);
        context.Response.ContentLength = bytes.Length;
        return context.Response.Body.WriteAsync(bytes).AsTask();
    }
}
