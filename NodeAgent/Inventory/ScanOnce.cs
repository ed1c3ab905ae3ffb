using System.Diagnostics;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Inventory;

/// <summary>The inventory when the agent runs once: one scan, stored with the agent's retry policy (a few attempts).</summary>
internal sealed partial class ScanOnce(
    AgentSettings settings,
    InventoryCollector collector,
    InventoryStore store,
    RetryPolicy retry,
    DeliveryOutcomes<ScanRecord> outcomes,
    ILogger<ScanOnce> logger) : IRunOnceJob
{
    public const int Attempts = 3;

    public async Task<bool> RunAsync(CancellationToken cancellationToken)
    {
        // Connecting and migrating overlap the scan.
        var prepared = store.PrepareAsync(cancellationToken);
        var scan = await Task.Run(() => collector.Collect(cancellationToken), cancellationToken);
        try
        {
            await prepared;
        }
        catch (Exception)
        {
            // Whatever it was, the first store attempt below meets it again and reports it.
        }

        var took = TimeSpan.Zero;
        var (error, attempts) = await retry.TryAsync(
            async ct =>
            {
                var started = Stopwatch.GetTimestamp();
                await store.StoreAsync(scan, ct);
                took = Stopwatch.GetElapsedTime(started);
            },
            Attempts,
            cancellationToken);
        if (error is null)
        {
            outcomes.Stored(scan, took);
            return true;
        }

        LogGaveUp(logger, settings.DatabaseDescription, attempts, RetryPolicy.Describe(error));
        return false;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not store the scan in PostgreSQL at {Database} after {Attempts} attempts: {Reason}")]
    private static partial void LogGaveUp(ILogger logger, string database, int attempts, string reason);
}
