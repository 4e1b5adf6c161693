using System.Text.Json;
using Serverless.Core.TaskDefinitions;
using System.Text.RegularExpressions;
using Docker.DotNet.Models;

namespace Serverless.Worker.Logs;

/// <summary>
/// A container's <c>awslogs</c> settings, as the ECS agent reads <c>logConfiguration.options</c>: the group,
/// the stream ECS names (<c>&lt;awslogs-stream-prefix&gt;/&lt;container-name&gt;/&lt;task-id&gt;</c>, or the Docker
/// container id without a prefix), <c>awslogs-create-group</c>, and where a multi-line event starts
/// (<c>awslogs-multiline-pattern</c>, or <c>awslogs-datetime-format</c> turned into one as Docker does).
/// Docker itself keeps the output with its local <c>json-file</c> driver; the worker reads it back and ships
/// it, so a container never waits on CloudWatch Logs (<c>mode</c> and <c>max-buffer-size</c> have nothing to
/// bound) and nothing is lost while storage is unreachable. The settings travel as a container label, so a
/// restarted worker ships the containers it adopts.
/// </summary>
public sealed record AwsLogsConfig(string Group, string? Stream, bool CreateGroup, string? MultilinePattern)
{
    public const string Label = "ecs-worker.awslogs";

    /// <summary>The stream name: ECS's, or the container id when no prefix was given (the Docker driver's default).</summary>
    public string StreamFor(string dockerId) => Stream ?? dockerId;

    /// <summary>What Docker is given for a container whose driver is awslogs: its local json-file driver.</summary>
    public static LogConfig? DockerLogConfig(LogConfigurationView logConfiguration)
        => logConfiguration.LogDriver == LogConfigurationView.AwsLogs ? new LogConfig { Type = "json-file", Config = new Dictionary<string, string>() } : null;

    /// <summary>Adds the label that carries the awslogs settings of a container's <paramref name="log"/> configuration, if it has them.</summary>
    public static void AddLabel(LogConfigurationView? log, string taskArn, string containerName, IDictionary<string, string> labels)
    {
        if (log is null || log.LogDriver != LogConfigurationView.AwsLogs) return;
        string? Option(string name) => log.Option(name);
        var prefix = Option("awslogs-stream-prefix");
        var taskId = taskArn[(taskArn.LastIndexOf('/') + 1)..];
        var multiline = Option("awslogs-multiline-pattern") ?? (Option("awslogs-datetime-format") is { } format ? "^" + DatetimeRegex(format) : null);
        var config = new AwsLogsConfig(
            Option("awslogs-group")!,
            string.IsNullOrEmpty(prefix) ? null : $"{prefix}/{containerName}/{taskId}",
            Option("awslogs-create-group") == "true",
            multiline);
        labels[Label] = JsonSerializer.Serialize(config);
    }

    public static AwsLogsConfig? FromLabels(IDictionary<string, string>? labels)
        => labels is not null && labels.TryGetValue(Label, out var json) ? JsonSerializer.Deserialize<AwsLogsConfig>(json) : null;

    /// <summary>Docker's awslogs conversion of a strftime format (<c>%Y-%m-%d %H:%M:%S</c>) into a regular expression.</summary>
    public static string DatetimeRegex(string format)
    {
        var map = new Dictionary<char, string>
        {
            ['a'] = @"(?:Mon|Monday|Tue|Tuesday|Wed|Wednesday|Thu|Thursday|Fri|Friday|Sat|Saturday|Sun|Sunday)",
            ['A'] = @"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)",
            ['b'] = @"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)",
            ['B'] = @"(?:January|February|March|April|May|June|July|August|September|October|November|December)",
            ['d'] = @"(?:0[1-9]|[1,2][0-9]|3[0,1])",
            ['H'] = @"(?:[0,1][0-9]|2[0-3])",
            ['I'] = @"(?:0[0-9]|1[0-2])",
            ['j'] = @"(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])",
            ['L'] = @"\.\d{3}",
            ['m'] = @"(?:0[1-9]|1[0-2])",
            ['M'] = @"[0-5][0-9]",
            ['p'] = @"[A,P]M",
            ['S'] = @"[0-5][0-9]",
            ['f'] = @"\d{6}",
            ['y'] = @"\d{2}",
            ['Y'] = @"\d{4}",
            ['Z'] = @"[A-Za-z_]+(?:/[A-Za-z_]+)?",
            ['z'] = @"[+-]\d{4}",
        };
        var regex = new System.Text.StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] == '%' && i + 1 < format.Length && map.TryGetValue(format[i + 1], out var part))
            {
                regex.Append(part);
                i++;
            }
            else regex.Append(Regex.Escape(format[i].ToString()));
        }
        return regex.ToString();
    }
}
