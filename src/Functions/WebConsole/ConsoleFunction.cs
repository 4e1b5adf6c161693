using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Serverless.Core.WebConsole;

namespace Serverless.Functions.WebConsole;

/// <summary>The web console's static files at <c>/console</c>; the page then calls the API at the root URL itself, signed.</summary>
public sealed class ConsoleFunction(ConsoleFiles files)
{
    [Function("Console")]
    public IActionResult Run(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "console/{*path}")] HttpRequest request)
        => files.Serve(request);
}
