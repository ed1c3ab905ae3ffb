using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Database;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;
using Npgsql;

namespace NodeAgent.Insight;

/// <summary>
/// Takes relabel steps while there is work, and looks again every <see cref="InsightSettings.RelabelInterval"/>
/// otherwise. Every agent runs it; the database lets one step run at a time (another agent's attempt returns 'busy'),
/// so a relabel goes on as long as one agent is up, and the agents' stores never wait for it.
/// </summary>
internal sealed partial class RelabelLoop(
    InsightSettings settings,
    InsightMetrics metrics,
    NpgsqlDataSource dataSource,
    SchemaMigrator migrator,
    RetryPolicy retry,
    IHostApplicationLifetime lifetime,
    ILogger<RelabelLoop> logger) : BackgroundService
{
    // Short: a barrier is stores in progress, which end within a store's time.
    private static readonly TimeSpan BarrierPoll = TimeSpan.FromMilliseconds(100);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await lifetime.WaitForStartedAsync(stoppingToken))
        {
            return;
        }

        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                var phase = await migrator.StoreAsync(() => StepAsync(stoppingToken), stoppingToken);
                failures = 0;
                metrics.Steps.Add(1, new KeyValuePair<string, object?>("result", phase));
                wait = phase switch
                {
                    "relabelling" or "counting" => TimeSpan.Zero,
                    "waiting" or "settling" => BarrierPoll,
                    _ => settings.RelabelInterval,
                };
                if (wait == settings.RelabelInterval)
                {
                    metrics.PendingChanges(await PendingChangesAsync(stoppingToken));
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                failures++;
                metrics.Steps.Add(1, new KeyValuePair<string, object?>("result", "failed"));
                wait = retry.NextDelay(failures);
                LogStepFailed(RetryPolicy.Describe(e), wait);
            }

            try
            {
                await retry.DelayAsync(wait, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<string> StepAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT attribution_relabel_step($1)");
        command.Parameters.Add(new NpgsqlParameter { Value = settings.RelabelBatch });
        return (string)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private async Task<long> PendingChangesAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT attribution_relabel_pending()");
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A relabel step failed ({Reason}); trying again in {Wait}")]
    private partial void LogStepFailed(string reason, TimeSpan wait);
}
