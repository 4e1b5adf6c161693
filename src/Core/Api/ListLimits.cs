namespace Serverless.Core.Api;

/// <summary>
/// The most items a Describe* action takes in one call (botocore's ECS model documents them: 100
/// clusters, 10 services, 100 tasks, 100 container instances), refused the way ECS refuses them.
/// </summary>
public static class ListLimits
{
    public const int DescribeClusters = 100;
    public const int DescribeServices = 10;
    public const int DescribeTasks = 100;
    public const int DescribeContainerInstances = 100;

    /// <summary>
    /// <paramref name="items"/> when it has at most <paramref name="max"/> entries; otherwise ECS's
    /// <c>InvalidParameterException</c>, "<paramref name="name"/> can have at most N items." (ECS names
    /// the list by its own parameter: "taskIds", "instanceIds", "service names").
    /// </summary>
    public static List<string> AtMost(this List<string> items, int max, string name)
        => items.Count > max ? throw new InvalidParameterException($"{name} can have at most {max} items.") : items;
}
