using Serverless.Core.Api;

namespace Serverless.Core.Logs;

/// <summary>CreateLogGroup/CreateLogStream named one that exists (the Logs model's error shape).</summary>
public sealed class ResourceAlreadyExistsException(string message) : EcsException(message)
{
    public override string ErrorType => "ResourceAlreadyExistsException";
}

/// <summary>TagResource would leave a log group with more than 50 tags.</summary>
public sealed class TooManyTagsException(string message) : EcsException(message)
{
    public override string ErrorType => "TooManyTagsException";
}
