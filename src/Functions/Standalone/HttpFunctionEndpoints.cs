using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Serverless.Functions.Standalone;

/// <summary>
/// Serves HTTP-triggered functions as ASP.NET Core endpoints at <c>/{routePrefix}/{route}</c> with their
/// declared methods, the way the Functions host routes them.
/// </summary>
public static partial class HttpFunctionEndpoints
{
    // ActionContext wants a descriptor; results never read it, so one shared instance does.
    private static readonly ActionDescriptor SharedActionDescriptor = new();

    /// <summary>The route template the host serves a function at: the route prefix, then the route, or the function name when no route is declared.</summary>
    public static string RouteTemplate(string routePrefix, StandaloneFunction function)
    {
        var route = function.Trigger.GetString("route") ?? function.Name;
        var segments = new[] { routePrefix.Trim('/'), route.Trim('/') }.Where(s => s.Length > 0);
        return "/" + string.Join('/', segments);
    }

    /// <summary>The HTTP methods the function accepts, upper-case; empty means every method.</summary>
    public static IReadOnlyList<string> Methods(StandaloneFunction function)
        => function.Trigger.GetStrings("methods")?.Select(m => m.ToUpperInvariant()).ToList() ?? [];

    public static void Map(IEndpointRouteBuilder endpoints, IEnumerable<StandaloneFunction> functions, string routePrefix, ILogger logger)
    {
        foreach (var function in functions.Where(f => f.Kind == TriggerKind.Http))
        {
            var template = RouteTemplate(routePrefix, function);
            var methods = Methods(function);
            var handler = CreateHandler(function, logger);
            var endpoint = methods.Count > 0 ? endpoints.MapMethods(template, methods, handler) : endpoints.Map(template, handler);
            endpoint.WithDisplayName(function.Name);
            LogMapped(logger, function.Name, methods.Count > 0 ? string.Join(',', methods) : "*", template);
        }
    }

    private static RequestDelegate CreateHandler(StandaloneFunction function, ILogger logger) => async http =>
    {
        var started = logger.IsEnabled(LogLevel.Debug) ? Stopwatch.GetTimestamp() : 0;
        // RequestServices is the request's own scope: the function class and its scoped dependencies live for this request.
        var invocation = new StandaloneInvocation(function, http.RequestServices, http.Request, http.RequestAborted)
        {
            HttpContext = http,
        };
        try
        {
            var result = await function.InvokeAsync(invocation);
            await WriteResultAsync(http, result);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away; there is nobody to answer.
            return;
        }
        catch (Exception e)
        {
            // As the host: a function that throws answers 500 with no details.
            LogFailed(logger, e, function.Name, invocation.InvocationId, e.Message);
            if (!http.Response.HasStarted)
            {
                http.Response.Clear();
                http.Response.StatusCode = StatusCodes.Status500InternalServerError;
            }
            return;
        }
        if (started != 0)
        {
            LogCompleted(logger, http.Request.Method, http.Request.Path, function.Name, http.Response.StatusCode,
                Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    };

    private static Task WriteResultAsync(HttpContext http, object? result) => result switch
    {
        null => Task.CompletedTask,
        IActionResult action => action.ExecuteResultAsync(new ActionContext(http, http.GetRouteData(), SharedActionDescriptor)),
        IResult minimal => minimal.ExecuteAsync(http),
        // The worker answers any other return value as a 200 with the value serialized.
        _ => new ObjectResult(result).ExecuteResultAsync(new ActionContext(http, http.GetRouteData(), SharedActionDescriptor)),
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "HTTP function {Function}: [{Methods}] {Template}")]
    private static partial void LogMapped(ILogger logger, string function, string methods, string template);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Method} {Path} -> {Function} {StatusCode} in {ElapsedMs:F2} ms")]
    private static partial void LogCompleted(
        ILogger logger, string method, PathString path, string function, int statusCode, double elapsedMs);

    [LoggerMessage(Level = LogLevel.Error, Message = "Function {Function} failed (invocation {InvocationId}): {Error}")]
    private static partial void LogFailed(ILogger logger, Exception exception, string function, string invocationId, string error);
}
