using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NodeAgent.Configuration;
using NodeAgent.Storage;
using NodeAgent.Telemetry;

namespace NodeAgent.Hosting;

/// <summary>
/// Stores spooled scans oldest first. When the database cannot be reached it retries the same scan
/// with exponential backoff (1 s doubling to 1 min, with jitter) while the scan loop goes on
/// scanning. On shutdown it makes one quick pass over what is left, then reports what it could not store.
/// </summary>
public sealed partial class StoreLoop(
    AgentSettings settings,
    ScanSpool spool,
    InventoryStore store,
    AgentTelemetry telemetry,
    TimeProvider time,
    ILogger<StoreLoop> logger) : BackgroundService
{
    public static readonly TimeSpan InitialBackoff = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan MaxBackoff = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan ShutdownDrain = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = InitialBackoff;
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            ScanRecord scan;
            try
            {
                scan = await spool.PeekAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            try
            {
                await store.StoreAsync(scan, stoppingToken);
                spool.Complete(scan);
                if (failures > 0)
                {
                    LogRecovered(logger, settings.DatabaseDescription, failures, spool.Count);
                }

                backoff = InitialBackoff;
                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                failures++;
                telemetry.StoreRetries.Add(1);
                var delay = backoff * (0.8 + 0.4 * Random.Shared.NextDouble());
                LogStoreFailed(logger, settings.DatabaseDescription, Describe(e), spool.Count, delay.TotalSeconds);
                try
                {
                    await Task.Delay(delay, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
            }
        }

        await DrainAsync();
    }

    /// <summary>On shutdown: one attempt per waiting scan within <see cref="ShutdownDrain"/>, stopping at the first failure.</summary>
    private async Task DrainAsync()
    {
        using var deadline = new CancellationTokenSource(ShutdownDrain, time);
        try
        {
            while (spool.TryPeek(out var scan))
            {
                await store.StoreAsync(scan!, deadline.Token);
                spool.Complete(scan!);
            }
        }
        catch (Exception e)
        {
            LogNotDrained(logger, spool.Count, Describe(e));
            return;
        }
    }

    /// <summary>One line, without the connection string (Npgsql's messages never carry the password).</summary>
    internal static string Describe(Exception e) => e switch
    {
        OperationCanceledException => "timed out",
        Npgsql.PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        _ when e.InnerException is { } inner && e is Npgsql.NpgsqlException => $"{e.Message} ({inner.Message})",
        _ => e.Message,
    };

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Could not store scan in PostgreSQL at {Database}: {Reason}. {Pending} scans waiting; retrying in {DelaySeconds:0.0} s")]
    private static partial void LogStoreFailed(ILogger logger, string database, string reason, int pending, double delaySeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "PostgreSQL at {Database} is reachable again after {Failures} failed attempts; {Pending} scans still waiting")]
    private static partial void LogRecovered(ILogger logger, string database, int failures, int pending);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutting down with {Pending} scans not stored: {Reason}")]
    private static partial void LogNotDrained(ILogger logger, int pending, string reason);
}
