using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
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
            catch (Exception e) when (IsPermanent(e))
            {
                // Retrying cannot help and would hold back every later scan: this one is given up.
                spool.Complete(scan);
                telemetry.Scans.Add(1, new KeyValuePair<string, object?>("result", "failed"));
                LogDiscarded(logger, scan.NodeName, scan.CollectedAt, Describe(e));
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

    /// <summary>
    /// Errors that storing the same scan again would meet again: PostgreSQL rejecting the data itself
    /// (data exceptions, integrity violations, program limits) or a fault in the agent. Connection,
    /// authentication, resource and missing-table errors are transient: the operator can fix them; so is a
    /// foreign-key violation, which means the list the scan reused was deleted a moment ago (a retry stores it again).
    /// </summary>
    internal static bool IsPermanent(Exception e) => e switch
    {
        Npgsql.PostgresException pg => pg.SqlState.StartsWith("22", StringComparison.Ordinal)
            || (pg.SqlState.StartsWith("23", StringComparison.Ordinal) && pg.SqlState != PostgresErrorCodes.ForeignKeyViolation)
            || pg.SqlState.StartsWith("54", StringComparison.Ordinal),
        Npgsql.NpgsqlException or TimeoutException or System.Net.Sockets.SocketException or IOException => false,
        ArgumentException or InvalidCastException or OverflowException or FormatException => true,
        _ => false,
    };

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

    [LoggerMessage(Level = LogLevel.Error, Message = "Gave up storing the scan of node {NodeName} collected at {CollectedAt:o}: {Reason}")]
    private static partial void LogDiscarded(ILogger logger, string nodeName, DateTimeOffset collectedAt, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "PostgreSQL at {Database} is reachable again after {Failures} failed attempts; {Pending} scans still waiting")]
    private static partial void LogRecovered(ILogger logger, string database, int failures, int pending);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutting down with {Pending} scans not stored: {Reason}")]
    private static partial void LogNotDrained(ILogger logger, int pending, string reason);
}
