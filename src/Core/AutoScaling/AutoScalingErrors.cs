using Serverless.Core.Api;

namespace Serverless.Core.AutoScaling;

/// <summary>Application Auto Scaling's errors, by the model's names.</summary>
public sealed class AutoScalingException(string errorType, string message) : EcsException(message)
{
    public override string ErrorType => errorType;

    public static AutoScalingException Validation(string message) => new("ValidationException", message);

    public static AutoScalingException ObjectNotFound(string message) => new("ObjectNotFoundException", message);

    public static AutoScalingException ConcurrentUpdate(string message) => new("ConcurrentUpdateException", message);
}
