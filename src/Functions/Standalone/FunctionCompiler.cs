using System.Collections.Immutable;
using System.ComponentModel;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.Loader;
using System.Text.Json;
using Azure.Storage.Queues.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace Serverless.Functions.Standalone;

/// <summary>
/// Turns a <see cref="FunctionDeclaration"/> into a <see cref="StandaloneFunction"/>: resolves the
/// <c>entryPoint</c>, checks every parameter can be bound, and compiles one expression tree per function
/// so that no invocation uses reflection. Anything the standalone host cannot bind fails here, at startup,
/// with the function's name.
/// </summary>
public static class FunctionCompiler
{
    // Matches the Functions worker's default serializer for POCO queue messages: case-insensitive JSON.
    private static readonly JsonSerializerOptions PocoOptions = new(JsonSerializerDefaults.Web);

    /// <exception cref="InvalidOperationException">The function cannot run in the standalone host; the message says why.</exception>
    public static StandaloneFunction Compile(FunctionDeclaration declaration, string baseDirectory)
    {
        try
        {
            return CompileCore(declaration, baseDirectory);
        }
        catch (Exception e)
        {
            // Whatever failed (our checks, loading the assembly, the constructor DI cannot satisfy), name the function.
            throw new InvalidOperationException(
                $"Function '{declaration.Name}' cannot run in the standalone host: {e.Message.TrimEnd('.')}.", e);
        }
    }

    private static StandaloneFunction CompileCore(FunctionDeclaration declaration, string baseDirectory)
    {
        var name = declaration.Name;
        var trigger = declaration.Trigger;
        var kind = trigger.Type.ToLowerInvariant() switch
        {
            "httptrigger" => TriggerKind.Http,
            "queuetrigger" => TriggerKind.Queue,
            "timertrigger" => TriggerKind.Timer,
            _ => throw Unsupported($"trigger type '{trigger.Type}' is not supported (httpTrigger, queueTrigger and timerTrigger are)"),
        };

        foreach (var binding in declaration.Bindings)
        {
            if (ReferenceEquals(binding, trigger)) continue;
            // An HTTP function's response is its return value; no other binding has a standalone implementation.
            var isHttpResponse = kind == TriggerKind.Http && binding.IsType("http") && binding.Name == "$return";
            if (!isHttpResponse)
            {
                throw Unsupported($"binding '{binding.Name}' of type '{binding.Type}' ({binding.Direction}) is not supported");
            }
        }

        var method = ResolveEntryPoint(declaration, baseDirectory);
        var routeParameters = kind == TriggerKind.Http ? RouteParameterNames(trigger.GetString("route") ?? name) : [];

        var invocation = Expression.Parameter(typeof(StandaloneInvocation), "invocation");
        Type? triggerType = null;
        var arguments = new List<Expression>();
        foreach (var parameter in method.GetParameters())
        {
            var type = parameter.ParameterType;
            if (type.IsByRef) throw Unsupported($"parameter '{parameter.Name}' is passed by reference");

            if (parameter.Name == trigger.Name)
            {
                CheckTriggerType(kind, type);
                triggerType = type;
                arguments.Add(Expression.Convert(Expression.Property(invocation, nameof(StandaloneInvocation.TriggerValue)), type));
            }
            else if (type == typeof(CancellationToken))
            {
                arguments.Add(Expression.Property(invocation, nameof(StandaloneInvocation.CancellationToken)));
            }
            else if (type == typeof(FunctionContext))
            {
                arguments.Add(Expression.Property(invocation, nameof(StandaloneInvocation.FunctionContext)));
            }
            else if (routeParameters.Contains(parameter.Name!, StringComparer.OrdinalIgnoreCase))
            {
                arguments.Add(RouteValue(invocation, parameter));
            }
            else
            {
                throw Unsupported($"parameter '{parameter.Name}' of type '{type.Name}' matches no binding");
            }
        }
        if (triggerType is null)
        {
            throw Unsupported($"'{declaration.EntryPoint}' has no parameter named '{trigger.Name}' for its {trigger.Type}");
        }

        Expression? target = null;
        if (!method.IsStatic)
        {
            var type = method.DeclaringType!;
            // A compiled constructor call, resolving dependencies from the invocation's scope (as the worker's
            // ActivatorUtilities.CreateInstance does), built once here.
            var factory = ActivatorUtilities.CreateFactory(type, Type.EmptyTypes);
            target = Expression.Convert(
                Expression.Invoke(
                    Expression.Constant(factory),
                    Expression.Property(invocation, nameof(StandaloneInvocation.Services)),
                    Expression.Constant(null, typeof(object[]))),
                type);
        }

        var body = WrapResult(Expression.Call(target, method, arguments), method.ReturnType);
        var invoker = Expression.Lambda<Func<StandaloneInvocation, ValueTask<object?>>>(body, $"Invoke_{name}", [invocation])
            .Compile();

        var definition = new StandaloneFunctionDefinition(
            name,
            declaration.EntryPoint,
            method.DeclaringType!.Assembly.Location,
            [.. method.GetParameters().Select(p => new FunctionParameter(p.Name!, p.ParameterType))],
            declaration.Bindings);

        return new StandaloneFunction(
            declaration, kind, method, triggerType, routeParameters, definition, invoker,
            kind == TriggerKind.Queue ? QueueMessageConverter(triggerType) : null);
    }

    private static MethodInfo ResolveEntryPoint(FunctionDeclaration declaration, string baseDirectory)
    {
        var entryPoint = declaration.EntryPoint;
        var dot = entryPoint.LastIndexOf('.');
        if (dot <= 0) throw Unsupported($"entryPoint '{entryPoint}' is not of the form Namespace.Type.Method");
        var typeName = entryPoint[..dot];
        var methodName = entryPoint[(dot + 1)..];

        var assembly = LoadAssembly(declaration.ScriptFile, baseDirectory);
        var type = assembly.GetType(typeName, throwOnError: false)
                   ?? throw Unsupported($"type '{typeName}' is not in '{assembly.GetName().Name}'");

        var candidates = type
            .GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static)
            .Where(m => m.Name == methodName)
            .ToList();
        if (candidates.Count > 1)
        {
            // Overloads: the one carrying this function's [Function] attribute is the entry point.
            candidates = candidates.Where(m => m.GetCustomAttribute<FunctionAttribute>()?.Name == declaration.Name).ToList();
        }
        return candidates.Count == 1
            ? candidates[0]
            : throw Unsupported($"'{entryPoint}' does not name exactly one public method");
    }

    private static Assembly LoadAssembly(string scriptFile, string baseDirectory)
    {
        var simpleName = Path.GetFileNameWithoutExtension(scriptFile);
        foreach (var loaded in AppDomain.CurrentDomain.GetAssemblies())
        {
            if (string.Equals(loaded.GetName().Name, simpleName, StringComparison.OrdinalIgnoreCase)) return loaded;
        }
        var path = Path.GetFullPath(Path.Combine(baseDirectory, scriptFile));
        return File.Exists(path)
            ? AssemblyLoadContext.Default.LoadFromAssemblyPath(path)
            : Assembly.Load(new AssemblyName(simpleName));
    }

    private static void CheckTriggerType(TriggerKind kind, Type type)
    {
        var supported = kind switch
        {
            TriggerKind.Http => type == typeof(HttpRequest),
            TriggerKind.Timer => type == typeof(TimerInfo),
            // string, byte[], BinaryData, QueueMessage, or a POCO deserialized from JSON, as the worker binds them.
            TriggerKind.Queue => type == typeof(string) || type == typeof(byte[]) || type == typeof(BinaryData)
                                 || type == typeof(QueueMessage) || IsPoco(type),
            _ => false,
        };
        if (!supported) throw Unsupported($"a {kind} trigger cannot bind to a parameter of type '{type.FullName}'");
    }

    private static bool IsPoco(Type type)
        => !type.IsPrimitive && !type.IsAbstract && !type.IsInterface && type != typeof(object)
           && !typeof(System.Collections.IEnumerable).IsAssignableFrom(type) && !typeof(Delegate).IsAssignableFrom(type);

    private static Func<QueueMessage, BinaryData, object?> QueueMessageConverter(Type type)
    {
        if (type == typeof(string)) return static (_, body) => body.ToString();
        if (type == typeof(byte[])) return static (_, body) => body.ToArray();
        if (type == typeof(BinaryData)) return static (_, body) => body;
        if (type == typeof(QueueMessage))
        {
            // The worker hands out the message with its body decoded.
            return static (message, body) => QueuesModelFactory.QueueMessage(
                message.MessageId, message.PopReceipt, body, message.DequeueCount,
                message.NextVisibleOn, message.InsertedOn, message.ExpiresOn);
        }
        return (_, body) => JsonSerializer.Deserialize(body.ToMemory().Span, type, PocoOptions);
    }

    private static IReadOnlyList<string> RouteParameterNames(string route)
    {
        var pattern = RoutePatternFactory.Parse(route);
        return [.. pattern.Parameters.Select(p => p.Name)];
    }

    private static Expression RouteValue(ParameterExpression invocation, ParameterInfo parameter)
    {
        var raw = Expression.Call(invocation, nameof(StandaloneInvocation.GetRouteValue), null, Expression.Constant(parameter.Name));
        if (parameter.ParameterType == typeof(string)) return raw;

        var converter = TypeDescriptor.GetConverter(parameter.ParameterType);
        if (!converter.CanConvertFrom(typeof(string)))
        {
            throw new InvalidOperationException(
                $"route parameter '{parameter.Name}' cannot be converted from a string to '{parameter.ParameterType.Name}'");
        }
        return Expression.Call(
            typeof(Results), nameof(Results.ConvertRouteValue), [parameter.ParameterType], raw, Expression.Constant(converter));
    }

    private static Expression WrapResult(Expression call, Type returnType)
    {
        if (returnType == typeof(void)) return Expression.Block(call, Expression.Default(typeof(ValueTask<object?>)));
        if (returnType == typeof(Task)) return Expression.Call(typeof(Results), nameof(Results.FromTask), null, call);
        if (returnType == typeof(ValueTask)) return Expression.Call(typeof(Results), nameof(Results.FromValueTask), null, call);
        if (returnType.IsGenericType)
        {
            var definition = returnType.GetGenericTypeDefinition();
            var result = returnType.GetGenericArguments()[0];
            if (definition == typeof(Task<>))
            {
                return Expression.Call(typeof(Results), nameof(Results.FromTaskOf), [result], call);
            }
            if (definition == typeof(ValueTask<>))
            {
                return Expression.Call(typeof(Results), nameof(Results.FromValueTaskOf), [result], call);
            }
        }
        return Expression.New(
            typeof(ValueTask<object?>).GetConstructor([typeof(object)])!,
            Expression.Convert(call, typeof(object)));
    }

    private static InvalidOperationException Unsupported(string reason) => new(reason);

    /// <summary>Adapters the compiled invokers call; completed tasks take no async state machine.</summary>
    internal static class Results
    {
        public static ValueTask<object?> FromTask(Task task)
            => task.IsCompletedSuccessfully ? default : AwaitTask(task);

        public static ValueTask<object?> FromValueTask(ValueTask task)
        {
            if (!task.IsCompletedSuccessfully) return AwaitValueTask(task);
            task.GetAwaiter().GetResult();
            return default;
        }

        public static ValueTask<object?> FromTaskOf<T>(Task<T> task)
            => task.IsCompletedSuccessfully ? new ValueTask<object?>(task.Result) : AwaitTaskOf(task);

        public static ValueTask<object?> FromValueTaskOf<T>(ValueTask<T> task)
            => task.IsCompletedSuccessfully ? new ValueTask<object?>(task.Result) : AwaitValueTaskOf(task);

        public static T? ConvertRouteValue<T>(string? value, TypeConverter converter)
            => value is null ? default : (T?)converter.ConvertFromInvariantString(value);

        private static async ValueTask<object?> AwaitTask(Task task)
        {
            await task.ConfigureAwait(false);
            return null;
        }

        private static async ValueTask<object?> AwaitValueTask(ValueTask task)
        {
            await task.ConfigureAwait(false);
            return null;
        }

        private static async ValueTask<object?> AwaitTaskOf<T>(Task<T> task) => await task.ConfigureAwait(false);

        private static async ValueTask<object?> AwaitValueTaskOf<T>(ValueTask<T> task) => await task.ConfigureAwait(false);
    }
}
