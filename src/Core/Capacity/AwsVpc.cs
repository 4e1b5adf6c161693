using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Api;
using Serverless.Core.TaskDefinitions;
using Serverless.Core.Tasks;

namespace Serverless.Core.Capacity;

/// <summary>
/// An <c>awsvpc</c> task's <c>ElasticNetworkInterface</c> attachment, as DescribeTasks shows it.
/// Here the interface is the task's own Docker network on its host: the subnet and security
/// groups are the ones the request named (recorded, not enforced: there is no VPC), the address
/// and MAC are the ones Docker gave the task.
/// </summary>
public sealed record NetworkAttachment
{
    public const string Precreated = "PRECREATED";
    public const string Attached = "ATTACHED";
    public const string Deleted = "DELETED";

    public required string Id { get; init; }
    public required string SubnetId { get; init; }
    public required string NetworkInterfaceId { get; init; }
    /// <summary>The security groups as given, comma-separated (one string keeps the record's equality by value).</summary>
    public string SecurityGroups { get; init; } = "";
    public string Status { get; init; } = Precreated;
    public string? PrivateIpv4Address { get; init; }
    public string? MacAddress { get; init; }

    /// <summary>
    /// The attachment of a new task: the first subnet given (ECS picks one of them), and an
    /// interface id derived from the task id, so one task always shows the same <c>eni-</c>.
    /// </summary>
    public static NetworkAttachment ForTask(string taskId, AwsVpcConfiguration configuration) => new()
    {
        Id = Guid.NewGuid().ToString(),
        SubnetId = configuration.Subnets[0],
        NetworkInterfaceId = "eni-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(taskId)).AsSpan(0, 9))[..17],
        SecurityGroups = string.Join(',', configuration.SecurityGroups),
    };

    /// <summary>The attachment after a worker's report: the address once known; deleted with the task.</summary>
    public NetworkAttachment Apply(TaskNetworkInterface? reported, bool taskStopped)
    {
        var next = this;
        if (reported is not null && PrivateIpv4Address is null)
            next = next with { PrivateIpv4Address = reported.PrivateIpv4Address, MacAddress = reported.MacAddress, Status = Attached };
        if (taskStopped) next = next with { Status = Deleted };
        return next;
    }

    public JsonObject ToJson()
    {
        var details = new JsonArray
        {
            Detail("subnetId", SubnetId),
            Detail("networkInterfaceId", NetworkInterfaceId),
        };
        if (MacAddress is not null) details.Add(Detail("macAddress", MacAddress));
        if (PrivateIpv4Address is not null)
        {
            details.Add(Detail("privateDnsName", $"ip-{PrivateIpv4Address.Replace('.', '-')}.ec2.internal"));
            details.Add(Detail("privateIPv4Address", PrivateIpv4Address));
        }
        return new JsonObject { ["id"] = Id, ["type"] = "ElasticNetworkInterface", ["status"] = Status, ["details"] = details };
    }

    /// <summary>A container's <c>networkInterfaces</c> entry: every container of the task shares the one interface.</summary>
    public JsonArray ContainerInterfaces()
        => PrivateIpv4Address is null ? [] : [new JsonObject { ["attachmentId"] = Id, ["privateIpv4Address"] = PrivateIpv4Address }];

    private static JsonObject Detail(string name, string value) => new() { ["name"] = name, ["value"] = value };
}

/// <summary>A request's <c>networkConfiguration.awsvpcConfiguration</c>, checked.</summary>
public sealed record AwsVpcConfiguration(IReadOnlyList<string> Subnets, IReadOnlyList<string> SecurityGroups, string AssignPublicIp)
{
    public const int MaxSubnets = 16;
    public const int MaxSecurityGroups = 5;

    /// <summary>A configuration checked before (a service's), for a definition in <c>awsvpc</c> mode; else null.</summary>
    public static AwsVpcConfiguration? Stored(TaskDefinitionRecord definition, JsonNode? networkConfiguration)
        => definition.NetworkMode == TaskDefinitionDefaults.AwsVpc
           && networkConfiguration?["awsvpcConfiguration"] is JsonObject given && given.Strings("subnets").ToList() is { Count: > 0 } subnets
            ? new AwsVpcConfiguration(subnets, given.Strings("securityGroups").ToList(), given.String("assignPublicIp") ?? "DISABLED")
            : null;

    /// <summary>
    /// ECS's checks of a RunTask / CreateService / UpdateService network configuration against the
    /// definition's network mode: required (with subnets) for <c>awsvpc</c>, refused for any other
    /// mode, and a public IP only on Fargate. Returns the configuration for <c>awsvpc</c>, else null.
    /// </summary>
    public static AwsVpcConfiguration? Check(TaskDefinitionRecord definition, JsonNode? networkConfiguration, bool fargate)
    {
        var awsVpc = definition.NetworkMode == TaskDefinitionDefaults.AwsVpc;
        var given = networkConfiguration?["awsvpcConfiguration"] as JsonObject;
        if (!awsVpc)
        {
            if (networkConfiguration is JsonObject { Count: > 0 })
                throw new InvalidParameterException("Network Configuration is not valid for the given networkMode of this task definition.");
            return null;
        }
        if (given is null) throw new InvalidParameterException("Network Configuration must be provided when networkMode 'awsvpc' is specified.");
        var subnets = given.Strings("subnets").ToList();
        if (subnets.Count == 0) throw new InvalidParameterException("subnets can not be empty.");
        if (subnets.Count > MaxSubnets) throw new InvalidParameterException($"subnets can have at most {MaxSubnets} items.");
        var groups = given.Strings("securityGroups").ToList();
        if (groups.Count > MaxSecurityGroups) throw new InvalidParameterException($"securityGroups can have at most {MaxSecurityGroups} items.");
        var assign = given.String("assignPublicIp") ?? "DISABLED";
        if (assign == "ENABLED" && !fargate) throw new InvalidParameterException("Assign public IP is not supported for this launch type.");
        return new AwsVpcConfiguration(subnets, groups, assign);
    }
}
