using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;

namespace NodeAgent.Shared.Delivery;

/// <summary>
/// Stores a capability's spooled records oldest first. When the database cannot be reached it retries the same record
/// (<see cref="RetryPolicy"/>) while the capability goes on collecting; a record the database rejects for good is
/// given up so that it does not hold back every later one. On shutdown it makes one quick pass over what is left,
/// then reports what it could not store.
/// </summary>
public sealed partial class DeliveryLoop<T>(
    AgentSettings settings,
    Spool<T> spool,
    IRecordStore<T> store,
    RecordKind<T> kind,
    RetryPolicy retry,
    DeliveryOutcomes<T> outcomes,
    TimeProvider time,
    ILogger<DeliveryLoop<T>> logger) : BackgroundService
    where T : class
{
    public static readonly TimeSpan ShutdownDrain = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            T record;
            try
            {
                record = await spool.PeekAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            try
            {
                var started = time.GetTimestamp();
                await store.StoreAsync(record, stoppingToken);
                spool.Complete(record);
                outcomes.Stored(record, time.GetElapsedTime(started));
                if (failures > 0)
                {
                    LogRecovered(logger, settings.DatabaseDescription, failures, spool.Count, kind.Plural);
                }

                failures = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (RetryPolicy.IsPermanent(e))
            {
                spool.Complete(record);
                outcomes.GivenUp(record, e);
            }
            catch (Exception e)
            {
                failures++;
                spool.Retry(record);
                outcomes.WillRetry(e);
                var delay = retry.NextDelay(failures);
                LogStoreFailed(logger, kind.Noun, settings.DatabaseDescription, RetryPolicy.Describe(e), spool.Count, kind.Plural, delay.TotalSeconds);
                try
                {
                    await retry.DelayAsync(delay, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        await DrainAsync();
    }

    /// <summary>On shutdown: one attempt per waiting record within <see cref="ShutdownDrain"/>, stopping at the first failure.</summary>
    private async Task DrainAsync()
    {
        using var deadline = new CancellationTokenSource(ShutdownDrain, time);
        try
        {
            while (spool.TryPeek(out var record))
            {
                var started = time.GetTimestamp();
                await store.StoreAsync(record!, deadline.Token);
                spool.Complete(record!);
                outcomes.Stored(record!, time.GetElapsedTime(started));
            }
        }
        catch (Exception e)
        {
            LogNotDrained(logger, spool.Count, kind.Plural, RetryPolicy.Describe(e));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Could not store {Record} in PostgreSQL at {Database}: {Reason}. {Pending} {Records} waiting; retrying in {DelaySeconds:0.0} s")]
    private static partial void LogStoreFailed(ILogger logger, string record, string database, string reason, int pending, string records, double delaySeconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "PostgreSQL at {Database} is reachable again after {Failures} failed attempts; {Pending} {Records} still waiting")]
    private static partial void LogRecovered(ILogger logger, string database, int failures, int pending, string records);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Shutting down with {Pending} {Records} not stored: {Reason}")]
    private static partial void LogNotDrained(ILogger logger, int pending, string records, string reason);
}
