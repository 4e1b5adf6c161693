using Serverless.Core.Api;

namespace Serverless.Core.Metrics;

/// <summary>
/// CloudWatch's errors. The model is <c>awsQueryCompatible</c>: the wire <c>__type</c> is the shape
/// name and <see cref="QueryCode"/> travels in <c>x-amzn-query-error</c>, which botocore reports as the code.
/// </summary>
public class CloudWatchException(string errorType, string queryCode, string message, int httpStatus = 400) : EcsException(message)
{
    public override string ErrorType => errorType;
    public override int HttpStatus => httpStatus;
    public string QueryCode => queryCode;

    public static CloudWatchException InvalidParameterValue(string message)
        => new("InvalidParameterValueException", "InvalidParameterValue", message);

    public static CloudWatchException InvalidParameterCombination(string message)
        => new("InvalidParameterCombinationException", "InvalidParameterCombination", message);

    public static CloudWatchException MissingParameter(string message)
        => new("MissingRequiredParameterException", "MissingParameter", message);

    public static CloudWatchException ResourceNotFound(string message) => new("ResourceNotFound", "ResourceNotFound", message, 404);

    public static CloudWatchException InvalidNextToken(string message) => new("InvalidNextToken", "InvalidNextToken", message);
}
