using System.Reflection;

namespace Serverless.Worker.Tests.Infrastructure;

/// <summary>
/// An interface's implementation that forwards every call to another, except those a test takes
/// over (its handler returns anything but <see cref="Pass"/> for them).
/// </summary>
public static class Forwarding
{
    /// <summary>What a handler returns for a call it leaves to the target.</summary>
    public static readonly object Pass = new();

    public static T Create<T>(T target, Func<MethodInfo, object?[]?, object?> handler) where T : class
    {
        var proxy = DispatchProxy.Create<T, Proxy>();
        var forwarding = (Proxy)(object)proxy;
        forwarding.Target = target;
        forwarding.Handler = handler;
        return proxy;
    }

    public class Proxy : DispatchProxy
    {
        internal object Target { get; set; } = null!;

        internal Func<MethodInfo, object?[]?, object?> Handler { get; set; } = null!;

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            var handled = Handler(targetMethod!, args);
            if (!ReferenceEquals(handled, Pass)) return handled;
            try
            {
                return targetMethod!.Invoke(Target, args);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
                throw;
            }
        }
    }
}
