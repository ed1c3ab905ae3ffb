using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NodeAgent.Shared.Configuration;
using NodeAgent.Shared.Delivery;
using NodeAgent.Shared.Hosting;

namespace NodeAgent.Inventory;

/// <summary>Scans at start and then every <c>Agent:Inventory:ScanInterval</c>, handing each scan to the spool.</summary>
internal sealed partial class ScanLoop(
    InventorySettings settings,
    InventoryCollector collector,
    Spool<ScanRecord> spool,
    DeliveryOutcomes<ScanRecord> outcomes,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<ScanLoop> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!await lifetime.WaitForStartedAsync(stoppingToken))
        {
            return;
        }

        using var timer = new PeriodicTimer(settings.ScanInterval, time);
        long expectedEntries = 0;
        var skipping = false;
        do
        {
            // The scan about to be taken counts against the spool's bounds, at the size of the previous one.
            if (!spool.TryReserve(expectedEntries))
            {
                outcomes.NotCollected(spool.Limits, firstInARow: !skipping);
                skipping = true;
                continue;
            }

            skipping = false;
            try
            {
                var scan = await Task.Run(() => collector.Collect(stoppingToken), stoppingToken);
                expectedEntries = scan.Result.Snapshot.Count;
                spool.Add(scan);
            }
            catch (MountPathException e)
            {
                spool.CancelReservation();
                LogScanFailed(logger, e.Message);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // A scan interrupted by shutdown is discarded whole; nothing of it was stored.
                spool.CancelReservation();
                return;
            }
            catch (Exception e)
            {
                spool.CancelReservation();
                // Whatever one scan met, the next one is taken on time.
                LogScanError(logger, e);
            }
        }
        while (await WaitForNextTickAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitForNextTickAsync(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Scan failed unexpectedly")]
    private static partial void LogScanError(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Scan failed: {Reason}")]
    private static partial void LogScanFailed(ILogger logger, string reason);
}
