using Serverless.Core.Api;

namespace Serverless.Core.Secrets;

/// <summary>
/// An error of Secrets Manager or Systems Manager, with that service's own <c>__type</c>
/// (botocore's model names them: <c>ResourceExistsException</c>, <c>ParameterNotFound</c>, ...).
/// </summary>
public sealed class AwsServiceException(string errorType, string message) : EcsException(message)
{
    public override string ErrorType { get; } = errorType;

    // Secrets Manager's messages, as AWS words them.
    public static AwsServiceException SecretNotFound()
        => new("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");

    public static AwsServiceException MarkedForDeletion()
        => new("InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.");

    public static AwsServiceException InvalidRequest(string message) => new("InvalidRequestException", message);

    public static AwsServiceException InvalidParameter(string message) => new("InvalidParameterException", message);

    public static AwsServiceException Validation(string message) => new("ValidationException", message);

    public static AwsServiceException InvalidNextToken() => new("InvalidNextTokenException", "The NextToken value is invalid.");
}
