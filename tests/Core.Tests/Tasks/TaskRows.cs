using Serverless.Core.Tasks;

namespace Serverless.Core.Tests.Tasks;

/// <summary>What the task store tests share: the ARN scheme and a task row as RunTask inserts it, before any report.</summary>
internal static class TaskRows
{
    public static readonly Arns Arns = new(new EcsOptions { Region = "us-east-1", AccountId = "000000000000" });

    public static TaskRecord New(string cluster, string group, string instance, DateTimeOffset createdAt) => new()
    {
        Cluster = cluster,
        Id = TaskIds.New(group),
        Group = group,
        TaskDefinitionArn = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        Family = "web",
        ContainerInstanceId = instance,
        CreatedAt = createdAt,
    };
}
