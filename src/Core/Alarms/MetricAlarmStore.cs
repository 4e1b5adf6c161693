using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Serverless.Core.Api;
using Serverless.Core.Storage;
using Serverless.Core.Tasks;

namespace Serverless.Core.Alarms;

/// <summary>
/// Metric alarms (table <c>MetricAlarms</c>, one partition per alarm: a hash of its name, since a name may
/// hold characters a key may not, row <c>alarm</c>) and their history (table <c>AlarmHistory</c>, the same
/// partition, newest first). The evaluator lists the alarms table in one query per evaluation: it holds only
/// what users created, so no alarm costs one query and nothing else.
/// </summary>
public sealed class MetricAlarmStore(StorageClients storage)
{
    private const string Alarms = "MetricAlarms";
    private const string History = "AlarmHistory";
    private const string AlarmRow = "alarm";

    /// <summary>CloudWatch keeps alarm history for two weeks.</summary>
    public static readonly TimeSpan HistoryRetention = TimeSpan.FromDays(14);

    public static string Partition(string name) => "A|" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)));

    public async Task<IReadOnlyList<MetricAlarmRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Alarms, cancellationToken);
        var alarms = new List<MetricAlarmRecord>();
        await foreach (var entity in table.QueryAsync<TableEntity>(cancellationToken: cancellationToken))
            alarms.Add(Read(entity));
        return [.. alarms.OrderBy(a => a.Name, StringComparer.Ordinal)];
    }

    public async Task<MetricAlarmRecord?> FindAsync(string name, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Alarms, cancellationToken);
        var found = await table.GetEntityIfExistsAsync<TableEntity>(Partition(name), AlarmRow, cancellationToken: cancellationToken);
        return found.HasValue ? Read(found.Value!) : null;
    }

    /// <summary>
    /// Writes the alarm, conditional on the ETag it was read with (none: insert only; a lost race is a
    /// <see cref="ConcurrentUpdateException"/> and writes nothing), then its history item: a crash between the
    /// two loses the item, never the alarm's state.
    /// </summary>
    public async Task SaveAsync(MetricAlarmRecord alarm, AlarmHistoryRecord? history, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Alarms, cancellationToken);
        var entity = new TableEntity(Partition(alarm.Name), AlarmRow) { ["Json"] = TaskMessages.Serialize(alarm) };
        try
        {
            if (alarm.ETag == default) await table.AddEntityAsync(entity, cancellationToken);
            else await table.UpdateEntityAsync(entity, alarm.ETag, TableUpdateMode.Replace, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 409 or 412)
        {
            throw new ConcurrentUpdateException(alarm.Name);
        }
        finally
        {
            // After the write: an evaluator that sees the new count reads a table that has it.
            Interlocked.Increment(ref _changes);
        }
        if (history is not null) await AddHistoryAsync(history, cancellationToken);
    }

    public async Task AddHistoryAsync(AlarmHistoryRecord history, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(History, cancellationToken);
        var newestFirst = (DateTimeOffset.MaxValue.UtcTicks - history.Timestamp.UtcTicks).ToString("D19", CultureInfo.InvariantCulture);
        await table.AddEntityAsync(new TableEntity(Partition(history.AlarmName), $"{newestFirst}|{Guid.NewGuid():N}")
        {
            ["Json"] = TaskMessages.Serialize(history),
            ["Time"] = history.Timestamp,
        }, cancellationToken);
    }

    /// <summary>Deletes the alarms; their history stays until it ages out, as CloudWatch keeps it.</summary>
    public async Task DeleteAsync(IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(Alarms, cancellationToken);
        try
        {
            foreach (var name in names)
                await table.DeleteEntityAsync(Partition(name), AlarmRow, ETag.All, cancellationToken);
        }
        finally
        {
            Interlocked.Increment(ref _changes);
        }
    }

    private long _changes;

    /// <summary>Counts the alarm writes and deletes this process made (see <see cref="MetricAlarmEvaluator"/>'s idle reads).</summary>
    public long LocalChanges => Interlocked.Read(ref _changes);

    /// <summary>History items in [<paramref name="from"/>, <paramref name="to"/>], of one alarm (its partition) or of all, newest first.</summary>
    public async Task<IReadOnlyList<AlarmHistoryRecord>> HistoryAsync(string? name, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(History, cancellationToken);
        var filter = name is null
            ? TableClient.CreateQueryFilter($"Time ge {from} and Time le {to}")
            : TableClient.CreateQueryFilter($"PartitionKey eq {Partition(name)} and Time ge {from} and Time le {to}");
        var items = new List<AlarmHistoryRecord>();
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
            items.Add(JsonSerializer.Deserialize<AlarmHistoryRecord>(entity.GetString("Json"), TaskMessages.Json)!);
        return [.. items.OrderByDescending(i => i.Timestamp)];
    }

    /// <summary>Deletes history older than CloudWatch keeps it; returns how many items.</summary>
    public async Task<int> DeleteHistoryBeforeAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        var table = await storage.TableAsync(History, cancellationToken);
        return await table.DeleteMatchingAsync(TableClient.CreateQueryFilter($"Time lt {before}"), cancellationToken);
    }

    private static MetricAlarmRecord Read(TableEntity entity)
        => JsonSerializer.Deserialize<MetricAlarmRecord>(entity.GetString("Json"), TaskMessages.Json)! with { ETag = entity.ETag };
}
