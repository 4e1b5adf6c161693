using System.Reflection;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Serverless.Functions.Standalone;

namespace Serverless.Functions.Tests;

/// <summary>
/// The standalone host serves what functions.metadata declares; the Functions host serves what the
/// [Function] attributes declare. These must be the same functions, or the two modes drift apart.
/// </summary>
public sealed class FunctionDiscoveryTests
{
    private static readonly Assembly FunctionsAssembly = typeof(Composition).Assembly;

    private static IReadOnlyList<StandaloneFunction> Discovered()
        => StandaloneHost.LoadFunctions(AppContext.BaseDirectory, new HostJson(), new ConfigurationBuilder().Build());

    private static IEnumerable<MethodInfo> AttributedMethods()
        => FunctionsAssembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttribute<FunctionAttribute>() is not null);

    [Fact]
    public void The_metadata_declares_exactly_the_methods_carrying_Function_attributes()
    {
        var attributed = AttributedMethods().Select(Describe).Order(StringComparer.Ordinal).ToList();
        var discovered = Discovered().Select(Describe).Order(StringComparer.Ordinal).ToList();

        Assert.NotEmpty(attributed);
        Assert.Equal(attributed, discovered);
    }

    [Fact]
    public void Every_discovered_function_resolves_to_its_attributed_method()
    {
        var byName = AttributedMethods().ToDictionary(m => m.GetCustomAttribute<FunctionAttribute>()!.Name);
        foreach (var function in Discovered())
        {
            Assert.Equal(byName[function.Name], function.Method);
        }
    }

    [Fact]
    public void Every_queue_and_timer_function_of_the_app_resolves_its_queue_and_schedule()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true" })
            .Build();
        var functions = Discovered();

        var (queues, timers) = StandaloneHost.ResolveTriggers(functions, configuration);

        Assert.Equal(functions.Count(f => f.Kind == TriggerKind.Queue), queues.Count);
        Assert.Equal(functions.Count(f => f.Kind == TriggerKind.Timer), timers.Count);
    }

    // One line per function: name, entry point, trigger and what the trigger is bound to.
    private static string Describe(MethodInfo method)
    {
        var name = method.GetCustomAttribute<FunctionAttribute>()!.Name;
        var entryPoint = $"{method.DeclaringType!.FullName}.{method.Name}";
        foreach (var parameter in method.GetParameters())
        {
            switch (parameter.GetCustomAttributes().FirstOrDefault())
            {
                case HttpTriggerAttribute http:
                    return Line(name, entryPoint, "httpTrigger", http.Route ?? name, Methods(http.Methods));
                case QueueTriggerAttribute queue:
                    return Line(name, entryPoint, "queueTrigger", queue.QueueName, queue.Connection ?? "");
                case TimerTriggerAttribute timer:
                    return Line(name, entryPoint, "timerTrigger", timer.Schedule, timer.RunOnStartup.ToString());
            }
        }
        return Line(name, entryPoint, "no trigger", "", "");
    }

    private static string Describe(StandaloneFunction function)
    {
        var trigger = function.Trigger;
        return function.Kind switch
        {
            TriggerKind.Http => Line(function.Name, function.Declaration.EntryPoint, trigger.Type,
                trigger.GetString("route") ?? function.Name, Methods(trigger.GetStrings("methods"))),
            TriggerKind.Queue => Line(function.Name, function.Declaration.EntryPoint, trigger.Type,
                trigger.GetString("queueName") ?? "", trigger.GetString("connection") ?? ""),
            TriggerKind.Timer => Line(function.Name, function.Declaration.EntryPoint, trigger.Type,
                trigger.GetString("schedule") ?? "", (trigger.GetBoolean("runOnStartup") ?? false).ToString()),
            _ => Line(function.Name, function.Declaration.EntryPoint, trigger.Type, "", ""),
        };
    }

    private static string Methods(IEnumerable<string>? methods)
        => string.Join(',', (methods ?? []).Select(m => m.ToUpperInvariant()).Order(StringComparer.Ordinal));

    private static string Line(string name, string entryPoint, string trigger, string target, string detail)
        => $"{name} | {entryPoint} | {trigger} | {target} | {detail}";
}
