namespace Serverless.Core.Api;

/// <summary>
/// An error a client caused, answered as HTTP <see cref="HttpStatus"/> with
/// <c>{"__type": ErrorType, "message": Message}</c>, the shape of the AWS JSON protocol.
/// Anything that is not an <see cref="EcsException"/> is a 500 <c>ServerException</c>.
/// </summary>
public abstract class EcsException(string message) : Exception(message)
{
    /// <summary>The wire <c>__type</c>, one of the ECS model's exception shape names.</summary>
    public abstract string ErrorType { get; }

    public virtual int HttpStatus => 400;
}

public sealed class ClientException(string message) : EcsException(message)
{
    public override string ErrorType => "ClientException";
}

public sealed class InvalidParameterException(string message) : EcsException(message)
{
    public override string ErrorType => "InvalidParameterException";
}

/// <summary>The body is not JSON, or a member has the wrong JSON type (Coral's wording).</summary>
public sealed class SerializationException(string message) : EcsException(message)
{
    public override string ErrorType => "SerializationException";
}

public sealed class UnknownOperationException(string message) : EcsException(message)
{
    public override string ErrorType => "UnknownOperationException";
}

public sealed class ClusterNotFoundException(string message = "Cluster not found.") : EcsException(message)
{
    public override string ErrorType => "ClusterNotFoundException";
}

public sealed class ClusterContainsServicesException(string message) : EcsException(message)
{
    public override string ErrorType => "ClusterContainsServicesException";
}

public sealed class ClusterContainsContainerInstancesException(string message) : EcsException(message)
{
    public override string ErrorType => "ClusterContainsContainerInstancesException";
}

public sealed class ClusterContainsTasksException(string message) : EcsException(message)
{
    public override string ErrorType => "ClusterContainsTasksException";
}

public sealed class ResourceNotFoundException(string message) : EcsException(message)
{
    public override string ErrorType => "ResourceNotFoundException";
}

public sealed class ResourceInUseException(string message) : EcsException(message)
{
    public override string ErrorType => "ResourceInUseException";
}

public sealed class ServiceNotFoundException(string message = "Service not found.") : EcsException(message)
{
    public override string ErrorType => "ServiceNotFoundException";
}

public sealed class ServiceNotActiveException(string message = "Service was not ACTIVE.") : EcsException(message)
{
    public override string ErrorType => "ServiceNotActiveException";
}

public sealed class LimitExceededException(string message) : EcsException(message)
{
    public override string ErrorType => "LimitExceededException";
}

/// <summary>PutAttributes/DeleteAttributes named a target that is not a registered container instance of the cluster.</summary>
public sealed class TargetNotFoundException(string message) : EcsException(message)
{
    public override string ErrorType => "TargetNotFoundException";
}

/// <summary>PutAttributes would leave an instance with more custom attributes than ECS allows.</summary>
public sealed class AttributeLimitExceededException(string message) : EcsException(message)
{
    public override string ErrorType => "AttributeLimitExceededException";
}

/// <summary>The request body exceeded the configured limit.</summary>
public sealed class RequestEntityTooLargeException(string message) : EcsException(message)
{
    public override string ErrorType => "RequestEntityTooLargeException";
    public override int HttpStatus => 413;
}

/// <summary>SigV4 failures carry the codes AWS clients recognise (botocore retries some of them).</summary>
public sealed class AuthenticationException(string errorType, string message, int httpStatus = 400) : EcsException(message)
{
    public override string ErrorType { get; } = errorType;
    public override int HttpStatus { get; } = httpStatus;

    public static AuthenticationException MissingToken()
        => new("MissingAuthenticationTokenException", "Request is missing Authentication Token");

    public static AuthenticationException UnrecognizedClient()
        => new("UnrecognizedClientException", "The security token included in the request is invalid.");

    public static AuthenticationException InvalidSignature()
        => new("InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. " +
            "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.");

    public static AuthenticationException Expired(string message) => new("InvalidSignatureException", message);

    public static AuthenticationException Incomplete(string message) => new("IncompleteSignatureException", message);
}

/// <summary>
/// A conditional write lost a race (HTTP 412 from Table Storage). Callers re-read and retry;
/// it reaches a client only when retries are exhausted, as a retryable 500.
/// </summary>
public sealed class ConcurrentUpdateException(string resource)
    : Exception($"Concurrent update of {resource}");
